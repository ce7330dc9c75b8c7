SELECT
  "MixedCase",
  "with space",
  "quote""inside",
  to_char(convert_timezone('UTC', "select"), 'YYYY-MM-DD HH24:MI:SS.US BC') AS "select",
  json_serialize("ünïcødé ☃") AS "ünïcødé ☃",
  from_varbyte("order", 'hex') AS "order"
FROM "My Schema"."we""ird table"
ORDER BY "we""ird table"."MixedCase", "we""ird table"."quote""inside"
