"""The ncbackup benchmark: ncbackup against the shell pipeline and its peers, on one corpus, in one run."""
