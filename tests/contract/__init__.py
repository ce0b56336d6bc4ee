"""The shared contract suite every registered storage backend must pass."""
