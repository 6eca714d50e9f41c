"""`tonghop`: the command line of the platform. Every command calls the same functions as the Airflow DAGs."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pipelines.errors import TonghopError


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("great_expectations", "py4j", "urllib3", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from pipelines.redact import install_log_redaction

    install_log_redaction()  # no log line leaves this process with a secret in it


def cmd_validate_config(args: argparse.Namespace) -> int:
    from pipelines.config import load_tenant_file, tenant_files

    files = [Path(p) for p in args.files] or tenant_files()
    if not files:
        raise TonghopError("no tenant files found — add one YAML per ministry/province in tenants/")
    bad = 0
    for path in files:  # every file is reported, whatever the one before it did
        try:
            cfg = load_tenant_file(path)
            from pipelines.contracts import check_tenant  # each source's mapping against its shared contract

            if problems := check_tenant(cfg, path):
                raise TonghopError("\nerror ".join(problems))
            from pipelines.publish.plan import check_plan  # open_data tables among core/tenant models

            if problems := check_plan(cfg):
                raise TonghopError(f"{path}: " + "\nerror ".join(problems))
            print(f"ok    {path}  ({cfg.display_name}, {len(cfg.sources)} sources)")
        except Exception as exc:  # noqa: BLE001 — load_tenant_file makes every problem a ConfigError line
            bad += 1
            from pipelines.redact import redact

            print(f"error {redact(str(exc)) if isinstance(exc, TonghopError) else f'{path}: {type(exc).__name__}'}",
                  file=sys.stderr)
    print(f"{len(files) - bad} valid, {bad} invalid")
    return 2 if bad else 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from pipelines.config import load_tenant
    from pipelines.contracts import inspect_source

    cfg = load_tenant(args.tenant)
    sources = [cfg.source(args.source)] if args.source else cfg.sources
    for source in sources:
        print(inspect_source(cfg, source, limit=args.limit))
        print()
    return 0


def cmd_suggest_suite(args: argparse.Namespace) -> int:
    from pipelines.config import load_tenant
    from pipelines.quality.suggest import suggest_suite, summary

    cfg = load_tenant(args.tenant)
    result = suggest_suite(cfg, args.source, Path(args.out) if args.out else None, force=args.force)
    print(summary(result, cfg.tenant_id, args.source))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.runner import run

    steps = [s.strip() for s in args.steps.split(",")] if args.steps else None
    sources = [s.strip() for s in args.sources.split(",")] if args.sources else None
    report = run(args.tenant, steps=steps, run_id=args.run_id, only_sources=sources, wait=getattr(args, "wait", None))
    print(report.summary())
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.config import load_tenant
    from pipelines.demo import generate_for
    from pipelines.demo.ministry import TENANT_ID as MINISTRY
    from pipelines.settings import TenantPaths

    cfg = load_tenant(args.tenant)
    paths = TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).ensure()
    logging.getLogger("tonghop.demo").info("generating %s demo rows for %s into %s", f"{args.rows:,}",
                                           cfg.display_name, paths.sources)
    dsn = args.postgres_dsn or os.environ.get("TONGHOP_DEMO_POSTGRES_DSN")
    dsn = None if cfg.tenant_id == MINISTRY else dsn  # the ministry's dossiers come from its API, not a database
    written = generate_for(cfg.tenant_id, paths.sources, rows=args.rows, seed=args.seed, postgres_dsn=dsn)
    for name, path in written.items():
        size = sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else path.stat().st_size
        print(f"wrote {name}: {path} ({size:,} bytes)")
    if dsn:
        print("loaded tables ho_so, thu_tuc, co_quan into PostgreSQL (COPY)")
    if args.run:
        from pipelines.demo.ministry.api import TOKEN_ENV as MINISTRY_TOKEN_ENV
        from pipelines.demo.servers import PORT_ENV, TOKEN_ENV, serve_demo_portals

        # The demo's API and open-data portal must answer while its pipeline runs: serve them for that long.
        server, _ = serve_demo_portals(0, rows=args.rows, seed=args.seed)
        os.environ[PORT_ENV], os.environ[TOKEN_ENV] = str(server.server_address[1]), server.token
        os.environ[MINISTRY_TOKEN_ENV] = server.ministry_token
        try:
            return cmd_run(argparse.Namespace(tenant=cfg.tenant_id, steps=None, run_id=None, sources=None))
        finally:
            server.shutdown()
            server.server_close()
    return 0


def cmd_demo_serve(args: argparse.Namespace) -> int:
    from pipelines.demo.servers import CKAN_ROOT, FEEDBACK_PATH, TOKEN_ENV, serve_demo_portals

    try:
        server, thread = serve_demo_portals(args.port, rows=args.rows, seed=args.seed)
    except OSError as exc:
        raise TonghopError(f"cannot serve the demo portals on 127.0.0.1:{args.port} ({exc.strerror}): "
                           "choose another port with --port (make demo DEMO_PORT=…)") from None
    print(f"LGSP API:  {server.base_url}{FEEDBACK_PATH}  (Authorization: Bearer ${TOKEN_ENV})", flush=True)
    print(f"CKAN:      {server.base_url}{CKAN_ROOT}/api/3/action/package_search", flush=True)
    from pipelines.demo.ministry import api as ministry_api

    print(f"BKHCN API: {server.base_url}{ministry_api.APPLICATIONS_PATH}  ({ministry_api.KEY_HEADER}: "
          f"${ministry_api.TOKEN_ENV})   (Ctrl+C to stop)", flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pipelines.config import load_tenant
    from pipelines.export import default_path, export_table
    from pipelines.settings import TenantPaths

    cfg = load_tenant(args.tenant)
    paths = TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir)
    out = Path(args.out) if args.out else default_path(paths.root, args.table, args.format)
    written = export_table(paths.snapshot, args.table, args.format, out)
    print(f"wrote {args.table}: {written} ({written.stat().st_size:,} bytes)")
    return 0


def cmd_dictionary(args: argparse.Namespace) -> int:
    from pipelines.config import load_tenant
    from pipelines.dictionary import write_dictionary

    written = write_dictionary(load_tenant(args.tenant))
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish the tenant's serving snapshot to one target (or all): open data, CKAN, the data map."""
    from pipelines.config import load_tenant
    from pipelines.publish import REGISTRY, PublishContext, publisher

    cfg = load_tenant(args.tenant)
    targets = list(REGISTRY) if args.target == "all" else [args.target]
    ctx = PublishContext.for_tenant(cfg, args.run_id or f"publish__{__import__('time').strftime('%Y%m%dT%H%M%S')}")
    failed = False
    for target in targets:
        result = publisher(target)(ctx)
        print(result.summary())
        failed |= result.status == "failed"
    return 1 if failed else 0


