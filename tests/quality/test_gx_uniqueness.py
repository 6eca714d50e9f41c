"""Uniqueness expectations on DuckDB count duplicates with one GROUP BY, with exactly GX's own results.

`gx_duckdb.install_uniqueness_pushdown` replaces GX's window (`count(*) OVER (PARTITION BY …)`) and
join-back queries for `column_values.unique` / `compound_columns.unique` on DuckDB only. These tests pin
that the numbers are GX's — NULL keys, compound keys with a NULL part, row conditions — by running the
same expectations through GX's original SQL and comparing, and that the SQL sent is the aggregate.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import great_expectations.expectations as gxe
import pytest
import sqlalchemy as sa

from pipelines.quality import gx_duckdb
from pipelines.quality.suites import RESULT_FORMAT, _duckdb_query_batch

ROWS = [  # (id, k1, k2, flag)
    ("a", 1, 1, 1), ("a", 1, 1, 1), ("b", 1, None, 1), (None, 1, None, 0), (None, None, None, 1),
    ("c", 2, 1, 0), ("c", 2, 2, 1), ("c", 3, 1, 1), ("d", None, 5, 1), ("e", None, 5, 0),
]
EXPECTATIONS = {
    # 'a' twice and 'c' three times; the two NULL ids are never unexpected
    "id unique": (gxe.ExpectColumnValuesToBeUnique(column="id"), 5),
    # among flag = 1: 'a' twice, 'c' twice ('c' with flag 0 is outside the domain)
    "id unique where flag = 1": (gxe.ExpectColumnValuesToBeUnique(
        column="id", row_condition='col("flag")==1', condition_parser="great_expectations"), 4),
    # (1,1) twice; (1,NULL) twice and (NULL,5) twice are not matched by GX's SQL join, so not unexpected
    "(k1, k2) unique": (gxe.ExpectCompoundColumnsToBeUnique(column_list=["k1", "k2"]), 2),
    # ('a',1) twice and ('c',2) twice; (NULL,NULL) is skipped (ignore_row_if: all values missing)
    "(id, k1) unique": (gxe.ExpectCompoundColumnsToBeUnique(column_list=["id", "k1"]), 4),
}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "u.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t (id VARCHAR, k1 INTEGER, k2 INTEGER, flag INTEGER)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", ROWS)
    return path


def _validate(db: Path) -> tuple[dict[str, int], list[str]]:
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        with _duckdb_query_batch(db, "SELECT * FROM t") as batch:
            counts = {name: batch.validate(expectation, result_format=RESULT_FORMAT).result["unexpected_count"]
                      for name, (expectation, _) in EXPECTATIONS.items()}
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    return counts, statements


def test_duplicate_counts_are_gx_counts_through_one_group_by(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts, statements = _validate(db)
    assert counts == {name: expected for name, (_, expected) in EXPECTATIONS.items()}
    counting = [s for s in statements if "duplicate_keys" in s]
    assert len(counting) == 4 and all("GROUP BY" in s and "HAVING count(*) >" in s for s in counting)
    # GX's window query remains only as the row-sample query, which our result format limits to 0 rows.
    assert not [s for s in statements if "OVER (PARTITION BY" in s and " LIMIT " not in s]

    # GX's own SQL path (the providers the pushdown wraps) gives the same numbers, the slow way.
    from great_expectations.expectations.registry import _registered_metrics

    for metric in gx_duckdb._UNIQUENESS_METRICS:
        providers = _registered_metrics[metric]["providers"]
        cls, ours = providers["SqlAlchemyExecutionEngine"]
        monkeypatch.setitem(providers, "SqlAlchemyExecutionEngine", (cls, ours.__wrapped__))
    monkeypatch.setattr(gx_duckdb, "install_uniqueness_pushdown", lambda: None)
    original, original_statements = _validate(db)
    assert original == counts
    assert any("OVER (PARTITION BY" in s and " LIMIT " not in s for s in original_statements)
    assert not [s for s in original_statements if "duplicate_keys" in s]
