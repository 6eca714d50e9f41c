"""A lakehouse writer process for the concurrency tests (not a test module).

    python -m tests.lakehouse.worker publish <tenant.json> <snapshot> <run_id> [table,table]
    python -m tests.lakehouse.worker rounds <tenant.json> <folder> <rounds> <table,table>

`publish`: one `publish_tenant` of the snapshot (the publish step's lakehouse hook).
`rounds`: for k = 1..rounds, writes a private DuckDB snapshot whose every given table holds 50 rows of value k,
then publishes exactly those tables — a reader must never see two tables of one publish disagree on k.
Prints one JSON line of what it committed; errors as one line on stderr and exit 1.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path


def _tenant(path: str):
    from pipelines.config import TenantConfig

    return TenantConfig.model_validate_json(Path(path).read_text(encoding="utf-8"))


def rounds(tenant, folder: Path, n: int, tables: list[str]) -> list[int]:
    import duckdb

    from pipelines.lakehouse import publish_tenant

    seqs = []
    for k in range(1, n + 1):
        snap = folder / f"round_{k}.duckdb"
        con = duckdb.connect(str(snap))
        for name in tables:
            schema, table = name.split(".")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT {k} AS k, i FROM range(50) t(i)")
        con.close()
        seqs.append(publish_tenant(tenant, snap, f"round-{k}", tables=tables).publish_seq)
    return seqs


def main(argv: list[str]) -> int:
    from pipelines.errors import TonghopError
    from pipelines.redact import install_log_redaction

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    install_log_redaction()
    try:
        tenant = _tenant(argv[1])
        if argv[0] == "publish":
            from pipelines.lakehouse import publish_tenant

            tables = argv[4].split(",") if len(argv) > 4 else None
            result = publish_tenant(tenant, Path(argv[2]), argv[3], tables=tables)
            print(json.dumps({"publish_seq": result.publish_seq, **result.metrics()}))
        else:
            print(json.dumps({"seqs": rounds(tenant, Path(argv[2]), int(argv[3]), argv[4].split(","))}))
    except TonghopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
