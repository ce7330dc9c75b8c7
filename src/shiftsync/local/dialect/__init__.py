"""Redshift's SQL dialect on PostgreSQL: its types, character rules, and SQL text."""
