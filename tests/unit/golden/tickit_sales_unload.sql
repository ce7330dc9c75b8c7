SELECT
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
FROM "public"."sales"
