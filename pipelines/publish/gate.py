"""The publication gate: an open dataset is refused, with one reason per problem naming the dataset and the
column, when it

1. has a personal column: declared personal in a shared contract or a source's `personal_columns`, named like
   one (so_cccd, so_dien_thoai, ho_ten, dia_chi, email, ngay_sinh, …), or a `*_token` pseudonym — a
   pseudonym is still personal data (Decree 13/2023);
2. holds CCCD- (12 digits), Vietnamese-phone- or e-mail-shaped values in any text column (one DuckDB scan);
3. has a cell (its `cell_columns`) counting fewer than `min_rows_per_cell` records (small-area disclosure);
4. is fed by a source whose latest validation failed a blocking expectation (meta.validations).

Reasons never quote a value: they would copy the personal data into the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.sqltext import quote_ident as _quote

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import OpenDataPlan, OpenDataset, TenantConfig

PERSONAL_NAME_PATTERNS = (
    r"^(so_)?(cccd|cmnd|cmt|can_cuoc|ho_chieu)(_|$)", r"(^|_)(so_)?dien_thoai(_|$)", r"(^|_)sdt(_|$)",
    r"^ho_ten", r"^ho_va_ten", r"^dia_chi", r"(^|_)e?mail(_|$)", r"^ngay_sinh", r"_token$",
    r"^(nguoi_nop|nguoi_gui|nguoi_dai_dien)$",
)
VALUE_PATTERNS = {
    "CCCD-shaped (12 digits)": r"(^|[^0-9])[0-9]{12}([^0-9]|$)",
    "Vietnamese phone-shaped": r"(^|[^0-9])(\+?84|0)[35789][0-9]([ .\-]?[0-9]){7}([^0-9]|$)",
    "e-mail-shaped": r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}",
}
TEXT_TYPES = ("VARCHAR",)


@dataclass(frozen=True)
class Refusal:
    kind: str  # personal_column | personal_value | small_cell | blocked_source | missing_table
    reason: str

    @property
    def is_personal(self) -> bool:
        return self.kind in ("personal_column", "personal_value")


def personal_column_names(cfg: TenantConfig) -> set[str]:
    from pipelines.contracts import load_contracts

    names = {c.name for con in load_contracts().values() for c in con.columns if c.personal}
    for s in cfg.sources:
        names.update(s.personal_columns)
        names.update(col for col, spec in s.mapping.items() if spec in s.personal_columns)
    return names


def check(con: duckdb.DuckDBPyConnection, cfg: TenantConfig, plan: OpenDataPlan, ds: OpenDataset,
          relation: str, columns: dict[str, str], sources: set[str]) -> list[Refusal]:
    """Every reason to refuse `ds`, whose published rows are `relation` (a SELECT over the snapshot) with
    `columns` (name -> DuckDB type, after `drop_columns`)."""
    refusals: list[Refusal] = []
    declared = personal_column_names(cfg)
    personal: set[str] = set()
    for col in columns:
        if col in declared:
            why = "declared personal (a shared contract or the tenant's personal_columns)"
        elif col.endswith("_token"):
            why = "a pseudonym token (pseudonymised personal data is still personal data)"
        elif any(re.search(p, col) for p in PERSONAL_NAME_PATTERNS):
            why = "named like personal data (CCCD, phone, name, address, e-mail, birth date)"
        else:
            continue
        personal.add(col)
        refusals.append(Refusal("personal_column", f"dataset '{ds.id}': column '{col}' is {why} — remove it "
                                f"from the open table or list it in open_data.datasets[{ds.id}].drop_columns"))
    text_cols = [c for c, t in columns.items() if t in TEXT_TYPES and c not in personal]
    for col in text_cols:
        # the regexps run over the column's distinct values (few in a mart: agencies, fields, communes), each
        # weighted by its row count — a hash aggregate is far cheaper than a regexp per row
        items = [f"coalesce(sum(n) FILTER (WHERE regexp_matches(v, '{pat}')), 0)" for pat in VALUE_PATTERNS.values()]
        counts = con.execute(f"SELECT {', '.join(items)} FROM (SELECT {_quote(col)} AS v, count(*) AS n "
                             f"FROM ({relation}) WHERE {_quote(col)} IS NOT NULL GROUP BY 1)").fetchone()
        for label, n in zip(VALUE_PATTERNS, counts, strict=True):
            if n:
                refusals.append(Refusal("personal_value", f"dataset '{ds.id}': column '{col}' holds {n:,} "
                                        f"{label} value(s) — personal data must not be published; fix the "
                                        "source or drop the column (drop_columns)"))
    if ds.cell_columns:
        minimum = ds.min_rows_per_cell or plan.min_rows_per_cell
        cells = ", ".join(_quote(c) for c in ds.cell_columns)
        missing = [c for c in [*ds.cell_columns, *([ds.count_column] if ds.count_column else [])] if c not in columns]
        if missing:
            refusals.append(Refusal("small_cell", f"dataset '{ds.id}': cell column(s) {', '.join(missing)} not in "
                                    f"{ds.table} — fix open_data.datasets[{ds.id}].cell_columns/count_column"))
        else:
            measure = f"sum({_quote(ds.count_column)})" if ds.count_column else "count(*)"
            n_small = con.execute(
                f"SELECT count(*) FROM (SELECT {measure} AS n FROM ({relation}) GROUP BY {cells}) "
                "WHERE n > 0 AND n < ?", [minimum]).fetchone()[0]
            if n_small:
                what = f"column '{ds.count_column}'" if ds.count_column else f"column '{ds.cell_columns[-1]}' (rows)"
                refusals.append(Refusal("small_cell", f"dataset '{ds.id}': {what} — {n_small:,} cell(s) of "
                                        f"({', '.join(ds.cell_columns)}) count fewer than {minimum} records "
                                        "(small-area disclosure) — aggregate to a coarser cell (e.g. month or "
                                        "province) or lower min_rows_per_cell only if the law allows"))
    if sources:
        rows = con.execute(f"""
            WITH latest AS (
                SELECT source, arg_max(run_id, validated_at) AS run_id FROM meta.validations
                WHERE source IN ({', '.join('?' for _ in sources)}) GROUP BY source)
            SELECT v.source, coalesce(v.column_name, ''), coalesce(v.description, v.expectation), v.run_id
            FROM meta.validations v JOIN latest USING (source, run_id)
            WHERE v.severity = 'block' AND NOT v.is_success ORDER BY 1, 2, 3""", sorted(sources)).fetchall()
        for source, column, description, run_id in rows:
            refusals.append(Refusal("blocked_source", f"dataset '{ds.id}': column '{column or '*'}' of source "
                                    f"'{source}' failed the blocking check '{description}' in run {run_id} — "
                                    "fix the source data and re-run the pipeline"))
    return refusals
