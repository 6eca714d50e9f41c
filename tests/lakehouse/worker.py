"""A lakehouse writer process for the concurrency tests (not a test module).

    python -m tests.lakehouse.worker <jobs.json>

Runs the jobs in order, in this one process (each job names its tenant, as a TenantConfig JSON):
- `{"op": "publish", "tenant": …, "snapshot": path, "run_id": …, "tables": [..] | null}`: one
  `publish_tenant` of the snapshot (the publish step's lakehouse hook);
- `{"op": "rounds", "tenant": …, "folder": path, "rounds": n, "tables": [..]}`: for k = 1..n, writes a private
  DuckDB snapshot whose every given table holds 50 rows of value k, then publishes exactly those tables — a
  reader must never see two tables of one publish disagree on k.
Prints one JSON line: a result per job. Errors as one line on stderr and exit 1.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path


def _tenant(spec: dict):
    from pipelines.config import TenantConfig

    return TenantConfig.model_validate(spec)


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
        results = []
        for job in json.loads(Path(argv[0]).read_text(encoding="utf-8")):
            tenant = _tenant(job["tenant"])
            if job["op"] == "publish":
                from pipelines.lakehouse import publish_tenant

                result = publish_tenant(tenant, Path(job["snapshot"]), job["run_id"], tables=job.get("tables"))
                results.append({"publish_seq": result.publish_seq, **result.metrics()})
            else:
                results.append({"seqs": rounds(tenant, Path(job["folder"]), job["rounds"], job["tables"])})
        print(json.dumps(results))
    except TonghopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
