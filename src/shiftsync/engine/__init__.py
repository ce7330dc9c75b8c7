"""The sync engine: runs, state, verification."""
