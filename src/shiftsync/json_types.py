"""Types for JSON documents and for AWS answers read as plain data.

Below every layer, like `sql_quote`: any room may name these instead of `Any`, so that
what crosses a seam says it is JSON (and mypy makes the reader narrow it before use).
"""

from __future__ import annotations

from typing import TypeAlias

JsonScalar: TypeAlias = str | int | float | bool | None
JsonValue: TypeAlias = JsonScalar | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject: TypeAlias = dict[str, JsonValue]
