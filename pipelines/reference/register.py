"""Reference data a transform reads, registered as temp tables next to the `src_<source>` views.

`ref_dm_*`: administrative units (`admin_units.py`); `seed_<name>`: the CSV files of `warehouse/seeds/`;
`ref_csdl` and `ref_nguon`: the tenant's database catalogue and configured sources (config, not data).
Staging models turn them into `staging.dm_*`, `staging.chi_tieu_cds`, the catalogue marts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pipelines.settings import WAREHOUSE_SQL_DIR

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig

SEEDS_DIR = WAREHOUSE_SQL_DIR / "seeds"
DATABASE_COLUMNS = ("ma_csdl", "ten_csdl", "phan_loai", "muc_dich", "pham_vi", "nguon_du_lieu", "co_quan_chu_quan",
                    "danh_muc_mo", "danh_muc_chia_se", "trang_thai", "lo_trinh")


def temp_table(con: duckdb.DuckDBPyConnection, name: str, frame) -> None:
    """Temp table `name` holding a polars frame (copied: the frame may go away after)."""
    con.register("_tonghop_frame", frame)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _tonghop_frame")
    finally:
        con.unregister("_tonghop_frame")


def register_reference(con: duckdb.DuckDBPyConnection, tenant: TenantConfig) -> None:
    from pipelines.reference import admin_units

    admin_units.register(con)
    set_reference_variables(con, tenant)
    for seed in sorted(SEEDS_DIR.glob("*.csv")):
        con.execute(f"CREATE OR REPLACE TEMP TABLE seed_{seed.stem} AS "
                    "SELECT * FROM read_csv(?, header = true, auto_detect = true)", [str(seed)])
    _register_catalogue(con, tenant)
    _register_tables(con, tenant)


def set_reference_variables(con: duckdb.DuckDBPyConnection, tenant: TenantConfig) -> None:
    """The variables models read besides the reference tables (cheap: set on every transform)."""
    # Free-text unit names are matched within the tenant's own province; a ministry matches nationally.
    con.execute("SET VARIABLE tonghop_ma_tinh = ?", [tenant.admin_code if tenant.kind == "province" else "*"])


def _register_catalogue(con: duckdb.DuckDBPyConnection, tenant: TenantConfig) -> None:
    import polars as pl

    catalogue = getattr(tenant, "catalogue", None)
    databases = [
        (d.code, d.name, d.kind, d.purpose, d.scope, list(d.sources), d.owner, list(d.open_categories),
         list(d.shared_categories), d.status, d.roadmap)
        for d in (catalogue.databases if catalogue else [])
    ]
    frame = pl.DataFrame(databases, orient="row", schema={
        "ma_csdl": pl.String, "ten_csdl": pl.String, "phan_loai": pl.String, "muc_dich": pl.String,
        "pham_vi": pl.String, "nguon_du_lieu": pl.List(pl.String), "co_quan_chu_quan": pl.String,
        "danh_muc_mo": pl.List(pl.String), "danh_muc_chia_se": pl.List(pl.String), "trang_thai": pl.String,
        "lo_trinh": pl.String})
    temp_table(con, "ref_csdl", frame)
    sources = pl.DataFrame([
        (s.name, s.kind, s.description, list(s.personal_columns), s.incremental_column, s.write_disposition,
         json.dumps(list(s.primary_key)))
        for s in tenant.sources], orient="row", schema={
        "nguon": pl.String, "loai_nguon": pl.String, "mo_ta": pl.String, "cot_ca_nhan": pl.List(pl.String),
        "cot_tang_dan": pl.String, "cach_ghi": pl.String, "khoa_chinh": pl.String})
    temp_table(con, "ref_nguon", sources)


def _register_tables(con: duckdb.DuckDBPyConnection, tenant: TenantConfig | None = None) -> None:
    """`ref_bang`: every SQL model, the tenant's own included (and documented model output), with its YAML
    description."""
    import polars as pl

    from pipelines.dictionary import model_docs
    from pipelines.warehouse import sql_models

    docs = model_docs(tenant=tenant)
    names = sorted({m.qualified for m in sql_models()} | set(docs))
    frame = pl.DataFrame([(n.split(".")[0], n.split(".")[1], _vi(docs.get(n, {}))) for n in names],
                         orient="row", schema={"tang": pl.String, "ten_bang": pl.String, "mo_ta": pl.String})
    temp_table(con, "ref_bang", frame)


def _vi(doc: dict) -> str:
    d = doc.get("description") or {}
    return (d.get("vi") if isinstance(d, dict) else d) or ""
