UNLOAD ('SELECT
  "name",
  from_varbyte("blob", ''hex'') AS "blob",
  "at"
FROM "public"."it''s"
WHERE "name" >= ''it''''s'' AND "name" < ''zed''''s''')
TO 's3://bucket/prefix/'
IAM_ROLE 'arn:aws:iam::123456789012:role/shiftsync-unload'
FORMAT PARQUET
MANIFEST VERBOSE
