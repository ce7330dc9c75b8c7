"""Destinations: DuckDB, PostgreSQL, Parquet."""
