"""The bad-input corpus: each case's files generated in code (no binaries committed), by id.

A builder writes its input under the tenant's data folder and returns the source's config (a dict for
`SourceConfig`); API cases also program the local HTTP server. `manifest.yml` says what each must give.
Builders taking `phases` return a list of (source, server setup) applied run after run (schema drift
between runs).
"""

from __future__ import annotations

import codecs
import json
import sqlite3
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.sources import tcvn3
from tests.fixtures.http import Reply

HEADER = "ma;ten;ngay;so_tien\n"
GOOD = ["HS1;Nguyễn Văn An;01/07/2025;50.000,5", "HS2;Trần Thị Hà;02/07/2025;1.234",
        "HS3;Lê Đức Thắng;03/07/2025;12,5"]
CSV_OPTS = {"delimiter": ";", "date_format": "%d/%m/%Y", "decimal_separator": ",", "thousands": ".",
            "types": {"ma": "VARCHAR", "ngay": "DATE", "so_tien": "DOUBLE"}}
BUILDERS: dict[str, Callable[..., Any]] = {}


def case(fn):
    BUILDERS[fn.__name__] = fn
    return fn


def _csv(root: Path, name: str, data: bytes | str, **opts) -> dict:
    path = root / "sources" / f"{name}.csv"
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    options = {**CSV_OPTS, **opts}
    return {"name": "src", "kind": "csv", "location": f"sources/{name}.csv", "options": options,
            "primary_key": ["ma"]}


def _lines(*rows: str, header: str = HEADER) -> str:
    return header + "".join(r + "\n" for r in rows)


# --- csv: types ------------------------------------------------------------------------------------------
@case
def csv_impossible_date(root, **_):
    return _csv(root, "a", _lines(*GOOD, "HS4;Phạm Văn B;31/02/2024;10"))


@case
def csv_both_separators_wrong(root, **_):
    return _csv(root, "a", _lines(*GOOD, "HS4;Phạm Văn B;04/07/2025;1,234.5"))


@case
def csv_text_in_integer(root, **_):
    types = {**CSV_OPTS["types"], "so_tien": "INTEGER"}
    return _csv(root, "a", _lines("HS1;A;01/07/2025;5", "HS2;B;01/07/2025;mười", "HS3;C;01/07/2025;7"),
                types=types, thousands=None, decimal_separator=None)


@case
def csv_integer_overflow(root, **_):
    types = {**CSV_OPTS["types"], "so_tien": "INTEGER"}
    return _csv(root, "a", _lines("HS1;A;01/07/2025;5", "HS2;B;01/07/2025;99999999999"), types=types,
                thousands=None, decimal_separator=None)


@case
def csv_grouping_wrong(root, **_):
    return _csv(root, "a", _lines(*GOOD, "HS4;D;04/07/2025;50.00,5", "HS5;E;04/07/2025;1..2"))


@case
def csv_every_row_bad(root, **_):
    return _csv(root, "a", _lines("HS1;A;2025-07-01;5", "HS2;B;2025-07-02;6"))


# --- csv: structure --------------------------------------------------------------------------------------
@case
def csv_ragged_extra_column(root, **_):
    return _csv(root, "a", _lines(*GOOD, "HS4;D;04/07/2025;1;thừa"))


@case
def csv_ragged_missing_column(root, **_):
    return _csv(root, "a", _lines(*GOOD, "HS4;D"))


@case
def csv_unclosed_quote(root, **_):
    return _csv(root, "a", _lines(*GOOD, 'HS4;"Phạm Văn B;04/07/2025;1'))


@case
def csv_nul_byte(root, **_):
    return _csv(root, "a", _lines(*GOOD, "HS4;Ph\x00m;04/07/2025;1"))


@case
def csv_nul_padding_at_end(root, **_):
    return _csv(root, "a", _lines(*GOOD).encode() + b"\x00" * 64)


@case
def csv_bom_in_the_middle(root, **_):
    # Two exports joined with `cat`: the second one's BOM and header land in the middle.
    return _csv(root, "a", codecs.BOM_UTF8 + _lines(*GOOD[:2]).encode() + codecs.BOM_UTF8
                + _lines(GOOD[2]).encode())


