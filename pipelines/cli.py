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


def cmd_validate_config(args: argparse.Namespace) -> int:
    from pipelines.config import load_tenant_file, tenant_files

    files = [Path(p) for p in args.files] or tenant_files()
    if not files:
        raise TonghopError("no tenant files found — add one YAML per ministry/province in tenants/")
    bad = 0
    for path in files:
        try:
            cfg = load_tenant_file(path)
            print(f"ok    {path}  ({cfg.display_name}, {len(cfg.sources)} sources)")
        except TonghopError as exc:
            bad += 1
            print(f"error {exc}", file=sys.stderr)
    print(f"{len(files) - bad} valid, {bad} invalid")
    return 1 if bad else 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.runner import run

    steps = [s.strip() for s in args.steps.split(",")] if args.steps else None
    sources = [s.strip() for s in args.sources.split(",")] if args.sources else None
    report = run(args.tenant, steps=steps, run_id=args.run_id, only_sources=sources)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.config import load_tenant
    from pipelines.demo import generate
    from pipelines.settings import TenantPaths

    cfg = load_tenant(args.tenant)
    paths = TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).ensure()
    logging.getLogger("tonghop.demo").info("generating %s demo rows for %s into %s", f"{args.rows:,}",
                                           cfg.display_name, paths.sources)
    written = generate(paths.sources, rows=args.rows, seed=args.seed)
    for name, path in written.items():
        print(f"wrote {name}: {path} ({path.stat().st_size:,} bytes)")
    if args.run:
        return cmd_run(argparse.Namespace(tenant=cfg.tenant_id, steps=None, run_id=None, sources=None))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tonghop", description="Tổng Hợp — integrated data platform CLI")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate-config", help="check every tenant file (or the given ones) against the schema")
    v.add_argument("files", nargs="*")
    v.set_defaults(func=cmd_validate_config)

    r = sub.add_parser("run", help="run a tenant's pipeline (all steps, or --steps a,b)")
    r.add_argument("--tenant", required=True)
    r.add_argument("--steps", help="comma-separated: extract_load,validate,transform,train,publish")
    r.add_argument("--sources", help="comma-separated source names to load (default: all)")
    r.add_argument("--run-id", help="fixed batch/run id (re-running the same id is idempotent)")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="generate the demo province's source data (and --run its pipeline)")
    d.add_argument("--tenant", default=os.environ.get("TONGHOP_DEMO_TENANT", "ninh-binh"))
    d.add_argument("--rows", type=int, default=20_000, help="number of one-stop-shop dossiers")
    d.add_argument("--seed", type=int, default=37)
    d.add_argument("--run", action="store_true", help="also run the pipeline after generating")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except TonghopError as exc:
        print(f"tonghop: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
