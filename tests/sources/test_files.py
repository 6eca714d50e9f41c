"""File kinds (csv encodings incl. TCVN3, parquet, excel): decoding, fingerprints, bad input named."""

from __future__ import annotations

import codecs
import hashlib
import unicodedata
from datetime import date

import duckdb
import openpyxl
import pytest

from pipelines.config import SourceConfig
from pipelines.errors import SourceError
from pipelines.load import load_sources
from pipelines.sources import encodings, reader_for, tcvn3
from pipelines.warehouse import connect
from tests.fixtures.tenants import tenant_of

NAMES = ["Nguyễn Văn Tuấn", "Trần Thị Hà", "Lê Đức Thắng"]
CSV_TEXT = "ma;ho_ten;dia_chi;so_tien;ngay\n" + "".join(
    f"{i:05d};{name};Hà Nội;1.234.567,5;0{i}/07/2025\n" for i, name in enumerate(NAMES, 1))


def to_cp1258(text: str) -> bytes:
    """Windows-1258 as old software wrote it: base letter (â, ê, ơ... are precomposed) + tone mark."""
    out = b""
    for ch in text:
        parts = unicodedata.normalize("NFD", ch)
        shape = "".join(m for m in parts[1:] if m in "\u0302\u0306\u031b")  # circumflex, breve, horn
        tones = "".join(m for m in parts[1:] if m not in shape)
        out += unicodedata.normalize("NFC", parts[0] + shape).encode("cp1258") + tones.encode("cp1258")
    return out


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def _csv(location: str, **options) -> SourceConfig:
    opts = {"delimiter": ";", "decimal_separator": ",", "thousands": ".", "date_format": "%d/%m/%Y",
            "types": {"ma": "VARCHAR", "so_tien": "DOUBLE", "ngay": "DATE"}, **options}
    return SourceConfig(name="s", kind="csv", location=location, options=opts, primary_key=["ma"])


def test_tcvn3_table_on_known_strings():
    # The classic look of TCVN3 files in modern software: "NguyÔn V¨n TuÊn", "Hµ Néi" are these bytes.
    assert tcvn3.decode(b"Nguy\xd4n V\xa8n Tu\xcan") == "Nguyễn Văn Tuấn"
    assert tcvn3.decode(b"H\xb5 N\xe9i") == "Hà Nội"
    assert b"Nguy\xd4n V\xa8n Tu\xcan".decode("latin-1") == "NguyÔn V¨n TuÊn"
    assert tcvn3.encode("Trường Đại học") == b"Tr\xad\xeang \xa7\xb9i h\xe4c"
    # 74 letters: 7 capitals (Ă Â Ê Ô Ơ Ư Đ), 7 lowercase bases (ă â ê ô ơ ư đ) and 5 toned forms of each
    # of the 12 vowels a ă â e ê i o ô ơ u ư y (60); no two bytes give the same letter.
    assert len(tcvn3.LETTERS) == len(set(tcvn3.LETTERS.values())) == 74


@pytest.mark.parametrize(("encoding", "payload"), [
    (None, CSV_TEXT.encode("utf-8")),
    (None, codecs.BOM_UTF8 + CSV_TEXT.encode("utf-8")),
    ("utf-16", CSV_TEXT.encode("utf-16")),
    (None, CSV_TEXT.encode("utf-16")),                # a BOM says UTF-16 even when nothing is declared
    ("windows-1258", to_cp1258(CSV_TEXT)),
    ("tcvn3", tcvn3.encode(CSV_TEXT)),
], ids=["utf8", "utf8-bom", "utf16", "utf16-undeclared", "cp1258", "tcvn3"])
def test_csv_encodings_give_nfc_unicode(paths, con, encoding, payload):
    (paths.sources / "a.csv").write_bytes(payload)
    options = {"encoding": encoding} if encoding else {}
    rows = reader_for("csv")(_csv("sources/a.csv", **options), con, paths).relation.order("ma").fetchall()
    # Names come back exactly as typed (NFC), numbers in Vietnamese format parse, dd/mm/yyyy dates too.
    assert [r[1] for r in rows] == NAMES
    assert all(unicodedata.is_normalized("NFC", r[1]) for r in rows)
    assert rows[0] == ("00001", "Nguyễn Văn Tuấn", "Hà Nội", 1234567.5, date(2025, 7, 1))