@case
def csv_mixed_line_endings(root, **_):
    return _csv(root, "a", (HEADER.replace("\n", "\r\n") + GOOD[0] + "\n" + GOOD[1] + "\r\n" + GOOD[2] + "\n"))


@case
def csv_empty_file(root, **_):
    return _csv(root, "a", b"")


@case
def csv_header_only(root, **_):
    return _csv(root, "a", HEADER)


@case
def csv_duplicate_header(root, **_):
    return _csv(root, "a", _lines(*GOOD, header="ma;ten;ngay;ten\n"), types={"ma": "VARCHAR"})


@case
def csv_duplicate_header_after_nfc(root, **_):
    header = "ma;tên;" + unicodedata.normalize("NFD", "tên") + ";so_tien\n"
    return _csv(root, "a", _lines(*GOOD, header=header), types={"ma": "VARCHAR"})


@case
def csv_nfd_text(root, **_):
    return _csv(root, "a", unicodedata.normalize("NFD", _lines(*GOOD)))


@case
def csv_nfd_header(root, **_):
    header = "ma;" + unicodedata.normalize("NFD", "tên") + ";ngay;so_tien\n"
    return _csv(root, "a", _lines(*GOOD, header=header))


# --- csv: encodings --------------------------------------------------------------------------------------
@case
def csv_cp1258_declared_utf8(root, **_):
    return _csv(root, "a", _lines(*GOOD).encode("cp1258", errors="replace").replace(b"?", b"\xd2"))


@case
def csv_utf16_without_bom(root, **_):
    return _csv(root, "a", _lines(*GOOD).encode("utf-16-le"))


@case
def csv_tcvn3_labelled_cp1258(root, **_):
    return _csv(root, "a", tcvn3.encode(_lines(*GOOD)), encoding="windows-1258")


@case
def csv_mixed_encodings(root, **_):
    return _csv(root, "a", _lines(*GOOD).encode() + "HS4;Nguyễn;04/07/2025;1\n".encode("cp1258",
                                                                                      errors="ignore") + b"\xe0\n")


@case
def csv_double_encoded(root, **_):
    return _csv(root, "a", _lines(*GOOD).encode("utf-8").decode("latin-1").encode("utf-8"))


@case
def csv_utf8_declared_tcvn3(root, **_):
    return _csv(root, "a", _lines(*GOOD), encoding="tcvn3")


@case
def csv_binary_garbage(root, **_):
    return _csv(root, "a", bytes(range(256)) * 8)


# --- csv: sizes and hostile content ----------------------------------------------------------------------
@case
def csv_one_row(root, **_):
    return _csv(root, "a", _lines(GOOD[0]))


@case
def csv_very_wide_row(root, **_):
    header = "ma;" + ";".join(f"c{i}" for i in range(1000)) + "\n"
    row = "HS1;" + ";".join(str(i) for i in range(1000))
    return _csv(root, "a", header + row + "\n", types={"ma": "VARCHAR"}, date_format=None)


@case
def csv_long_field(root, **_):
    return _csv(root, "a", _lines(*GOOD, "HS4;" + "Nguyễn " * 150_000 + ";04/07/2025;1"))


@case
def csv_formula_injection(root, **_):
    return _csv(root, "a", _lines(*GOOD, "HS4;=cmd|' /C calc'!A0;04/07/2025;1", "HS5;@SUM(1+1)*cmd;04/07/2025;1"))


@case
def csv_control_characters(root, **_):
    return _csv(root, "a", _lines(*GOOD, "HS4;Ph\x1b[31mạm\x07\x08;04/07/2025;1"))


# --- excel -----------------------------------------------------------------------------------------------
def _xlsx(root: Path, rows: list[list], name: str = "a", merge: str | None = None, **opts) -> dict:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    if merge:
        ws.merge_cells(merge)
    wb.save(root / "sources" / f"{name}.xlsx")
    return {"name": "src", "kind": "excel", "location": f"sources/{name}.xlsx", "options": opts,
            "primary_key": ["ma"]}


XL_HEAD = ["ma", "ten", "ngay", "so_tien"]
XL_OPTS = {"date_format": "%d/%m/%Y", "decimal_separator": ",", "thousands": ".",
           "types": {"ngay": "DATE", "so_tien": "DOUBLE"}}


