"""The Redshift Data API on PostgreSQL: requests, IAM, statements, sessions, results, catalog."""
