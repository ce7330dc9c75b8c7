"""The AWS Glue Data Catalog: moto's Glue behind IAM checks on AWS's catalog resources."""
