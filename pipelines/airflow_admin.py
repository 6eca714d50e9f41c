"""What a deployment sets up in Airflow's metadata for the tenants: their pools, queues and paused state.

One tenant = one Airflow pool of ONE slot (`warehouse_<tenant>`, held by every task of its DAGs: two writers
never open one DuckDB warehouse, and a province can never hold more than one executor slot, whatever its
load) and one queue (`tonghop_<tenant>`, the `queue` of its tasks: a Celery worker serving several queues
takes from them in turn, so one province's backlog cannot starve another's, and a heavy province can get a
worker set of its own — deploy/helm). The LocalExecutor and KubernetesExecutor ignore queues; pools hold
for every executor.

Pools live in the metadata database, not in DAG files (Airflow forbids database access at parse time), so
`tonghop airflow sync-pools` creates them from the tenant files: `make airflow-init`, the Helm chart's
scheduler init container and the cluster test all call it. It is idempotent and never deletes a pool unless
asked (`--prune` removes `warehouse_*` pools of tenants that no longer exist, once no task holds them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import TonghopError

log = logging.getLogger("tonghop.airflow")
POOL_PREFIX = "warehouse_"
QUEUE_PREFIX = "tonghop_"


def tenant_queue(tenant_id: str) -> str:
    return f"{QUEUE_PREFIX}{tenant_id.replace('-', '_')}"


# KubernetesExecutor: each task runs in a pod of the chart's pod template, sized by `workers.resources`
# (deploy/helm/values-kubernetes.yaml). A tenant that needs more (or less) gets its own size from the
# operator's TONGHOP_POD_RESOURCES — JSON, tenant id (or "default") → {"cpu": "2", "memory": "12Gi"} —
# turned into the task's `pod_override` for the pod's `base` container. An installation setting, never the
# tenant file: a province cannot size its own pods.
POD_RESOURCES_ENV = "TONGHOP_POD_RESOURCES"
_QUANTITY = {"cpu": r"^[0-9]+(\.[0-9]+)?m?$", "memory": r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$"}


def pod_resources(tenant_id: str, setting: str | None = None) -> dict[str, dict[str, str]] | None:
    """The `resources` of the tenant's task pods ({"requests": …, "limits": …}), None to keep the template's.

    Requests and limits are equal for memory (a task's memory is its DuckDB limit plus Python: no overcommit);
    CPU is requested, not limited (a task may use idle cores). A malformed setting is one readable error."""
    import json
    import os
    import re

    raw = os.environ.get(POD_RESOURCES_ENV, "") if setting is None else setting
    if not raw.strip():
        return None
    try:
        table = json.loads(raw)
        if not isinstance(table, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise TonghopError(f"{POD_RESOURCES_ENV} is not valid JSON ({exc}) — give e.g. "
                           '{"default": {"cpu": "1", "memory": "4Gi"}, "ho-chi-minh": {"cpu": "2", "memory": "12Gi"}}'
                           ) from None
    size = table.get(tenant_id, table.get("default"))
    if size is None:
        return None
    if not isinstance(size, dict) or set(size) - set(_QUANTITY) or not size:
        raise TonghopError(f"{POD_RESOURCES_ENV}: the size of '{tenant_id}' must be an object with cpu and/or "
                           'memory, e.g. {"cpu": "2", "memory": "12Gi"}')
    for key, value in size.items():
        if not isinstance(value, str) or not re.match(_QUANTITY[key], value):
            raise TonghopError(f"{POD_RESOURCES_ENV}: {key} of '{tenant_id}' is {str(value)[:20]!r}, not a "
                               f"Kubernetes quantity (e.g. {'2 or 500m' if key == 'cpu' else '12Gi'})")
    requests = dict(size)
    limits = {"memory": size["memory"]} if "memory" in size else {}
    return {"requests": requests, "limits": limits}


def executor_config(tenant_id: str) -> dict:
    """A task's `executor_config`: the KubernetesExecutor's `pod_override` with the tenant's pod resources when
    the operator set some; empty otherwise (and for every other executor, which ignores it)."""
    resources = pod_resources(tenant_id)
    if resources is None:
        return {}
    try:
        from kubernetes.client import models as k8s
    except ImportError:  # no Kubernetes client: not a KubernetesExecutor deployment
        return {}
    container = k8s.V1Container(name="base", resources=k8s.V1ResourceRequirements(**resources))
    return {"pod_override": k8s.V1Pod(spec=k8s.V1PodSpec(containers=[container]))}


@dataclass(frozen=True)
class TenantSlot:
    """A tenant's share of the cluster: its one-slot pool and its queue."""

    tenant_id: str
    display_name: str
    pool: str  # TenantConfig.pool: `warehouse_<tenant>`

    @property
    def queue(self) -> str:
        return tenant_queue(self.tenant_id)

    @property
    def description(self) -> str:
        return f"one writer for the DuckDB warehouse of {self.display_name} ({self.tenant_id})"[:250]


def tenant_slots(directory: Path | None = None) -> tuple[list[TenantSlot], list[str]]:
    """Every valid tenant file's slot, and one line per file that does not validate (its DAG shows the error)."""
    from pipelines.config import load_tenant_file, tenant_files

    slots, problems = [], []
    for path in tenant_files(directory):
        try:
            cfg = load_tenant_file(path)
        except TonghopError as exc:
            problems.append(str(exc).splitlines()[0])
            continue
        slots.append(TenantSlot(cfg.tenant_id, cfg.display_name, cfg.pool))
    return slots, problems


@dataclass
class PoolSync:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    pruned: list[str]
    stale: list[str]      # warehouse_* pools with no tenant file, kept (no --prune)
    problems: list[str]   # tenant files that do not validate (no pool made for them)

    def summary(self) -> str:
        lines = [f"pools: {len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} "
                 f"unchanged, {len(self.pruned)} removed"]
        lines += [f"  created {p}" for p in self.created] + [f"  updated {p} (back to 1 slot)" for p in self.updated]
        lines += [f"  removed {p}" for p in self.pruned]
        if self.stale:
            lines.append(f"  kept {len(self.stale)} pool(s) of tenants that no longer have a file: "
                         f"{', '.join(self.stale)} (remove with --prune)")
        lines += [f"  skipped (fix the tenant file): {p}" for p in self.problems]
        return "\n".join(lines)


def sync_pools(directory: Path | None = None, *, prune: bool = False) -> PoolSync:
    """Create or repair every tenant's one-slot pool in Airflow's metadata database (needs `db migrate`)."""
    slots, problems = tenant_slots(directory)
    try:
        from airflow.models.pool import Pool
        from airflow.utils.session import create_session
        from sqlalchemy import select
    except ImportError as exc:  # pragma: no cover — Airflow is a locked dependency
        raise TonghopError(f"Airflow is not importable here ({exc}): run this where Airflow is installed") from None
    result = PoolSync([], [], [], [], [], problems)
    wanted = {s.pool: s for s in slots}
    try:
        with create_session() as session:
            existing = {p.pool: p for p in session.scalars(select(Pool).where(Pool.pool.like(f"{POOL_PREFIX}%")))
                        if p.pool.startswith(POOL_PREFIX)}  # `_` is a LIKE wildcard
            for name, slot in sorted(wanted.items()):
                pool = existing.get(name)
                if pool is None:
                    session.add(Pool(pool=name, slots=1, description=slot.description, include_deferred=False))
                    result.created.append(name)
                elif pool.slots != 1 or pool.include_deferred:
                    pool.slots, pool.include_deferred = 1, False  # a second slot would let two writers in
                    result.updated.append(name)
                else:
                    result.unchanged.append(name)
            for name in sorted(set(existing) - set(wanted)):
                if prune:
                    session.delete(existing[name])
                    result.pruned.append(name)
                else:
                    result.stale.append(name)
    except Exception as exc:  # noqa: BLE001 — a database problem is one readable line, not a traceback
        raise _metadata_error("write the tenant pools into", exc) from None
    return result


def _metadata_error(what: str, exc: Exception) -> TonghopError:
    if isinstance(exc, TonghopError):
        return exc
    from pipelines.redact import redact

    first = redact(str(exc).splitlines()[0] if str(exc) else "")[:200]  # a driver error may quote the DSN
    return TonghopError(f"cannot {what} Airflow's metadata database ({type(exc).__name__}: {first}): run "
                        "`airflow db migrate` first and check AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")


def unpause_tenant_dags(directory: Path | None = None) -> list[str]:
    """Unpause every tenant DAG (`tonghop_*`) already known to the metadata database; returns their ids.

    New DAGs follow `[core] dags_are_paused_at_creation` (the Makefile and Helm values set it to False)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    slots, _ = tenant_slots(directory)
    ids = {f"tonghop_{s.tenant_id}" for s in slots} | {f"tonghop_retrain_{s.tenant_id}" for s in slots}
    ids.add("tonghop_datamap")
    try:
        with create_session() as session:
            dags = list(session.scalars(select(DagModel).where(DagModel.dag_id.in_(ids), DagModel.is_paused)))
            for dag in dags:
                dag.is_paused = False
            return sorted(d.dag_id for d in dags)
    except Exception as exc:  # noqa: BLE001 — one readable line, not a traceback
        raise _metadata_error("unpause the tenant DAGs in", exc) from None