@case
def xlsx_div0_cell(root, **_):
    return _xlsx(root, [XL_HEAD, ["HS1", "A", "01/07/2025", 5], ["HS2", "B", "02/07/2025", "#DIV/0!"],
                        ["HS3", "C", "03/07/2025", "50.000,5"]], **XL_OPTS)


@case
def xlsx_error_cells_every_kind(root, **_):
    errors = ["#N/A", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!"]
    return _xlsx(root, [XL_HEAD, ["HS0", "ok", "01/07/2025", 1],
                        *[[f"HS{i + 1}", e, "01/07/2025", 1] for i, e in enumerate(errors)]], **XL_OPTS)


@case
def xlsx_vietnamese_text_numbers_and_dates(root, **_):
    return _xlsx(root, [XL_HEAD, ["HS1", "A", "31/12/2024", "50.000,5"], ["HS2", "B", "01/01/2025", "1.234"],
                        ["HS3", "C", "31/02/2024", "7"], ["HS4", "D", "02/01/2025", "1,234.5"]], **XL_OPTS)


@case
def xlsx_serial_dates_and_text_dates(root, **_):
    return _xlsx(root, [XL_HEAD, ["HS1", "A", 45658, 1], ["HS2", "B", "02/01/2025", 2]], **XL_OPTS)


@case
def xlsx_merged_header_duplicates(root, **_):
    return _xlsx(root, [["ma", "ten", None, "so_tien"], ["HS1", "A", "B", 1]], merge="B1:C1")


@case
def xlsx_duplicate_header(root, **_):
    return _xlsx(root, [["ma", "ten", "ten"], ["HS1", "A", "B"]])


@case
def xlsx_header_only(root, **_):
    return _xlsx(root, [XL_HEAD])


@case
def xlsx_not_a_workbook(root, **_):
    (root / "sources" / "a.xlsx").write_text("ma;ten\nHS1;A\n", encoding="utf-8")
    return {"name": "src", "kind": "excel", "location": "sources/a.xlsx", "primary_key": ["ma"]}


@case
def xlsx_truncated(root, **_):
    _xlsx(root, [XL_HEAD, ["HS1", "A", "01/07/2025", 1]])
    path = root / "sources" / "a.xlsx"
    path.write_bytes(path.read_bytes()[:700])
    return {"name": "src", "kind": "excel", "location": "sources/a.xlsx", "primary_key": ["ma"]}


@case
def xlsx_formula_injection(root, **_):
    return _xlsx(root, [["ma", "ten"], ["HS1", "'=cmd|' /C calc'!A0"], ["HS2", "An"]])


# --- json files ------------------------------------------------------------------------------------------
def _json(root: Path, data: bytes | str, **opts) -> dict:
    (root / "sources" / "a.json").write_bytes(data.encode() if isinstance(data, str) else data)
    return {"name": "src", "kind": "json", "location": "sources/a.json", "options": opts, "primary_key": ["ma"]}


J_RECORDS = [{"ma": "HS1", "ten": "An", "ngay": "01/07/2025", "so_tien": "50.000,5"},
             {"ma": "HS2", "ten": "Bình", "ngay": "02/07/2025", "so_tien": "1.234"}]


@case
def json_truncated(root, **_):
    return _json(root, json.dumps(J_RECORDS, ensure_ascii=False)[:-20])


@case
def json_not_json(root, **_):
    return _json(root, "<html><body>502 Bad Gateway</body></html>")


@case
def json_vietnamese_values_typed(root, **_):
    bad = {"ma": "HS3", "ten": "C", "ngay": "31/02/2024", "so_tien": "1"}
    return _json(root, json.dumps([*J_RECORDS, bad], ensure_ascii=False), **XL_OPTS)


@case
def json_empty_array(root, **_):
    return _json(root, "[]")


# --- api (local HTTP server) -----------------------------------------------------------------------------
def _api(server, path: str, **opts) -> dict:
    return {"name": "src", "kind": "api", "location": server.url + path, "primary_key": ["ma"],
            "options": {"rate_limit": 0, "retries": 0, **opts}}


def _records(n: int, start: int = 1, key: str = "ma") -> list[dict]:
    return [{key: f"HS{i}", "ten": f"Người {i}", "so_tien": f"{i}.000,5"} for i in range(start, start + n)]


@case
def api_same_page_forever(root, server, **_):
    server.route("/feed", Reply(200, {"items": _records(10)}))
    return _api(server, "/feed", records_path="items", pagination={"type": "page", "page_size": 10})


@case
def api_cursor_cycle(root, server, **_):
    def handler(req):
        cur = req.query.get("cursor", "a")
        nxt = {"a": "b", "b": "c", "c": "a"}[cur]
        start = {"a": 1, "b": 3, "c": 5}[cur]
        return Reply(200, {"items": _records(2, start), "next": nxt})
    server.route("/feed", handler)
    return _api(server, "/feed", records_path="items",
                pagination={"type": "cursor", "cursor_param": "cursor", "next_cursor_path": "next"})


@case
def api_records_repeated_across_pages(root, server, **_):
    data = _records(25)

    def handler(req):
        off = int(req.query.get("offset", 0))
        return Reply(200, data[max(off - 2, 0): off + 10])  # each page overlaps the last by two records
    server.route("/feed", handler)
    return _api(server, "/feed", pagination={"type": "offset", "page_size": 10})


@case
def api_field_names_change_mid_feed(root, server, **_):
    def handler(req):
        page = int(req.query.get("page", 1))
        recs = _records(10, 1) if page == 1 else ([{"maHoSo": r["ma"], "tenNguoi": r["ten"], "so_tien": r["so_tien"]}
                                                    for r in _records(5, 11)])
        return Reply(200, recs)
    server.route("/feed", handler)
    return _api(server, "/feed", pagination={"type": "page", "page_size": 10})


@case
def api_field_renamed_between_runs(root, server, phase=0, **_):
    key = "ma" if phase == 0 else "maHoSo"
    server.route("/feed", Reply(200, [{key: f"HS{i}", "ten": "A", "so_tien": 1} for i in range(phase * 10, 5 + phase * 10)]))
    return _api(server, "/feed")


@case
def api_bad_number(root, server, **_):
    server.route("/feed", Reply(200, [*_records(3), {"ma": "HS9", "ten": "X", "so_tien": "1,234.5"}]))
    return _api(server, "/feed", decimal_separator=",", thousands=".", types={"so_tien": "DOUBLE"})


@case
def api_not_json(root, server, **_):
    server.route("/feed", Reply(200, "<html>login</html>", headers={"Content-Type": "text/html"}))
    return _api(server, "/feed")


# --- parquet, sqlite -------------------------------------------------------------------------------------
@case
def parquet_truncated(root, **_):
    import duckdb

    path = root / "sources" / "a.parquet"
    duckdb.sql(f"COPY (SELECT 'HS' || i AS ma FROM range(1000) t(i)) TO '{path}' (FORMAT parquet)")
    path.write_bytes(path.read_bytes()[:-40])
    return {"name": "src", "kind": "parquet", "location": "sources/a.parquet", "primary_key": ["ma"]}


@case
def parquet_not_parquet(root, **_):
    (root / "sources" / "a.parquet").write_text("ma,ten\nHS1,A\n", encoding="utf-8")
    return {"name": "src", "kind": "parquet", "location": "sources/a.parquet", "primary_key": ["ma"]}


@case
def sqlite_not_a_database(root, **_):
    (root / "sources" / "a.sqlite").write_text("ma;ten\nHS1;A\n", encoding="utf-8")
    return {"name": "src", "kind": "sqlite", "location": "sources/a.sqlite", "primary_key": ["ma"],
            "options": {"table": "ho_so"}}


@case
def sqlite_truncated(root, **_):
    path = root / "sources" / "a.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE ho_so (ma TEXT, ten TEXT)")
        db.executemany("INSERT INTO ho_so VALUES (?, ?)", [(f"HS{i}", "x" * 200) for i in range(2000)])
    path.write_bytes(path.read_bytes()[:8192])
    return {"name": "src", "kind": "sqlite", "location": "sources/a.sqlite", "primary_key": ["ma"],
            "options": {"table": "ho_so"}}
