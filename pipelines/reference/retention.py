"""Retention of personal data in `raw`: it is kept in clear only for `retention.raw_days` of the tenant.

Called at the end of `transform` (inside its transaction, so it commits with the tables it rebuilt). For
each raw batch loaded before the cutoff (by `_loaded_at`):
- a batch never promoted (blocked, or superseded by a newer `replace` batch) is deleted outright;
- a promoted batch keeps its rows, which staging is rebuilt from, but its personal columns are replaced in
  place by their tokens — the same ones staging holds (`pseudonymize` leaves a token unchanged), so
  records still join across the boundary; their validity flags become unknown (NULL).
Each purge is recorded in `meta.retention_purges`. `now` is a parameter so tests can move the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pipelines.sqltext import quote_ident
from pipelines.warehouse import table_exists

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig


def purge_raw(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, now: datetime) -> dict[str, int]:
    """Apply the tenant's raw retention; returns rows deleted and pseudonymised. Needs the macros loaded."""
    from pipelines.reference.identifiers import SQL_NORMALIZER, identifier_kind

    cutoff = now - timedelta(days=tenant.retention.raw_days)
    totals = {"n_rows_deleted": 0, "n_rows_pseudonymised": 0}
    for source in tenant.sources:
        if not table_exists(con, "raw", source.name):
            continue
        table = f'raw."{source.name}"'
        promoted = "SELECT batch_id FROM meta.loads WHERE source = ? AND status = 'passed'"
        if source.write_disposition == "replace":
            promoted += " ORDER BY loaded_at DESC LIMIT 1"
        expired = con.execute(f"""
            SELECT _batch_id, count(*), _batch_id IN ({promoted}) FROM {table}
            WHERE _loaded_at < ? GROUP BY _batch_id ORDER BY _batch_id""", [source.name, cutoff]).fetchall()
        for batch_id, n_rows, is_promoted in expired:
            if not is_promoted:
                con.execute(f"DELETE FROM {table} WHERE _batch_id = ?", [batch_id])
                action, n_deleted, n_pseudonymised = "deleted", n_rows, 0
            elif source.personal_columns:
                sets = []
                for column in source.personal_columns:
                    kind = identifier_kind(column)
                    quoted = quote_ident(column)
                    value = f"{SQL_NORMALIZER[kind]}({quoted})" if kind else quoted
                    sets.append(f"{quoted} = pseudonymize({value})")
                n_pseudonymised = con.execute(
                    f"UPDATE {table} SET {', '.join(sets)} WHERE _batch_id = ? AND NOT ("
                    + " AND ".join(f"coalesce(starts_with(CAST({quote_ident(c)} AS VARCHAR), 'ps_'), TRUE)"
                                   for c in source.personal_columns) + ")", [batch_id]).fetchall()[0][0]
                if not n_pseudonymised:
                    continue  # already done on an earlier run
                action, n_deleted = "pseudonymised", 0
            else:
                continue
            con.execute("INSERT INTO meta.retention_purges VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [source.name, batch_id, action, n_deleted, n_pseudonymised, tenant.retention.raw_days,
                         cutoff, now])
            totals["n_rows_deleted"] += n_deleted
            totals["n_rows_pseudonymised"] += n_pseudonymised
    return totals
