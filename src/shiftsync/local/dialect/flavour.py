"""Make a PostgreSQL database look like Redshift to the SQL that shiftsync sends.

Redshift's own types become domains, so a column's `pg_type.typname` is the Redshift name
(`super`, `varbyte`, ...); the Redshift functions the connector calls become SQL or plpgsql
functions with Redshift's signatures; SVV_TABLE_INFO becomes a view. All of it lives in one
schema, `rs_catalog`, which the stand-in hides from ListSchemas and which is put last on the
database's search_path so that unqualified names resolve as on Redshift.

PostgreSQL always searches `pg_catalog` first, so nothing here can shadow a built-in with the
same signature; names and signatures below were chosen not to collide with PostgreSQL 15's.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg import sql

from shiftsync.errors import StandInError

FLAVOUR_SCHEMA: Final = "rs_catalog"

# Redshift type name -> the PostgreSQL base type that holds its values.
# `binary varying` (another VARBYTE alias) cannot be a type name: PostgreSQL's grammar has no
# two-word user type names, so only `varbinary` is provided.
REDSHIFT_DOMAINS: Final[dict[str, str]] = {
    "super": "jsonb",  # SUPER holds JSON documents and scalars
    "varbyte": "bytea",
    "varbinary": "bytea",
    "geometry": "bytea",  # well-known binary (WKB)
    "geography": "bytea",  # well-known binary (WKB)
    "hllsketch": "text",  # Redshift's JSON/base64 sketch text
}

# Serialises concurrent installs into the same database (CREATE SCHEMA IF NOT EXISTS and the
# domain check below are not safe against a second installer running at the same moment).
_INSTALL_LOCK_KEY: Final = 0x5EED_F1A7

# Every statement names rs_catalog literally: it is FLAVOUR_SCHEMA, a fixed safe identifier.
FUNCTIONS_SQL: Final[tuple[str, ...]] = (
    # jsonb prints ", " and ": " between items; Redshift prints neither. The pattern eats whole
    # JSON strings (group 1, put back unchanged) so separators inside strings are kept.
    r"""
    CREATE OR REPLACE FUNCTION rs_catalog.json_serialize(doc rs_catalog.super)
    RETURNS varchar LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
      SELECT regexp_replace(doc::jsonb::text, '("(?:[^"\\]|\\.)*")|([,:]) ', '\1\2', 'g')::varchar
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION rs_catalog.json_parse(json_text varchar)
    RETURNS rs_catalog.super LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
      SELECT json_text::jsonb::rs_catalog.super
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION rs_catalog.from_varbyte(bytes rs_catalog.varbyte, fmt varchar)
    RETURNS varchar LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    BEGIN
      CASE lower(fmt)
        WHEN 'hex' THEN RETURN encode(bytes, 'hex');
        WHEN 'utf8', 'utf-8' THEN RETURN convert_from(bytes, 'UTF8');
        WHEN 'base64' THEN RETURN translate(encode(bytes, 'base64'), E'\\n', '');
        WHEN 'binary' THEN
          RETURN coalesce((
            SELECT string_agg(get_byte(bytes, i)::bit(8)::text, '' ORDER BY i)
            FROM generate_series(0, length(bytes) - 1) AS i), '');
        ELSE
          RAISE EXCEPTION 'from_varbyte: unknown format %', fmt
            USING ERRCODE = '22023', HINT = 'use hex, binary, utf8, utf-8 or base64';
      END CASE;
    END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION rs_catalog.to_varbyte(str varchar, fmt varchar)
    RETURNS rs_catalog.varbyte LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    DECLARE
      padded text;
    BEGIN
      CASE lower(fmt)
        WHEN 'hex' THEN RETURN decode(str, 'hex');
        WHEN 'utf8', 'utf-8' THEN RETURN convert_to(str, 'UTF8');
        WHEN 'base64' THEN RETURN decode(str, 'base64');
        WHEN 'binary' THEN
          -- Redshift pads a bit string on the left to whole bytes.
          padded := lpad(str, ((length(str) + 7) / 8) * 8, '0');
          RETURN decode(coalesce((
            SELECT string_agg(lpad(to_hex(substr(padded, i * 8 + 1, 8)::bit(8)::int), 2, '0'),
                              '' ORDER BY i)
            FROM generate_series(0, length(padded) / 8 - 1) AS i), ''), 'hex');
        ELSE
          RAISE EXCEPTION 'to_varbyte: unknown format %', fmt
            USING ERRCODE = '22023', HINT = 'use hex, binary, utf8, utf-8 or base64';
      END CASE;
    END
    $fn$
    """,
    # pg_catalog has to_hex(int) and to_hex(bigint); a varbyte argument picks this one.
    """
    CREATE OR REPLACE FUNCTION rs_catalog.to_hex(bytes rs_catalog.varbyte)
    RETURNS varchar LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
      SELECT encode(bytes, 'hex')::varchar
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION rs_catalog.st_asbinary(geom rs_catalog.geometry)
    RETURNS rs_catalog.varbyte LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
      SELECT geom::bytea::rs_catalog.varbyte
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION rs_catalog.st_geomfromwkb(wkb rs_catalog.varbyte)
    RETURNS rs_catalog.geometry LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
      SELECT wkb::bytea::rs_catalog.geometry
    $fn$
    """,
    # Redshift: the start of the current statement, in UTC, whole seconds.
    """
    CREATE OR REPLACE FUNCTION rs_catalog.getdate()
    RETURNS timestamp LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
      SELECT date_trunc('second', statement_timestamp() AT TIME ZONE 'UTC')
    $fn$
    """,
    # One text overload only: an unknown literal then resolves without ambiguity, and a CHAR
    # argument is cast to text without its trailing blanks, which is what Redshift's LEN counts.
    """
    CREATE OR REPLACE FUNCTION rs_catalog.len(str text)
    RETURNS integer LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
      SELECT length(str)
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION rs_catalog.len(bytes rs_catalog.varbyte)
    RETURNS integer LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
      SELECT length(bytes::bytea)
    $fn$
    """,
    # C strtol: leading white space, one sign, "0x" for base 16, then digits up to the first
    # character that is not a digit of the base. Out of the 64-bit range is an error.
    """
    CREATE OR REPLACE FUNCTION rs_catalog.strtol(num_string varchar, base integer)
    RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    DECLARE
      s text := ltrim(num_string, E' \\t\\n\\r\\f' || chr(11));
      negative boolean := false;
      total numeric := 0;
      code integer;
      digit integer;
    BEGIN
      -- Plain hex of at most 15 digits (delete detection's hash parts): one cast, not a loop.
      IF base = 16 AND num_string ~ '^[0-9a-fA-F]{1,15}$' THEN
        RETURN ('x' || lpad(num_string, 16, '0'))::bit(64)::bigint;
      END IF;
      IF base < 2 OR base > 36 THEN
        RAISE EXCEPTION 'strtol: base % is out of range', base
          USING ERRCODE = '22023', HINT = 'base must be between 2 and 36';
      END IF;
      IF left(s, 1) IN ('+', '-') THEN
        negative := left(s, 1) = '-';
        s := substr(s, 2);
      END IF;
      IF base = 16 AND lower(left(s, 2)) = '0x' THEN
        s := substr(s, 3);
      END IF;
      FOR pos IN 1 .. length(s) LOOP
        code := ascii(substr(s, pos, 1));
        digit := CASE
          WHEN code BETWEEN 48 AND 57 THEN code - 48
          WHEN code BETWEEN 97 AND 122 THEN code - 87
          WHEN code BETWEEN 65 AND 90 THEN code - 55
          ELSE 99 END;
        EXIT WHEN digit >= base;
        total := total * base + digit;
      END LOOP;
      RETURN (CASE WHEN negative THEN -total ELSE total END)::bigint;
    END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION rs_catalog.convert_timezone(
      source_timezone varchar, target_timezone varchar, ts timestamp)
    RETURNS timestamp LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $fn$
      SELECT (ts AT TIME ZONE source_timezone) AT TIME ZONE target_timezone
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION rs_catalog.convert_timezone(target_timezone varchar, ts timestamp)
    RETURNS timestamp LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $fn$
      SELECT (ts AT TIME ZONE 'UTC') AT TIME ZONE target_timezone
    $fn$
    """,
    # A TIMESTAMPTZ column: the instant's wall time in the target zone, as Redshift returns it
    # (the type contract reads TIMESTAMPTZ with convert_timezone('UTC', col)). PostgreSQL casts
    # timestamptz to timestamp only on assignment, so the forms above are not found for it.
    # An untyped literal now resolves to this form (timestamptz is PostgreSQL's preferred
    # datetime type) and is read in the session's zone: UTC in the stand-in, as on Redshift,
    # so it means what the timestamp form means. No three-argument timestamptz form: there a
    # literal would silently lose its source zone.
    """
    CREATE OR REPLACE FUNCTION rs_catalog.convert_timezone(
      target_timezone varchar, ts timestamptz)
    RETURNS timestamp LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $fn$
      SELECT ts AT TIME ZONE target_timezone
    $fn$
    """,
    # Redshift's SHA2(string, bits): the lowercase hex digest of the string's UTF-8 bytes;
    # bits 0 means 256. NULL in, NULL out.
    """
    CREATE OR REPLACE FUNCTION rs_catalog.sha2(str varchar, bits integer)
    RETURNS varchar LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
    BEGIN
      CASE bits
        WHEN 0, 256 THEN RETURN encode(sha256(convert_to(str, 'UTF8')), 'hex');
        WHEN 224 THEN RETURN encode(sha224(convert_to(str, 'UTF8')), 'hex');
        WHEN 384 THEN RETURN encode(sha384(convert_to(str, 'UTF8')), 'hex');
        WHEN 512 THEN RETURN encode(sha512(convert_to(str, 'UTF8')), 'hex');
        ELSE
          RAISE EXCEPTION 'sha2: bit length % is not supported', bits
            USING ERRCODE = '22023', HINT = 'use 0, 224, 256, 384 or 512';
      END CASE;
    END
    $fn$
    """,
)

# Shaped like Redshift's SVV_TABLE_INFO (columns in Redshift's order, a subset of them).
# Like Redshift it lists only tables the caller may read. Sizes are in 1 MB blocks;
# tbl_rows comes from the planner statistics, so it is exact after ANALYZE of a small table
# and an estimate for a large one.
SVV_TABLE_INFO_SQL: Final = """
CREATE OR REPLACE VIEW rs_catalog.svv_table_info AS
WITH visible AS (
  SELECT c.oid, n.nspname, c.relname, greatest(c.reltuples, 0)::numeric AS tuples,
         ceil(pg_catalog.pg_total_relation_size(c.oid) / 1048576.0)::bigint AS blocks,
         (SELECT max(a.atttypmod - 4) FROM pg_catalog.pg_attribute AS a
           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             AND a.atttypid = 'pg_catalog.varchar'::regtype AND a.atttypmod > 4
         )::integer AS max_varchar
  FROM pg_catalog.pg_class AS c
  JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r'
    AND n.nspname NOT LIKE 'pg\\_%'
    AND n.nspname NOT IN ('information_schema', 'rs_catalog')
    AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
    AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
)
SELECT current_database()::text AS "database",
       nspname::text AS "schema",
       oid::bigint AS table_id,
       relname::text AS "table",
       'Y'::text AS encoded,
       'AUTO(EVEN)'::text AS diststyle,
       NULL::text AS sortkey1,
       max_varchar,
       0::integer AS sortkey_num,
       blocks AS size,
       round(100.0 * blocks / greatest(sum(blocks) OVER (), 1), 4)::numeric(10, 4) AS pct_used,
       0::bigint AS empty,
       NULL::numeric(5, 2) AS unsorted,
       tuples AS tbl_rows,
       tuples AS estimated_visible_rows
FROM visible
"""

GRANTS_SQL: Final[tuple[str, ...]] = (
    "GRANT USAGE ON SCHEMA rs_catalog TO PUBLIC",
    "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA rs_catalog TO PUBLIC",
    "GRANT SELECT ON ALL TABLES IN SCHEMA rs_catalog TO PUBLIC",
)


def build_create_domain_sql(name: str, base: str) -> sql.Composed:
    """CREATE DOMAIN for one Redshift type; `base` must be one of REDSHIFT_DOMAINS' bases."""
    if base not in set(REDSHIFT_DOMAINS.values()):
        raise ValueError(f"domain {name!r}: base type {base!r} is not one of REDSHIFT_DOMAINS")
    return sql.SQL("CREATE DOMAIN {}.{} AS {}").format(
        sql.Identifier(FLAVOUR_SCHEMA), sql.Identifier(name), sql.SQL(base)
    )


def build_search_path_value() -> sql.Composed:
    """The search_path that makes the flavour's names resolve unqualified, after user schemas."""
    return sql.SQL(", ").join(
        [sql.Identifier("$user"), sql.Identifier("public"), sql.Identifier(FLAVOUR_SCHEMA)]
    )


def build_database_search_path_sql(database: str) -> sql.Composed:
    """ALTER DATABASE ... SET search_path: applies to every later connection to `database`."""
    return sql.SQL("ALTER DATABASE {} SET search_path = {}").format(
        sql.Identifier(database), build_search_path_value()
    )


def install_flavour(conn: psycopg.Connection[Any], database: str) -> None:
    """Create the Redshift flavour in the connected database; running it again is harmless.

    `database` must be the name of the connected database: its default search_path is changed
    so that new connections see the flavour, and the current connection's is set too. Commits.
    """
    connected = conn.execute("SELECT current_database()").fetchone()
    if connected is None or connected[0] != database:
        raise StandInError(
            f"install_flavour was asked for database {database!r} but is connected to "
            f"{connected[0] if connected else None!r}",
            fix="connect to the database that should get the Redshift flavour and pass its name",
        )
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INSTALL_LOCK_KEY,))
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(FLAVOUR_SCHEMA))
        )
        existing = {
            row[0]
            for row in conn.execute(
                "SELECT t.typname FROM pg_catalog.pg_type AS t"
                " JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace"
                " WHERE n.nspname = %s AND t.typtype = 'd'",
                (FLAVOUR_SCHEMA,),
            )
        }
        for name, base in REDSHIFT_DOMAINS.items():
            if name not in existing:
                conn.execute(build_create_domain_sql(name, base))
        for statement in FUNCTIONS_SQL:
            conn.execute(statement)
        conn.execute(SVV_TABLE_INFO_SQL)
        for statement in GRANTS_SQL:
            conn.execute(statement)
        conn.execute(build_database_search_path_sql(database))
    conn.execute(sql.SQL("SET search_path = {}").format(build_search_path_value()))
    if not conn.autocommit:
        conn.commit()
