"""Deterministic sample data: TICKIT, every Redshift type, identifiers that need quoting."""