def test_cp1258_transcode_never_splits_a_letter_from_its_tone(tmp_path, monkeypatch):
    # 7-byte chunks cut "Nguyễn" (ê + combining tilde) and others at every possible place.
    monkeypatch.setattr(encodings, "CHUNK_BYTES", 7)
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    text = "\n".join(NAMES * 20)
    src.write_bytes(to_cp1258(text))
    encodings.transcode(src, dst, "cp1258")
    assert dst.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(("declared", "payload", "expected"), [
    (None, to_cp1258(CSV_TEXT), "not valid UTF-8.*looks like windows-1258"),
    (None, tcvn3.encode(CSV_TEXT), "not valid UTF-8.*looks like tcvn3"),
    ("windows-1258", CSV_TEXT.encode("utf-8"), "the file is UTF-8 but 'windows-1258' is declared"),
    ("windows-1258", tcvn3.encode(CSV_TEXT), "reads like TCVN3"),
    ("utf-16", CSV_TEXT.encode("utf-8"), "no UTF-16 byte-order mark"),
    (None, CSV_TEXT.encode("utf-8").decode("cp1252", errors="replace").encode("utf-8"), "garbled"),
], ids=["cp1258-undeclared", "tcvn3-undeclared", "utf8-as-cp1258", "tcvn3-as-cp1258", "utf8-as-utf16",
        "double-encoded"])
def test_wrong_encoding_is_named(paths, con, declared, payload, expected):
    (paths.sources / "x.csv").write_bytes(payload)
    options = {"encoding": declared} if declared else {}
    with pytest.raises(SourceError, match=expected) as err:
        reader_for("csv")(_csv("sources/x.csv", **options), con, paths)
    assert "x.csv" in err.value.location and "encoding" in str(err.value)


def test_bad_encoding_with_skip_source_leaves_the_other_sources_loading(paths):
    (paths.sources / "bad.csv").write_bytes(tcvn3.encode(CSV_TEXT))
    (paths.sources / "good.csv").write_text(CSV_TEXT, encoding="utf-8")
    bad = _csv("sources/bad.csv").model_copy(update={"name": "bad", "on_error": "skip_source"})
    good = _csv("sources/good.csv").model_copy(update={"name": "good"})
    with connect(paths.warehouse) as con:
        res = {r.source: r for r in load_sources(con, tenant_of(bad, good), paths, "r1")}
        assert res["bad"].status == "skipped" and "options.encoding" in res["bad"].error
        assert res["good"].n_rows_loaded == 3
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'bad'"
                           ).fetchone()[0] == 0


def test_header_that_does_not_match(paths):
    (paths.sources / "a.csv").write_text(CSV_TEXT.replace("ma;", "ma_ho_so;"), encoding="utf-8")
    with connect(paths.warehouse) as con, pytest.raises(SourceError) as err:
        load_sources(con, tenant_of(_csv("sources/a.csv", types={"ma_ho_so": "VARCHAR"})), paths, "r1")
    # The declared key `ma` is not in the header any more: named, with the columns the file has.
    assert "primary key column(s) ['ma']" in str(err.value) and "ma_ho_so" in str(err.value)
    with connect(paths.warehouse) as con, pytest.raises(SourceError, match="cannot read as CSV"):
        load_sources(con, tenant_of(_csv("sources/a.csv")), paths, "r1")  # `types` names `ma`, not in the file


def test_parquet_load_and_unchanged_rerun_without_rehashing(paths, monkeypatch):
    duckdb.sql("COPY (SELECT 'HS' || i AS ma, i AS n FROM range(1000) t(i)) TO "
               f"'{paths.sources / 'a.parquet'}' (FORMAT parquet)")
    src = SourceConfig(name="p", kind="parquet", location="sources/*.parquet", primary_key=["ma"])
    with connect(paths.warehouse) as con:
        [first] = load_sources(con, tenant_of(src), paths, "r1")
        assert first.n_rows_loaded == 1000
        con.execute("UPDATE meta.loads SET status = 'passed'")
        # Same file, same size and mtime: the fingerprint comes from meta.file_fingerprints, not a re-read.
        monkeypatch.setattr(hashlib, "file_digest", lambda *a: pytest.fail("the file was hashed again"))
        [again] = load_sources(con, tenant_of(src), paths, "r2")
        assert again.status == "unchanged"


