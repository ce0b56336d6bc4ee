"""The fleet status view (``ncbackup status``) and the run's freshness check: what the storage says about each host."""