def cmd_train(args: argparse.Namespace) -> int:
    from models.retrain import retrain

    report = retrain(args.tenant, model=args.model, run_id=args.run_id)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_datamap(args: argparse.Namespace) -> int:
    from pipelines.publish.datamap import build

    result = build(Path(args.out) if args.out else None, force=args.force)
    print(result.summary())
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    """Set up the tenants in Airflow's metadata database (pools; unpause) or print their queues."""
    from pipelines import airflow_admin

    if args.airflow_command == "sync-pools":
        result = airflow_admin.sync_pools(prune=args.prune)
        print(result.summary())
        if args.unpause:
            ids = airflow_admin.unpause_tenant_dags()
            print(f"unpaused {len(ids)} DAG(s)" + (f": {', '.join(ids)}" if ids else " (none was paused)"))
        return 2 if result.problems else 0
    slots, _ = airflow_admin.tenant_slots()
    print(",".join(s.queue for s in slots))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from pipelines.backup import backup

    result = backup(args.tenant, Path(args.to), wait=args.wait)
    print(result.summary())
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pipelines.backup import restore

    result = restore(args.tenant, Path(getattr(args, "from")), wait=args.wait)
    print(result.summary())
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    """`tonghop users add|grant|revoke|list|passwd|disable|enable|audit|demo` (pipelines/access/store.py)."""
    from pipelines.access.store import UserStore, create_demo_users

    store = UserStore()
    if args.users_command == "add":
        password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
        generated = store.add_user(args.name, password, email=args.email, display_name=args.display_name,
                                   subject=args.subject)
        print(f"added user {args.name}" + (f" — password (shown once): {generated}" if generated else ""))
    elif args.users_command == "passwd":
        password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
        generated = store.set_password(args.name, password)
        print(f"password of {args.name} changed" + (f" — new password (shown once): {generated}" if generated else ""))
    elif args.users_command in ("disable", "enable"):
        store.set_disabled(args.name, args.users_command == "disable")
        print(f"user {args.name} {args.users_command}d")
    elif args.users_command == "grant":
        store.grant(args.name, args.tenant, args.role)
        print(f"granted {args.role} on {args.tenant} to {args.name}")
    elif args.users_command == "revoke":
        if not store.revoke(args.name, args.tenant):
            raise TonghopError(f"{args.name} has no grant on {args.tenant} — `tonghop users list` shows the grants")
        print(f"revoked {args.name}'s access to {args.tenant}")
    elif args.users_command == "list":
        users = store.list_users()
        for u in users:
            grants = ", ".join(f"{t}:{r}" for t, r in u["grants"].items()) or "no grant"
            print(f"{u['name']:<24} {u['email'] or '-':<32} {'disabled ' if u['disabled'] else ''}{grants}")
        print(f"{len(users)} users")
    elif args.users_command == "audit":
        ok, bad = store.audit.verify()
        events = store.audit.recent(args.kind, tenant=args.tenant, user=args.user, limit=args.limit)
        for e in reversed(events):
            sql = " ".join((e["sql"] or "").split())
            print(f"{e['at']} {e['kind']:<7} {e['status']:<10} {e['user'] or '-':<20} {e['tenant'] or '-':<22} "
                  f"{e['reason'] or '':<40} {'' if e['rows'] is None else e['rows']:>6} "
                  f"{'' if e['duration_ms'] is None else round(e['duration_ms'])!s:>6} {sql[:100]}")
        print(f"{len(events)} events; hash chain " + ("intact" if ok else f"BROKEN at event {bad} — the audit "
              "file was edited outside the app: restore it from a backup and find who had the file"))
        return 0 if ok else 1
    elif args.users_command == "demo":
        print(f"demo accounts on {args.tenant} (new passwords, shown once):")
        for role, (name, password) in create_demo_users(store, args.tenant).items():
            print(f"  {role:<10} user {name:<16} password {password}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tonghop", description="Tổng Hợp — integrated data platform CLI")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate-config", help="check every tenant file (or the given ones) against the schema")
    v.add_argument("files", nargs="*")
    v.set_defaults(func=cmd_validate_config)

    ins = sub.add_parser("inspect", help="read a sample of a tenant's live source(s): columns, types and how "
                         "they map to the source's shared contract")
    ins.add_argument("--tenant", required=True)
    ins.add_argument("--source", help="one source name (default: every source of the tenant)")
    ins.add_argument("--limit", type=int, default=1000, help="sample rows read (default 1000)")
    ins.set_defaults(func=cmd_inspect)

    ss = sub.add_parser("suggest-suite", help="profile a loaded source (latest promoted batch, read-only) and "
                        "write a starting expectation suite for review")
    ss.add_argument("--tenant", required=True)
    ss.add_argument("--source", required=True)
    ss.add_argument("--out", help="output file (default: tenants/<tenant>/expectations/<source>.suggested.json)")
    ss.add_argument("--force", action="store_true", help="replace the output file if it exists")
    ss.set_defaults(func=cmd_suggest_suite)

    r = sub.add_parser("run", help="run a tenant's pipeline (all steps, or --steps a,b)")
    r.add_argument("--tenant", required=True)
    r.add_argument("--steps", help="comma-separated: extract_load,validate,transform,train,publish")
    r.add_argument("--sources", help="comma-separated source names to load (default: all)")
    r.add_argument("--run-id", help="fixed batch/run id (re-running the same id is idempotent)")
    r.add_argument("--wait", type=float, metavar="SECONDS", help="if another run holds the tenant's warehouse, "
                   "wait this long for it before giving up with exit code 2 (default: $TONGHOP_LOCK_WAIT or 0)")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="generate the demo province's source data (and --run its pipeline)")
    d.add_argument("--tenant", default=os.environ.get("TONGHOP_DEMO_TENANT", "ninh-binh"))
    d.add_argument("--rows", type=int, default=20_000, help="number of one-stop-shop dossiers")
    d.add_argument("--seed", type=int, default=37)
    d.add_argument("--run", action="store_true", help="also run the pipeline after generating")
    d.add_argument("--postgres-dsn", help="also load the one-stop-shop tables into this PostgreSQL database "
                   "(default: $TONGHOP_DEMO_POSTGRES_DSN; postgresql://user:pass@host:5432/db)")
    d.set_defaults(func=cmd_demo)

    ds = sub.add_parser("demo-serve", help="serve the demo province's LGSP API and CKAN portal (foreground)")
    ds.add_argument("--port", type=int, default=int(os.environ.get("TONGHOP_DEMO_PORT") or 8765))
    ds.add_argument("--rows", type=int, default=20_000, help="the same --rows as `tonghop demo`")
    ds.add_argument("--seed", type=int, default=37)
    ds.set_defaults(func=cmd_demo_serve)

    e = sub.add_parser("export", help="export one table of the serving snapshot to CSV or Parquet")
    e.add_argument("--tenant", required=True)
    e.add_argument("--table", required=True, help="<schema>.<table>, e.g. marts.ho_so_tuan")
    e.add_argument("--format", choices=("csv", "parquet"), default="csv")
    e.add_argument("--out", help="output file (default: <tenant data folder>/exports/<table>.<format>)")
    e.set_defaults(func=cmd_export)

    dd = sub.add_parser("dictionary", help="write the data dictionary (Markdown, HTML, meta.data_dictionary)")
    dd.add_argument("--tenant", required=True)
    dd.set_defaults(func=cmd_dictionary)

    pb = sub.add_parser("publish", help="publish the serving snapshot (read-only): open-data files + DCAT-AP + "
                        "Frictionless (opendata), or another target")
    pb.add_argument("--tenant", required=True)
    pb.add_argument("--target", default="opendata", help="a publish target (pipelines/publish/__init__.py "
                    "REGISTRY: opendata, …) or 'all' (default: opendata)")
    pb.add_argument("--run-id", help="run id recorded in the publish report")
    pb.set_defaults(func=cmd_publish)

    t = sub.add_parser("train", help="retrain a tenant's models (or --model one) and republish the snapshot")
    t.add_argument("--tenant", required=True)
    t.add_argument("--model", help="one model name (default: every model the tenant lists)")
    t.add_argument("--run-id", help="fixed run id")
    t.set_defaults(func=cmd_train)
    dm = sub.add_parser("datamap", help="the national data map from every tenant's published catalogues")
    dm_sub = dm.add_subparsers(dest="datamap_command", required=True)
    dmb = dm_sub.add_parser("build", help="merge the tenants' database and open-data catalogues into a versioned "
                            "data map (DuckDB, Parquet, DCAT-AP, static HTML)")
    dmb.add_argument("--out", help="output folder (default: $TONGHOP_HOME/datamap)")
    dmb.add_argument("--force", action="store_true", help="rewrite even if the content did not change")
    dmb.set_defaults(func=cmd_datamap)
    from pipelines.lakehouse import cli as lakehouse_cli  # tonghop lakehouse query|publish|history

    lakehouse_cli.add_parser(sub)

    us = sub.add_parser("users", help="local accounts and their grants (roles: lanh_dao, phan_tich, ky_thuat)")
    us_sub = us.add_subparsers(dest="users_command", required=True)
    ua = us_sub.add_parser("add", help="create an account (password generated and printed once, or --password-stdin)")
    ua.add_argument("name")
    ua.add_argument("--password-stdin", action="store_true", help="read the password from the first stdin line")
    ua.add_argument("--email", help="e-mail an OIDC sign-in (st.login) maps to this account")
    ua.add_argument("--subject", help="OIDC subject (sub) mapped to this account; with several providers "
                                      "configured, qualify it with the provider's issuer: '<iss>#<sub>'")
    ua.add_argument("--display-name")
    up = us_sub.add_parser("passwd", help="set a new password (generated, or --password-stdin)")
    up.add_argument("name")
    up.add_argument("--password-stdin", action="store_true")
    for verb in ("disable", "enable"):
        us_sub.add_parser(verb, help=f"{verb} an account").add_argument("name")
    ug = us_sub.add_parser("grant", help="give a user a role on a tenant (replaces the role they had there)")
    ug.add_argument("name")
    ug.add_argument("tenant")
    ug.add_argument("role", help="lanh_dao | phan_tich | ky_thuat")
    ur = us_sub.add_parser("revoke", help="remove a user's access to a tenant (effective at their next click)")
    ur.add_argument("name")
    ur.add_argument("tenant")
    us_sub.add_parser("list", help="accounts and grants (never a password hash)")
    uau = us_sub.add_parser("audit", help="the audit log: sign-ins, refusals, SQL console queries (oldest first) "
                            "and whether its hash chain is intact (exit 1 when not)")
    uau.add_argument("--kind", choices=("signin", "access", "console"))
    uau.add_argument("--tenant")
    uau.add_argument("--user")
    uau.add_argument("--limit", type=int, default=50)
    udemo = us_sub.add_parser("demo", help="one demo account per role on a tenant, new passwords printed")
    udemo.add_argument("--tenant", default=os.environ.get("TONGHOP_DEMO_TENANT", "ninh-binh"))
    us.set_defaults(func=cmd_users)

    af = sub.add_parser("airflow", help="set the tenants up in Airflow's metadata database (docs/deployment.md)")
    af_sub = af.add_subparsers(dest="airflow_command", required=True)
    afs = af_sub.add_parser("sync-pools", help="create or repair every tenant's one-slot pool warehouse_<tenant>")
    afs.add_argument("--prune", action="store_true", help="also remove warehouse_* pools of tenants without a file")
    afs.add_argument("--unpause", action="store_true", help="also unpause every tenant DAG already in the metadata "
                     "database (new ones follow [core] dags_are_paused_at_creation)")
    afs.set_defaults(func=cmd_airflow)
    af_sub.add_parser("queues", help="print the tenants' Celery queues, comma-separated (for `airflow celery "
                      "worker -q`)").set_defaults(func=cmd_airflow)

    bk = sub.add_parser("backup", help="copy a tenant's warehouse, snapshot, quarantine and metadata into a "
                        "folder with a checksummed manifest (holds the tenant's writer lock)")
    bk.add_argument("--tenant", required=True)
    bk.add_argument("--to", required=True, help="a new (or empty) folder for the backup")
    bk.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                    help="wait this long for a run holding the warehouse (default: $TONGHOP_LOCK_WAIT or 0)")
    bk.set_defaults(func=cmd_backup)
    rs = sub.add_parser("restore", help="put a backup back in place of the tenant's data (checksums verified "
                        "first: a corrupt or incomplete backup is refused and nothing is touched)")
    rs.add_argument("--tenant", required=True)
    rs.add_argument("--from", required=True, help="the backup folder written by `tonghop backup`")
    rs.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                    help="wait this long for a run holding the warehouse (default: $TONGHOP_LOCK_WAIT or 0)")
    rs.set_defaults(func=cmd_restore)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except TonghopError as exc:
        from pipelines.redact import redact

        print(f"tonghop: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
