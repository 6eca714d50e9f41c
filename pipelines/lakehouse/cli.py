"""`tonghop lakehouse query|publish|history` (wired into pipelines/cli.py by `add_parser`)."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import datetime

from pipelines.errors import TonghopError


def _as_of(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise TonghopError(f"--as-of '{text[:40]}' is not a date/time — give ISO 8601, e.g. 2026-12-01T08:00+07:00"
                           ) from None
    if value.tzinfo is None:
        from zoneinfo import ZoneInfo

        value = value.replace(tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    return value


def _tenants(ids: str | None):
    """The named tenants, or every tenant file that checks (one bad file costs that tenant only, warned)."""
    from pipelines.config import load_tenant, load_tenant_file, tenant_files
    from pipelines.redact import redact

    if ids:
        return [load_tenant(t.strip()) for t in ids.split(",")]
    chosen = []
    for path in tenant_files():
        try:
            chosen.append(load_tenant_file(path))
        except TonghopError as exc:
            print(f"warning: {path.name} left out — {redact(str(exc))[:300]}", file=sys.stderr)
    return chosen


def cmd_query(args: argparse.Namespace) -> int:
    from pipelines.lakehouse.reader import query

    columns, rows, pins = query(args.sql, _tenants(args.tenants), _as_of(args.as_of))
    if args.format == "csv":
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(columns)
        out.writerows(rows)
    else:
        shown = [[("" if v is None else str(v)) for v in r] for r in rows[: args.limit]]
        widths = [max([len(c), *(len(r[i]) for r in shown)]) for i, c in enumerate(columns)]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
        for r in shown:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
        more = f" (first {args.limit} shown)" if len(rows) > args.limit else ""
        print(f"{len(rows)} row(s){more}; " + ", ".join(f"{p.tenant_id} publish {p.publish_seq} ({p.run_id})"
                                                       for p in pins), file=sys.stderr)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from pipelines.config import load_tenant
    from pipelines.lakehouse.writer import publish_tenant
    from pipelines.settings import TenantPaths

    cfg = load_tenant(args.tenant)
    snapshot = TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).snapshot
    if not cfg.storage.is_lakehouse:
        raise TonghopError(f"tenant '{cfg.tenant_id}' keeps its warehouse in DuckDB — add 'storage: {{kind: "
                           "lakehouse}' to its tenant file first")
    result = publish_tenant(cfg, snapshot, args.run_id or "cli-lakehouse-publish")
    m = result.metrics()
    print(f"lakehouse publish {m['publish_seq']} of {cfg.tenant_id}: {m['n_tables']} tables, "
          f"{m['n_tables_written']} written ({m['n_rows_written']:,} rows) in {m['seconds']} s")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from pipelines.config import load_tenant
    from pipelines.lakehouse.catalog import MANIFEST_TABLE, namespace, open_catalog

    cfg = load_tenant(args.tenant)
    tbl = open_catalog(cfg.storage.catalog_url_env).load_table((namespace(cfg.tenant_id), MANIFEST_TABLE))
    rows = tbl.scan(selected_fields=("publish_seq", "run_id", "published_at", "table_name")).to_arrow()
    import duckdb

    con = duckdb.connect()
    con.register("p", rows)
    for seq, run_id, at, n in con.execute("SELECT publish_seq, any_value(run_id), any_value(published_at), count(*) "
                                          "FROM p GROUP BY 1 ORDER BY 1 DESC LIMIT ?", [args.limit]).fetchall():
        print(f"{seq:>6}  {at:%Y-%m-%d %H:%M:%S%z}  {n:>3} tables  {run_id}")
    return 0


def add_parser(sub) -> None:
    lh = sub.add_parser("lakehouse", help="tenants' tables in the lakehouse (Iceberg): one SQL across tenants, "
                        "publish, history")
    lh_sub = lh.add_subparsers(dest="lakehouse_command", required=True)
    q = lh_sub.add_parser("query", help="one SQL over every lakehouse tenant's latest publish: <tenant>.<schema>."
                          "<table> (e.g. ninh_binh.marts.ho_so_tuan) or all_tenants.<schema>.<table> (with tenant_id)")
    q.add_argument("sql")
    q.add_argument("--tenants", help="comma-separated tenant ids (default: every tenant with storage kind lakehouse)")
    q.add_argument("--as-of", help="read the publishes as they were at this time (ISO 8601): time travel")
    q.add_argument("--format", choices=("table", "csv"), default="table")
    q.add_argument("--limit", type=int, default=50, help="rows shown in table format (default 50)")
    q.set_defaults(func=cmd_query)
    pb = lh_sub.add_parser("publish", help="commit the tenant's serving snapshot to the lakehouse again (the publish "
                           "step does this on every run)")
    pb.add_argument("--tenant", required=True)
    pb.add_argument("--run-id")
    pb.set_defaults(func=cmd_publish)
    h = lh_sub.add_parser("history", help="the tenant's lakehouse publishes, newest first")
    h.add_argument("--tenant", required=True)
    h.add_argument("--limit", type=int, default=20)
    h.set_defaults(func=cmd_history)
