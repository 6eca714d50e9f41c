"""Great Expectations on DuckDB (SQL pushdown) vs. the same checks as hand-written DuckDB SQL, 10M rows.

    .venv/bin/python benchmarks/bench_quality.py [--rows 10000000] [--repeat 3]

Builds a dossier-like table in a temp DuckDB file, then runs, each in its own subprocess (so peak RSS is
that route's alone, read with os.wait4): (1) `validate_query` with a 9-expectation suite (not-null, unique,
in-set, between, regex, column-pair order, row count, compound key, amount between) and (2) one
hand-written SQL query computing the same failing-row counts. Both must agree on every count. Prints the
median time of each, GX/SQL ratio, and peak RSS. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from report import command_line, row  # noqa: E402

from pipelines.quality.suites import VALIDATION_DUCKDB_SETTINGS  # noqa: E402 - after the path (GX not imported)

# Same DuckDB settings for both routes: the ones `validate_query` gives every validation connection by default
# (a memory cap, DuckDB spills instead of growing past it; no insertion-order bookkeeping, which counts never
# need). The GX route relies on that default, i.e. measures what the pipeline runs. Without them GX peaks at
# ~1.0 GB and the hand SQL at ~1.36 GB here.
SETTINGS = VALIDATION_DUCKDB_SETTINGS

SUITE = {"name": "bench", "meta": {}, "expectations": [
    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "ngay_nhan"}},
    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "ma_ho_so"}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "trang_thai",
                                                             "value_set": ["da_tra", "dang_xu_ly"]}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "so_tien", "min_value": 0}},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "so_cccd", "regex": "^[0-9]{12}$"}},
    {"type": "expect_column_pair_values_a_to_be_greater_than_b",
     "kwargs": {"column_A": "ngay_hen_tra", "column_B": "ngay_nhan", "or_equal": True}},
    {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["ma_xa", "so_thu_tu"]}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "ty_le", "min_value": 0, "max_value": 100}},
]}

# The same checks by hand: one scan for the column-map checks, one group-by per uniqueness check.
HAND_SQL = """
WITH b AS (SELECT * FROM raw.bench),
cu AS (SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM b GROUP BY ma_xa, so_thu_tu HAVING count(*) > 1) x),
uu AS (SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM b WHERE ma_ho_so IS NOT NULL
                                         GROUP BY ma_ho_so HAVING count(*) > 1) x)
SELECT count(*),
       count(*) FILTER (WHERE ngay_nhan IS NULL),
       (SELECT * FROM uu),
       count(*) FILTER (WHERE trang_thai NOT IN ('da_tra', 'dang_xu_ly')),
       count(*) FILTER (WHERE so_tien < 0),
       count(*) FILTER (WHERE NOT regexp_matches(so_cccd, '^[0-9]{12}$')),
       count(*) FILTER (WHERE NOT (ngay_hen_tra >= ngay_nhan)),
       (SELECT * FROM cu),
       count(*) FILTER (WHERE ty_le < 0 OR ty_le > 100)
FROM b
"""

# Faults planted at fixed strides, so every count below is known: see `expected`.
BUILD_SQL = """
CREATE SCHEMA raw;
CREATE TABLE raw.bench AS
SELECT
    'HS' || lpad(CAST(CASE WHEN i % 100003 = 7 THEN i - 1 ELSE i END AS VARCHAR), 9, '0') AS ma_ho_so,
    lpad(CAST(13000 + i % 129 AS VARCHAR), 5, '0')                                         AS ma_xa,
    CASE WHEN i % 200003 = 11 THEN i - 129 ELSE i END // 129                              AS so_thu_tu,
    CASE WHEN i % 50021 = 3 THEN NULL ELSE DATE '2024-01-01' + CAST(i % 600 AS INTEGER) END AS ngay_nhan,
    DATE '2024-01-01' + CAST(i % 600 AS INTEGER) + CASE WHEN i % 70001 = 5 THEN -3 ELSE 5 END AS ngay_hen_tra,
    CASE WHEN i % 90001 = 9 THEN 'khong_ro' WHEN i % 3 = 0 THEN 'dang_xu_ly' ELSE 'da_tra' END AS trang_thai,
    CASE WHEN i % 40009 = 1 THEN lpad(CAST(i AS VARCHAR), 10, '1')
         ELSE '0' || lpad(CAST(37000000000 + i AS VARCHAR), 11, '0') END                   AS so_cccd,
    CASE WHEN i % 80021 = 13 THEN -50000 ELSE 10000 + i % 500000 END                      AS so_tien,
    CASE WHEN i % 60013 = 17 THEN 101.5 ELSE (i % 1000) / 10.0 END                        AS ty_le,
    'b1' AS _batch_id
