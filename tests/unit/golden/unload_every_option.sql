UNLOAD ('SELECT
  "salesid",
  "listid",
  "sellerid",
  "buyerid",
  "eventid",
  "dateid",
  "qtysold",
  "pricepaid",
  "commission",
  "saletime"
FROM "public"."sales"')
TO 's3://shiftsync-staging/run-1/public.sales/'
IAM_ROLE 'arn:aws:iam::123456789012:role/shiftsync-unload,arn:aws:iam::210987654321:role/shiftsync-writer'
FORMAT PARQUET
MANIFEST VERBOSE
PARALLEL OFF
MAXFILESIZE 256 MB
REGION 'eu-west-1'
ENCRYPTED KMS_KEY_ID 'arn:aws:kms:us-east-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab'
