"""Open-data publishing vs DuckDB's bare `COPY … TO` of the same tables to the same three formats.

    .venv/bin/python benchmarks/bench_publish.py [--rows 10000000] [--repeat 2]

Builds a serving snapshot whose open datasets hold `--rows` rows in total (three marts shaped like the
province's: weekly dossiers per agency/field 50 %, processing time 30 %, digital society 20 %; text, date,
integer and double columns), then alternates, in one process, (1) bare: for each table `COPY (SELECT * …)`
to CSV (header), Parquet (zstd) and JSON (array) and (2) ours: `pipelines.publish.opendata.publish` into an
empty folder — content hash, the gate (personal-column names, CCCD/phone/e-mail regexps over every text
column, small cells of one dataset, blocked sources), the same three COPYs (CSV with its BOM), SHA-256 of
every file, datapackage.json, DCAT-AP catalogue, report, state. Also times a second, unchanged publish.
Prints BENCHROW lines (benchmarks/report.py). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from report import command_line, row  # noqa: E402

SHARES = {"marts.ho_so_tuan": 0.5, "marts.ho_so_thoi_gian_xu_ly": 0.3, "marts.xa_hoi_so_tinh": 0.2}
AGENCIES = ["Sở Tư pháp", "Sở Xây dựng", "Sở Y tế", "Sở Giáo dục và Đào tạo", "Sở Công Thương",
            "Sở Nông nghiệp và Môi trường", "Sở Tài chính", "UBND phường Hoa Lư"]
FIELDS = ["Hộ tịch", "Chứng thực", "Đất đai", "Xây dựng", "Kinh doanh", "Y tế", "Giáo dục"]


def build_snapshot(path: Path, rows: int) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA marts; CREATE SCHEMA meta")
    agencies = "[" + ", ".join(f"'{a}'" for a in AGENCIES) + "]"
    fields = "[" + ", ".join(f"'{f}'" for f in FIELDS) + "]"
    n = {t: int(rows * s) for t, s in SHARES.items()}
    n["marts.ho_so_tuan"] += rows - sum(n.values())
    con.execute(f"""CREATE TABLE marts.ho_so_tuan AS SELECT
        DATE '2020-01-06' + INTERVAL (i // 4000 * 7) DAY AS tuan_bat_dau,
        {agencies}[1 + i % {len(AGENCIES)}] || ' ' || (i % 97) AS co_quan,
        {fields}[1 + i % {len(FIELDS)}] AS linh_vuc,
        (5 + i % 200)::BIGINT AS n_tiep_nhan, (4 + i % 180)::BIGINT AS n_da_tra, (3 + i % 150)::BIGINT AS n_dung_han,
        (i % 30)::BIGINT AS n_qua_han, (i % 20)::BIGINT AS n_dang_xu_ly, round(1 + (i % 1000) / 37.0, 2) AS avg_days_processing
        FROM range({n['marts.ho_so_tuan']}) t(i)""")
    con.execute(f"""CREATE TABLE marts.ho_so_thoi_gian_xu_ly AS SELECT
        (2000 + i % 26)::BIGINT AS nam, (1 + i % 4)::BIGINT AS quy, {fields}[1 + i % {len(FIELDS)}] AS linh_vuc,
        {agencies}[1 + i % {len(AGENCIES)}] || ' ' || (i % 991) AS co_quan, (5 + i % 500)::BIGINT AS n_da_tra,
        (i % 15)::BIGINT AS p50_days, (i % 20)::BIGINT AS p75_days, (i % 25)::BIGINT AS p90_days,
        (i % 30)::BIGINT AS p95_days, (i % 60)::BIGINT AS max_days, round((i % 700) / 31.0, 2) AS avg_days,
        round((i % 300) / 17.0, 2) AS avg_days_allowed, round((i % 10000) / 10000.0, 4) AS ty_le_dung_han
        FROM range({n['marts.ho_so_thoi_gian_xu_ly']}) t(i)""")
    con.execute(f"""CREATE TABLE marts.xa_hoi_so_tinh AS SELECT (2000 + i % 26)::INTEGER AS nam,
        (1 + i % 4)::INTEGER AS quy, 'thanh_phan_' || (i % 8 + 1) || '_' || (i % 50000) AS thanh_phan,
        round((i % 1000) / 10.0, 2) AS ty_le_pct_binh_quan, (10 + i % 3000)::BIGINT AS n_xa
        FROM range({n['marts.xa_hoi_so_tinh']}) t(i)""")
    con.execute("""CREATE TABLE meta.validations (run_id VARCHAR, batch_id VARCHAR, source VARCHAR, suite VARCHAR,
        expectation VARCHAR, column_name VARCHAR, severity VARCHAR, is_success BOOLEAN, description VARCHAR,
        validated_at TIMESTAMPTZ)""")
    con.execute("INSERT INTO meta.validations VALUES ('b', 'b', 'ho_so', 's', 'e', 'ma_ho_so', 'block', true, 'ok', now())")
    con.execute("CREATE TABLE meta.snapshot AS SELECT 'bench' AS run_id, now() AS published_at")
    con.close()


def bench_config():
    from pipelines.config import OpenDataPlan, load_tenant

    base = {"keywords": ["bench"], "keywords_en": ["bench"], "themes": ["GOVE"], "phase": "p1"}
    plan = OpenDataPlan.model_validate({
        "publisher": "Sở Khoa học và Công nghệ", "contact_email": "dulieumo@example.gov.vn",
        "phases": [{"id": "p1", "name": "Đợt 1", "due": "2026-12-31", "min_datasets": 3}],
        "datasets": [
            {"id": "ho_so_theo_tuan", "table": "marts.ho_so_tuan", "title": "Hồ sơ theo tuần", "title_en": "Weekly",
             "description": "Hồ sơ", "description_en": "Dossiers", "frequency": "WEEKLY",
             "cell_columns": ["tuan_bat_dau", "co_quan", "linh_vuc"], "count_column": "n_tiep_nhan", **base},
            {"id": "thoi_gian_xu_ly", "table": "marts.ho_so_thoi_gian_xu_ly", "title": "Thời gian xử lý",
             "title_en": "Processing time", "description": "Thời gian", "description_en": "Time",
             "frequency": "QUARTERLY", **base},
            {"id": "xa_hoi_so", "table": "marts.xa_hoi_so_tinh", "title": "Xã hội số", "title_en": "Digital society",
             "description": "Chỉ số", "description_en": "Indicators", "frequency": "QUARTERLY", **base}]})
    return load_tenant("ninh-binh").model_copy(update={"open_data": plan})


def bare(snapshot: Path, out: Path) -> None:
    import duckdb

    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        for table in SHARES:
            name = table.split(".")[1]
            con.execute(f"COPY (SELECT * FROM {table}) TO '{out / name}.csv' (FORMAT csv, HEADER true)")
            con.execute(f"COPY (SELECT * FROM {table}) TO '{out / name}.parquet' (FORMAT parquet, COMPRESSION zstd)")
            con.execute(f"COPY (SELECT * FROM {table}) TO '{out / name}.json' (FORMAT json, ARRAY true)")
    finally:
        con.close()


def ours(cfg, snapshot: Path, out: Path):
    from pipelines.publish.base import PublishContext
    from pipelines.publish.opendata import publish
    from pipelines.settings import TenantPaths

    result = publish(PublishContext(cfg, TenantPaths(out), snapshot, out, "bench"))
    assert result.status == "ok" and not result.refused, result.summary()
    return result


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_publish_"))
    os.environ["TONGHOP_HOME"] = str(work)
    try:
        snapshot = work / "serving.duckdb"
        t = time.perf_counter()
        build_snapshot(snapshot, args.rows)
        print(f"snapshot of {args.rows:,} rows built in {time.perf_counter() - t:.1f} s "
              f"({snapshot.stat().st_size / 1e6:.0f} MB)", flush=True)
        cfg = bench_config()
        times: dict[str, list[float]] = {"bare": [], "ours": [], "unchanged": []}
        sizes = {}
        for i in range(args.repeat):
            for route in ("bare", "ours"):  # alternated: both see the same machine state
                out = work / f"{route}_{i}"
                out.mkdir()
                t = time.perf_counter()
                if route == "bare":
                    bare(snapshot, out)
                else:
                    ours(cfg, snapshot, out)
                times[route].append(time.perf_counter() - t)
                sizes[route] = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
                print(f"run {i + 1} {route}: {times[route][-1]:.2f} s, {sizes[route] / 1e6:.0f} MB", flush=True)
                if route == "ours":
                    t = time.perf_counter()
                    again = ours(cfg, snapshot, out)
                    times["unchanged"].append(time.perf_counter() - t)
                    assert again.written == [] and len(again.unchanged) == 3
                shutil.rmtree(out)
        b, o, u = (statistics.median(times[k]) for k in ("bare", "ours", "unchanged"))
        cmd = command_line()
        row(f"publish open data, {args.rows:,} rows in 3 datasets (CSV+BOM, Parquet, JSON, gate, hashes, "
            "DCAT, datapackage)", "bare DuckDB COPY of the same tables to the same 3 formats", round(b, 2),
            round(o, 2), "s", cmd, target="≤ 1.5×", note=f"median of {args.repeat}, alternated in one process")
        row(f"republish unchanged open data, {args.rows:,} rows", "bare DuckDB COPY (3 formats)", round(b, 2),
            round(u, 2), "s", cmd, note="content hash only: no file rewritten")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
