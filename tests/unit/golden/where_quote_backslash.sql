SELECT
  "name"
FROM "public"."users"
WHERE "name" > ('O''Brien ' || chr(92) || ' C:' || chr(92) || 'x')