FROM range(?) t(i);
"""

CHILD_GX = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
from pipelines.quality import gx_duckdb
gx_duckdb.quiet_gx()
import great_expectations  # a fixed per-process cost, reported apart from the checks' time
gx_duckdb.install_regex_support()
from pipelines.quality.suites import validate_query
imported = time.perf_counter()
import_seconds, started = imported - started, imported
o = validate_query(Path(sys.argv[1]), "SELECT * FROM raw.bench", "bench", expectations_dir=Path(sys.argv[2]),
                   run_name="bench")  # default duckdb_settings: VALIDATION_DUCKDB_SETTINGS
counts = [x.unexpected_count if x.unexpected_count is not None else int(x.observed_value) for x in o.outcomes]
print(json.dumps({"seconds": time.perf_counter() - started, "counts": counts, "import_seconds": import_seconds,
                  "errors": [x.error for x in o.outcomes if x.error]}))
"""

CHILD_SQL = """
import json, sys, time
import duckdb
started = time.perf_counter()
con = duckdb.connect(sys.argv[1], read_only=True, config=json.loads(sys.argv[4]))
row = con.execute(sys.argv[3]).fetchone()
con.close()
print(json.dumps({"seconds": time.perf_counter() - started, "counts": list(row), "errors": []}))
"""


def measure(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter; its printed JSON plus wall time and peak RSS (MB) of that child."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), "GX_ANALYTICS_ENABLED": "false"})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child failed with exit code {proc.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["wall"] = time.perf_counter() - started
    result["rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


def expected(rows: int) -> list[int]:
    """Failing rows per check, from the strides in BUILD_SQL (GX counts every row of a repeated value)."""
    def hits(mod: int, rem: int, start: int = 0) -> int:
        return sum(1 for _ in range(rem if rem >= start else rem + mod, rows, mod))
    dup_ids = hits(100003, 7, start=1)  # row i repeats row i-1's id: 2 rows per hit
    dup_keys = hits(200003, 11, start=129)  # row i takes row i-129's (ma_xa, so_thu_tu)
    return [rows, hits(50021, 3), 2 * dup_ids, hits(90001, 9), hits(80021, 13), hits(40009, 1), hits(70001, 5),
            2 * dup_keys, hits(60013, 17)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import duckdb

    work = Path(tempfile.mkdtemp(prefix="bench_quality_"))
    try:
        db = work / "bench.duckdb"
        started = time.perf_counter()
        with duckdb.connect(str(db)) as con:
            con.execute(BUILD_SQL, [args.rows])
        print(f"built {args.rows:,} rows in {time.perf_counter() - started:.1f} s ({db.stat().st_size / 1e6:.0f} MB)")
        project = work / "expectations"
        shutil.copytree(REPO / "expectations" / "gx", project / "gx", ignore=shutil.ignore_patterns("uncommitted"))
        (project / "gx" / "expectations" / "bench.json").write_text(json.dumps(SUITE), encoding="utf-8")

        runs: dict[str, list[dict]] = {"sql": [], "gx": []}
        for _ in range(args.repeat):  # interleaved, so both routes see the same machine state
            runs["sql"].append(measure(CHILD_SQL, str(db), str(project), HAND_SQL, json.dumps(SETTINGS)))
            runs["gx"].append(measure(CHILD_GX, str(db), str(project)))
        want = expected(args.rows)
        for name, results in runs.items():
            for r in results:
                if r["errors"] or r["counts"] != want:
                    raise SystemExit(f"{name}: counts {r['counts']} != expected {want}; errors {r['errors']}")
        sql_s = statistics.median(r["seconds"] for r in runs["sql"])
        gx_s = statistics.median(r["seconds"] for r in runs["gx"])
        print(f"checks agree: {want}")
        print(f"hand SQL : {sql_s:6.2f} s   peak RSS {max(r['rss_mb'] for r in runs['sql']):6.0f} MB")
        print(f"GX SQL   : {gx_s:6.2f} s   peak RSS {max(r['rss_mb'] for r in runs['gx']):6.0f} MB "
              f"(+ GX import {statistics.median(r['import_seconds'] for r in runs['gx']):.1f} s per process)")
        print(f"GX / SQL : {gx_s / sql_s:.2f}x")
        row(f"data quality, GX on DuckDB, {args.rows:,} rows, 9 checks", "hand-written DuckDB SQL", sql_s, gx_s, "s",
            command_line(), target="≤ 2×")
        row(f"data quality peak RSS, {args.rows:,} rows", "hand SQL peak", max(r["rss_mb"] for r in runs["sql"]),
            max(r["rss_mb"] for r in runs["gx"]), "MB", command_line(), target="< 1,000 MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
