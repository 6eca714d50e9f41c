"""Names and values written into SQL text: the one place they are quoted.

Table and column names come from tenant files, agencies' exports, the warehouse and the lakehouse catalogue —
never from this code — so none goes into SQL without `quote_ident`; a text value that cannot be a bound
parameter (a view definition, DDL, a pushed-down filter) goes through `quote_literal`.
"""

from __future__ import annotations


def quote_ident(name: object) -> str:
    """A DuckDB/PostgreSQL identifier quoted: `"` doubled inside (`a"b` → `"a""b"`)."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(text: object) -> str:
    """A SQL string literal: `'` doubled inside (`Hồ 'Gươm'` → `'Hồ ''Gươm'''`)."""
    return "'" + str(text).replace("'", "''") + "'"
