"""The local stand-in of Amazon Redshift Serverless.

STS, IAM, S3 and the Redshift Data API on PostgreSQL, in one process on 127.0.0.1.
"""
