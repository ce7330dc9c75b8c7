"""What the lake table formats (Iceberg, Delta) share: the storage form of the type contract,
the local stage that sorts and deduplicates a load, the properties a commit carries, and how
S3 is reached."""
