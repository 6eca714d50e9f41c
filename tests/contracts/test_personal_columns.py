"""A declared personal column the source has not delivered yet (the tenant file lists `dia_chi` before the
first export that carries it) is nothing to pseudonymise: the `src_` view must still build. Listing it made the
transform fail with DuckDB's "Column dia_chi in REPLACE list not found" on a warehouse loaded before."""

from __future__ import annotations

import duckdb

from pipelines.config import load_tenant
from pipelines.contracts import load_contracts, personal_kinds, personal_sql
from pipelines.settings import WAREHOUSE_SQL_DIR

TENANT = "ninh-binh"


def _feedback_source():
    cfg = load_tenant(TENANT)
    return next(s for s in cfg.sources if s.contract == "phan_anh")


def test_a_declared_personal_column_the_raw_table_lacks_is_not_replaced():
    source = _feedback_source()
    assert "dia_chi" in source.personal_columns
    contract = load_contracts()[source.contract]
    with duckdb.connect() as con:
        # the raw table as an older export left it: no address column yet
        con.execute("CREATE TABLE raw_old (ma_phan_anh VARCHAR, ho_ten VARCHAR, so_dien_thoai VARCHAR)")
        con.execute("INSERT INTO raw_old VALUES ('F1', 'Trần Thị Gửi', '0912345678')")
        existing = {c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                               "WHERE table_name = 'raw_old'").fetchall()}
        kinds = personal_kinds(source, contract, existing)
        assert "dia_chi" not in kinds and {"ho_ten", "so_dien_thoai"} <= set(kinds)
        replaced, _ = personal_sql(kinds)
        con.execute("SET VARIABLE tonghop_pii_key = ?", ["test-key-" + "0" * 40])
        con.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8"))  # the project's own macros
        row = con.execute(f"SELECT * REPLACE ({', '.join(replaced)}) FROM raw_old").fetchone()
        assert row[0] == "F1" and "Trần Thị Gửi" not in row and "0912345678" not in row


def test_a_declared_personal_column_is_matched_whatever_its_case():
    source = _feedback_source()
    kinds = personal_kinds(source, load_contracts()[source.contract], {"MA_PHAN_ANH", "Ho_Ten", "DIA_CHI"})
    assert {k.lower() for k in kinds} >= {"ho_ten", "dia_chi"}