@pytest.mark.parametrize("disposition", ["replace", "merge"])
def test_an_input_reverted_to_an_earlier_delivery_is_loaded_again(paths, disposition):
    """A → B → A: the third delivery equals a promoted batch, but B superseded it. Taking it as unchanged left
    staging on B (the newest promoted batch / the newest version of each key) while the agency's file said A."""
    from pipelines.steps import _source_views

    deliveries = {"A": "ma;ho_ten;dia_chi;so_tien;ngay\n00001;x;y;1.000,0;01/07/2025\n00002;x;y;2.000,0;02/07/2025\n",
                  "B": "ma;ho_ten;dia_chi;so_tien;ngay\n00001;x;y;9.000,0;01/07/2025\n00002;x;y;2.000,0;02/07/2025\n"}
    src = _csv("sources/s.csv").model_copy(update={"write_disposition": disposition})
    file = paths.sources / "s.csv"
    with connect(paths.warehouse) as con:
        for run_id, content in (("r1", "A"), ("r2", "B"), ("r3", "A")):
            file.write_text(deliveries[content], encoding="utf-8")
            [res] = load_sources(con, tenant_of(src), paths, run_id)
            assert (res.status, res.n_rows_loaded) == ("loaded", 2), (run_id, res)
            con.execute("UPDATE meta.loads SET status = 'passed' WHERE batch_id = ?", [run_id])
        _source_views(con, tenant_of(src), reference=False)
        assert con.execute("SELECT ma, so_tien FROM src_s ORDER BY ma").fetchall() == [("00001", 1000.0),
                                                                                       ("00002", 2000.0)]
        # The same A once more, right after the A that is now newest: nothing to load.
        [again] = load_sources(con, tenant_of(src), paths, "r4")
        assert again.status == "unchanged"


def test_a_same_size_rewrite_keeping_the_old_mtime_is_hashed_again(paths):
    """The fingerprint cache is keyed on inode and ctime as well as size and mtime: `cp -p` over a file, or an
    unzip, writes new bytes of the same length under the old time; (path, size, mtime) alone returned the old
    digest, and the load called the new content unchanged."""
    import os

    file = paths.sources / "s.csv"
    file.write_text("ma;ho_ten;dia_chi;so_tien;ngay\n00001;x;y;1.000,0;01/07/2025\n", encoding="utf-8")
    src = _csv("sources/s.csv")
    with connect(paths.warehouse) as con:
        [first] = load_sources(con, tenant_of(src), paths, "r1")
        con.execute("UPDATE meta.loads SET status = 'passed'")
        st = file.stat()
        with file.open("r+b") as fh:  # in place: same inode, same length; 1.000,0 → 9.000,0
            fh.seek(file.read_bytes().index(b"1.000,0"))
            fh.write(b"9")
        os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert (file.stat().st_size, file.stat().st_mtime_ns, file.stat().st_ino) == (st.st_size, st.st_mtime_ns,
                                                                                      st.st_ino)
        [second] = load_sources(con, tenant_of(src), paths, "r2")
        assert (first.status, second.status, second.n_rows_loaded) == ("loaded", "loaded", 1)
        assert con.execute("SELECT so_tien FROM raw.s WHERE _batch_id = 'r2'").fetchall() == [(9000.0,)]


def test_truncated_parquet_and_workbook(paths, con):
    duckdb.sql(f"COPY (SELECT range AS n FROM range(10000)) TO '{paths.sources / 'a.parquet'}' (FORMAT parquet)")
    data = (paths.sources / "a.parquet").read_bytes()
    (paths.sources / "a.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="cannot read as Parquet"):
        reader_for("parquet")(SourceConfig(name="p", kind="parquet", location="sources/a.parquet",
                                           primary_key=["n"]), con, paths)
    wb = openpyxl.Workbook()
    wb.active.append(["ma", "ten"])
    for i in range(2000):
        wb.active.append([i, f"Xã số {i}"])
    wb.save(paths.sources / "r.xlsx")
    data = (paths.sources / "r.xlsx").read_bytes()
    (paths.sources / "r.xlsx").write_bytes(data[: len(data) * 2 // 3])  # an e-mail attachment cut short
    with pytest.raises(SourceError, match="unreadable workbook") as err:
        reader_for("excel")(SourceConfig(name="x", kind="excel", location="sources/r.xlsx", primary_key=["ma"]),
                            con, paths)
    assert "r.xlsx" in str(err.value) and "re-export" in str(err.value)


def test_excel_serial_dates(paths, con):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Mã xã", "Ngày báo cáo", "Thời điểm"])
    # 45839 days after 1899-12-30 is 2025-07-01; .5 of a day is noon.
    ws.append(["00004", 45839, 45839.5])
    wb.save(paths.sources / "d.xlsx")
    src = SourceConfig(name="d", kind="excel", location="sources/d.xlsx", primary_key=["ma_xa"],
                       options={"types": {"ma_xa": "VARCHAR", "ngay_bao_cao": "DATE", "thoi_diem": "TIMESTAMP"}})
    [row] = reader_for("excel")(src, con, paths).relation.fetchall()
    assert row[1] == date(2025, 7, 1) and row[2].isoformat() == "2025-07-01T12:00:00"
