"""Redshift's character types on PostgreSQL: lengths in bytes, VARCHAR at most 65535, TEXT 256.

PostgreSQL counts characters; Redshift counts bytes, refuses multibyte characters in CHAR,
caps VARCHAR at 65535 bytes and makes a bare VARCHAR or TEXT column VARCHAR(256). An event
trigger applies those rules to the tables that the Data API's users (never the superuser who
seeds) create: it refuses a VARCHAR over 65535, turns TEXT and bare VARCHAR into VARCHAR(256)
(CREATE TABLE only, as CTAS keeps its data), and adds to each CHAR/VARCHAR column a CHECK
that raises Redshift's own error text when a value's UTF-8 bytes do not fit.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg

CHECK_FUNCTION_SQL: Final = r"""
CREATE OR REPLACE FUNCTION rs_catalog.fits_bytes(val text, size integer, fixed boolean)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
  bad text;
BEGIN
  IF val IS NULL THEN
    RETURN true;
  END IF;
  IF fixed THEN
    IF octet_length(val) <> char_length(val) THEN
      bad := substring(val FROM '[^\x01-\x7f]');
      RAISE EXCEPTION '%', 'Multibyte character not supported for CHAR '
        || '(Hint: try using VARCHAR). Invalid char: '
        || encode(convert_to(bad, 'UTF8'), 'hex') USING ERRCODE = '22001';
    END IF;
    RETURN true;
  END IF;
  IF octet_length(val) > size THEN
    RAISE EXCEPTION 'value too long for type character varying(%)', size USING ERRCODE = '22001';
  END IF;
  RETURN true;
END
$fn$
"""

TRIGGER_FUNCTION_SQL: Final = r"""
CREATE OR REPLACE FUNCTION rs_catalog.redshift_character_rules()
RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  cmd record;
  col record;
  name text;
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    RETURN;
  END IF;
  FOR cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands()
             WHERE object_type = 'table' LOOP
    FOR col IN
      SELECT a.attname, a.attnum, a.atttypmod, t.typname
      FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = cmd.objid AND a.attnum > 0 AND NOT a.attisdropped
        AND t.typname IN ('varchar', 'bpchar', 'text')
    LOOP
      IF col.typname = 'varchar' AND col.atttypmod - 4 > 65535 THEN
        RAISE EXCEPTION 'length for type varchar cannot exceed 65535' USING ERRCODE = '22023';
      END IF;
      IF (col.typname = 'text' OR (col.typname = 'varchar' AND col.atttypmod < 0))
         AND cmd.command_tag = 'CREATE TABLE' THEN
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE varchar(256)',
                       cmd.object_identity, col.attname);
        col.atttypmod := 256 + 4;
        col.typname := 'varchar';
      END IF;
      name := format('rs_bytes_%s', col.attnum);
      IF col.atttypmod >= 4 AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_constraint
           WHERE conrelid = cmd.objid AND conname = name) THEN
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I CHECK '
                       '(rs_catalog.fits_bytes(%I::text, %s, %L))',
                       cmd.object_identity, name, col.attname, col.atttypmod - 4,
                       col.typname = 'bpchar');
      END IF;
    END LOOP;
  END LOOP;
END
$fn$
"""

INSTALL_SQL: Final[tuple[str, ...]] = (
    CHECK_FUNCTION_SQL,
    TRIGGER_FUNCTION_SQL,
    "GRANT EXECUTE ON FUNCTION rs_catalog.fits_bytes(text, integer, boolean) TO PUBLIC",
    "DROP EVENT TRIGGER IF EXISTS rs_character_rules",
    "CREATE EVENT TRIGGER rs_character_rules ON ddl_command_end"
    " WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE')"
    " EXECUTE FUNCTION rs_catalog.redshift_character_rules()",
)


def install_character_rules(conn: psycopg.Connection[Any]) -> None:
    """Install the rules in the connected database (after the flavour; superuser); commits."""
    with conn.transaction():
        for statement in INSTALL_SQL:
            conn.execute(statement)
