"""Data map of 34 provinces: `pipelines.publish.datamap.build` over generated catalogues, against a bare DuckDB
read of the same catalogue files into one table (same run).

Each synthetic province publishes what the real publishers write: `database_catalogue.csv` (20 databases,
names drawn from the kinds every province runs, so real cross-unit duplicates exist) and an open-data
publication (`publish_report.json` + 15 `datapackage.json` with column schemas). Target: build < 10 s.

    .venv/bin/python benchmarks/bench_datamap.py [--units 34] [--databases 20] [--datasets 15]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report import command_line, row  # noqa: E402
from pipelines.publish.catalogue import COLUMNS  # noqa: E402
from pipelines.publish.datamap import Unit, build  # noqa: E402

TOPICS = ["thủ tục hành chính một cửa", "đất đai", "giáo dục và đào tạo", "y tế cơ sở", "doanh nghiệp", "hộ tịch",
          "giao thông vận tải", "tài nguyên môi trường", "lao động việc làm", "bảo trợ xã hội", "nông nghiệp",
          "quy hoạch xây dựng", "văn hóa du lịch", "cán bộ công chức", "tài chính ngân sách", "chỉ số chuyển đổi số",
          "phản ánh kiến nghị", "an toàn thực phẩm", "đầu tư công", "thi đua khen thưởng", "khoa học công nghệ",
          "thanh tra khiếu nại", "dân tộc tôn giáo", "điểm phục vụ bưu chính"]
COLUMN_POOL = ["ma_xa", "ten_xa", "ky_bao_cao", "nam", "quy", "tuan_bat_dau", "co_quan", "linh_vuc", "n_tiep_nhan",
               "n_da_tra", "n_dung_han", "n_qua_han", "ty_le", "gia_tri", "ma_chi_tieu", "so_luong", "don_vi"]


def generate(root: Path, n_units: int, n_db: int, n_ds: int, seed: int = 34) -> list[Unit]:
    rnd = random.Random(seed)
    units = []
    for i in range(n_units):
        uid, name = f"tinh-{i:02d}", f"Tỉnh Thử Nghiệm {i:02d}"
        folder = root / uid / "open_data"
        folder.mkdir(parents=True)
        with (folder / "database_catalogue.csv").open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh, lineterminator="\r\n")
            w.writerow(COLUMNS)
            for j, topic in enumerate(rnd.sample(TOPICS, n_db)):
                cls = rnd.choice(["quoc_gia", "dung_chung", "dung_chung", "noi_bo"])
                is_open = rnd.random() < 0.5
                w.writerow([uid, name, "province", f"{i:02d}", f"csdl_{j:02d}", f"Cơ sở dữ liệu {topic} {name.lower()}",
                            cls, cls, f"Quản lý {topic}", "Toàn tỉnh", "nguon_a;nguon_b", f"Sở {topic}",
                            "mo_1;mo_2" if is_open else "", "chia_se_1", str(is_open).lower(), "true", "dang_van_hanh",
                            "", "DAILY", "2026-11-30T19:00:00Z", f"{rnd.uniform(0.7, 1):.4f}"])
        entries = []
        for k, topic in enumerate(rnd.sample(TOPICS, n_ds)):
            ds_id = f"du_lieu_{k:02d}"
            (folder / ds_id).mkdir()
            cols = rnd.sample(COLUMN_POOL, 6)
            (folder / ds_id / "datapackage.json").write_text(json.dumps({
                "name": ds_id, "title": f"Số liệu {topic} theo quý", "description": f"Số liệu {topic}",
                "resources": [{"name": ds_id, "schema": {"fields": [{"name": c, "type": "string"} for c in cols]}}]},
                ensure_ascii=False), encoding="utf-8")
            entries.append({"id": ds_id, "table": f"marts.{ds_id}", "row_count": rnd.randint(100, 10_000),
                            "status": "published", "reasons": [], "version": "1.0.0",
                            "issued": "2026-11-01T00:00:00Z", "modified": "2026-11-30T00:00:00Z",
                            "distributions": [{"format": f, "path": f"{ds_id}/{ds_id}.{f}", "byte_size": 1000,
                                               "sha256": "0" * 64} for f in ("csv", "parquet", "json")]})
        (folder / "publish_report.json").write_text(json.dumps({"tenant": uid, "datasets": entries}), encoding="utf-8")
        units.append(Unit(uid, name, "province", f"{i:02d}", folder))
    return units


def bare(units: list[Unit]) -> float:
    """DuckDB alone: read the same catalogue files (CSV + JSON reports) into one table each."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("CREATE TABLE db AS SELECT * FROM read_csv(?, header = true)",
                [[str(u.folder / "database_catalogue.csv") for u in units]])
    con.execute("CREATE TABLE ds AS SELECT * FROM read_json_auto(?)", [[str(u.folder / "publish_report.json")
                                                                         for u in units]])
    con.execute("CREATE TABLE dp AS SELECT * FROM read_json_auto(?)",
                [[str(p) for u in units for p in sorted(u.folder.glob("*/datapackage.json"))]])
    con.close()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=34)
    ap.add_argument("--databases", type=int, default=20)
    ap.add_argument("--datasets", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        units = generate(Path(tmp) / "home", args.units, args.databases, args.datasets)
        import rdflib  # noqa: F401 — import time is not the map's work; DuckDB's import is equally excluded
        base = bare(units)
        t0 = time.perf_counter()
        result = build(Path(tmp) / "map", units=units)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = build(Path(tmp) / "map", units=units)
        unchanged = time.perf_counter() - t0
        assert result.changed and not again.changed
        cmd = command_line()
        note = (f"{result.n_units} units, {result.n_databases} databases, {result.n_datasets} datasets, "
                f"{result.n_duplicates} likely duplicates")
        row("datamap build (34 provinces)", "bare DuckDB read of the same files", round(base, 3),
            round(first, 3), "s", cmd, target="< 10 s", note=note)
        row("datamap rebuild, nothing changed", "bare DuckDB read of the same files", round(base, 3),
            round(unchanged, 3), "s", cmd, note="content hash equal: nothing rewritten, version kept")


if __name__ == "__main__":
    main()
