"""The open-data plan against the tenant's tables: what validate-config checks, where each open table's data
comes from (lineage to sources, for the gate), and progress per phase (`progress.json`, the catalogue page)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.config import OpenDataPlan, TenantConfig


def known_tables(cfg: TenantConfig) -> set[str]:
    """Tables a tenant's snapshot can publish: core and tenant SQL models, and the documented model outputs."""
    from pipelines.dictionary import model_docs
    from pipelines.warehouse import sql_models

    return {m.qualified for m in sql_models(tenant=cfg)} | set(model_docs(tenant=cfg))


def check_plan(cfg: TenantConfig) -> list[str]:
    """One line per open dataset whose table is no core or tenant model (validate-config)."""
    if cfg.open_data is None:
        return []
    tables = known_tables(cfg)
    return [f"tenant '{cfg.tenant_id}': field 'open_data.datasets[{d.id}].table': '{d.table}' is no published "
            "table of this tenant (core or tenant model in warehouse/ or tenants/<tenant>/warehouse/) — "
            "check its spelling, e.g. marts.ho_so_tuan"
            for d in cfg.open_data.datasets if d.table not in tables]


def feeding_sources(cfg: TenantConfig, table: str) -> set[str]:
    """The tenant's sources whose rows reach `table` through the SQL models (contract views included)."""
    from pipelines.warehouse import sql_models

    models = {m.qualified: m for m in sql_models(tenant=cfg)}
    by_contract: dict[str, list[str]] = {}
    for s in cfg.sources:
        if s.contract:
            by_contract.setdefault(s.contract, []).append(s.name)
    names = {s.name for s in cfg.sources}
    found: set[str] = set()
    seen: set[str] = set()
    stack = [table]
    while stack:
        current = stack.pop()
        if current in seen or current not in models:
            continue
        seen.add(current)
        model = models[current]
        for view in model.sources:
            if view.startswith("contract_"):
                found.update(by_contract.get(view.removeprefix("contract_"), []))
            elif view.removeprefix("src_") in names:
                found.add(view.removeprefix("src_"))
        stack.extend(model.refs)
    return found


def _add_months(day: date, months: int) -> date:
    import calendar

    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def compute_progress(plan: OpenDataPlan, state: dict[str, Any], refused: dict[str, list[str]],
                     today: date | None = None) -> dict[str, Any]:
    """Per phase: planned vs published datasets and whether the minimum level is met; the next review date.

    A dataset counts as published when a version of it is online (in `state`), even if this run refused a
    newer one. `min_datasets` counts every published dataset of this phase and the phases due before it."""
    today = today or datetime.now(UTC).date()
    published = {k for k, v in state.get("datasets", {}).items() if v.get("version")}
    phases = sorted(plan.phases, key=lambda p: p.due)
    out = []
    for i, phase in enumerate(phases):
        upto = {p.id for p in phases[: i + 1]}
        planned = [d.id for d in plan.datasets if d.phase == phase.id]
        cumulative = [d.id for d in plan.datasets if d.phase in upto]
        n_published = sum(d in published for d in cumulative)
        missing_required = [r for r in phase.required if r not in published]
        met = n_published >= phase.min_datasets and not missing_required
        out.append({
            "id": phase.id, "name": phase.name, "name_en": phase.name_en, "due": phase.due.isoformat(),
            "planned": planned, "published": [d for d in planned if d in published],
            "refused": [d for d in planned if d in refused],
            "n_published_cumulative": n_published, "min_datasets": phase.min_datasets,
            "required": list(phase.required), "missing_required": missing_required,
            "is_met": met, "status": "met" if met else ("overdue" if today > phase.due else "in_progress"),
        })
    first = min((v["issued"] for v in state.get("datasets", {}).values() if v.get("issued")), default=None)
    start = plan.last_review or (date.fromisoformat(first[:10]) if first else None)
    next_review = _add_months(start, plan.review_months) if start else None
    return {
        "computed_on": today.isoformat(),
        "n_planned": len(plan.datasets), "n_published": len(published & {d.id for d in plan.datasets}),
        "phases": out,
        "review": {"period_months": plan.review_months,
                   "last_review": plan.last_review.isoformat() if plan.last_review else None,
                   "next_review_due": next_review.isoformat() if next_review else None,
                   "is_review_overdue": bool(next_review and today > next_review)},
    }


def load_progress(root: Path) -> dict[str, Any] | None:
    """What the catalogue page shows: `progress.json` and the refusals of `publish_report.json` under
    `<tenant data folder>/open_data/` (None before the first publication)."""
    folder = Path(root) / "open_data"
    try:
        progress = json.loads((folder / "progress.json").read_text(encoding="utf-8"))
        report = json.loads((folder / "publish_report.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    progress["refusals"] = {d["id"]: d["reasons"] for d in report.get("datasets", []) if d["status"] == "refused"}
    progress["published_at"] = report.get("published_at")
    return progress
