"""Names vulture (`make lint`: scripts/vulture_check.py, settings in pyproject.toml's
[tool.vulture]) reports as unused, each with why it stays. Decorated routes, typer commands,
exception handlers and pydantic validators are left out by `ignore_decorators` there, and the
keys of TypedDicts by the script, not listed here.

Vulture reads this file as code that uses the names: `_.name` stands for an attribute of any
object. A new entry needs its own line of justification.
"""

# ruff: noqa: B018, F821
# mypy: ignore-errors

# --- read by libraries, not by our code --------------------------------------------------------
signum  # a signal handler takes it (cli/local.py), whatever the signal
model_config  # pydantic reads a model's settings from this class attribute
_.display_type_rich  # click/typer's rich help reads it (cli/metavars.py hides the type column)
_.prec  # decimal.localcontext(): the precision of the arithmetic in the block (redshift/plan.py)
_._determine_resource  # the stand-in's patch of moto's response class (local/data_api/plugin.py)
_._authenticate_and_authorize_normal_action  # moto calls it to enforce IAM (same patch)
_._enrich_response  # moto calls it on every answer (same patch)
_._server_entry  # moto's ThreadedMotoServer runs it in its thread (local/server.py overrides it)
_.contentsize  # moto's FakeKey size, which its S3 answers read (local/unload/access.py)
encrypted_auto  # a parsed UNLOAD option (ENCRYPTED AUTO), kept with the others; its tests read it

# --- a public API or a test hook: used by tests and callers outside src/ ----------------------
__getattr__  # shiftsync/__init__.py: Python calls a module's __getattr__ (PEP 562) for run_sync
JsonObject  # json_types.py: the JSON alias the product's retyping (issue 16 item 4) moves to
cache_entries  # aws/trust.py: what the trust cache holds, for tests and for a user's scripts
_.refreshes  # aws/session.py: how often the assumed role was renewed (the refresh tests)
_.current_rate  # redshift/rate_limit.py: a limiter's rate now (its tests)
_.cleanup_staged  # RedshiftSource: the Python API's way to delete old staged UNLOAD files
build_count_sql  # redshift/sql.py: a pure SQL builder with its unit tests
column_from_type  # redshift/types.py: builds a Column from a type text (unit tests, bench)
contract_markdown_table  # redshift/types.py: the type table docs/types.md must hold (its test)
_.wait_fired  # the stand-in's faults: a test waits until a fault fired
_.set_role_policy  # StandIn: a test changes the role's policy in the middle of a run
_.set_csv_framing  # StandIn: the CSV framing tests
_.close_idle  # the stand-in's Data API sessions: tests/conftest.py ends idle ones between tests
_.expire_results  # the stand-in engine: the result-expiry test
expire_session  # the stand-in's IAM: the session-refresh tests expire a role session
statement_count  # the stand-in's SQL text helper: its unit tests
_.credentials_denied  # preflight/checks.py (on main): a check result's test hook (test_preflight)

_.fs_by_scheme  # iceberg/sink.py: pyiceberg's PyArrowFileIO instance attribute, replaced so a worker writes S3 as its own session of the role
