"""The Redshift side: Data API, catalog, type contract, UNLOAD, planning."""
