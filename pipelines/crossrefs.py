"""Cross-references of a tenant file that the schema alone cannot check (`tonghop validate-config`).

One line per problem, naming the file, the source or model, and what is expected:
- `expectation_suite:` must name a suite that exists: a core one (expectations/gx/expectations/<suite>.json)
  or the tenant's own (tenants/<tenant>/expectations/<suite>.json), readable as a suite; a tenant suite may not
  reuse a core suite's name;
- `models:` must name models of the registry (models/__init__.py REGISTRY), each listed once;
- each model's inputs must be there: the shared contracts it reads (`REQUIRES`, all of them; `REQUIRES_ANY`,
  one of them — declared once, in the model's own module) fed by one of the tenant's sources, and the models
  whose output it reads (`REQUIRES_MODELS`) listed too (in any position: models/__init__.py trains them in
  the order of these declared dependencies).

The declarations are read from the model modules' source text (ast), not by importing them: importing a
model pulls in pandas and scikit-learn (~2 s), which config validation must not pay.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.settings import EXPECTATIONS_DIR, PROJECT_ROOT

if TYPE_CHECKING:
    from pipelines.config import TenantConfig

DECLARATIONS = ("REQUIRES", "REQUIRES_ANY", "REQUIRES_MODELS")


def _module_path(module: str) -> Path:
    return PROJECT_ROOT / (module.replace(".", "/") + ".py")


@cache
def _declared(path: str, stamp: int) -> dict[str, tuple[str, ...]]:
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    found: dict[str, tuple[str, ...]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in DECLARATIONS:
            found[node.targets[0].id] = tuple(ast.literal_eval(node.value))
    return found


def model_requirements(name: str) -> dict[str, tuple[str, ...]]:
    """A registered model's declared inputs: REQUIRES, REQUIRES_ANY, REQUIRES_MODELS (empty when undeclared)."""
    from models import REGISTRY

    path = _module_path(REGISTRY[name])
    declared = _declared(str(path), path.stat().st_mtime_ns)
    return {k: declared.get(k, ()) for k in DECLARATIONS}


def check_suites(tenant: TenantConfig, file: str | Path | None = None,
                 expectations_dir: Path = EXPECTATIONS_DIR) -> list[str]:
    from pipelines.quality.suites import _gx_root, known_suites, read_suite_file, tenant_suites_dir

    where = f"{file}: " if file else ""
    out: list[str] = []
    core = {p.stem for p in (_gx_root(expectations_dir) / "expectations").glob("*.json")}
    own_dir = tenant_suites_dir(tenant.tenant_id)
    for path in sorted(own_dir.glob("*.json")):
        if path.stem in core and not path.name.endswith(".suggested.json"):
            out.append(f"{where}tenant suite {path} has the name of a core suite '{path.stem}' "
                       f"(expectations/gx/expectations/{path.stem}.json) — rename the file and the source's "
                       "`expectation_suite:`")
    known = known_suites(tenant.tenant_id, expectations_dir)
    for source in tenant.sources:
        name = source.expectation_suite
        if name is None:
            continue
        if name not in known:
            draft = own_dir / f"{name}.suggested.json"
            hint = (f"; {draft.name} is a draft of `tonghop suggest-suite` — review it and rename it to {name}.json"
                    if draft.is_file() else "")
            out.append(f"{where}source '{source.name}': expectation_suite '{name}' does not exist — expected "
                       f"expectations/gx/expectations/{name}.json or tenants/{tenant.tenant_id}/expectations/"
                       f"{name}.json (known: {', '.join(sorted(known)) or 'none'}){hint}")
            continue
        try:
            read_suite_file(known[name])
        except ValueError as exc:
            out.append(f"{where}source '{source.name}': expectation_suite '{name}': {exc}")
    return out


def check_models(tenant: TenantConfig, file: str | Path | None = None) -> list[str]:
    from models import REGISTRY

    where = f"{file}: " if file else ""
    out: list[str] = []
    contracts = {s.contract for s in tenant.sources if s.contract}
    have = ", ".join(sorted(contracts)) or "none"
    listed: list[str] = []
    for name in tenant.models:
        if name not in REGISTRY:
            out.append(f"{where}models: '{name}' is not a known model — expected one of "
                       f"{', '.join(sorted(REGISTRY))} (models/__init__.py REGISTRY)")
            continue
        if name in listed:
            out.append(f"{where}models: '{name}' is listed twice — list each model once")
            continue
        needs = model_requirements(name)
        missing = [c for c in needs["REQUIRES"] if c not in contracts]
        if missing:
            out.append(f"{where}model '{name}' needs the shared contract(s) {', '.join(missing)}, which no source "
                       f"of this tenant feeds (fed: {have}) — add a source with `contract: {missing[0]}` and a "
                       f"`mapping:`, or remove '{name}' from `models:`")
        if needs["REQUIRES_ANY"] and not contracts & set(needs["REQUIRES_ANY"]):
            out.append(f"{where}model '{name}' needs one of the shared contracts "
                       f"{', '.join(needs['REQUIRES_ANY'])}, and no source of this tenant feeds any (fed: {have}) "
                       f"— add such a source, or remove '{name}' from `models:`")
        for needed in needs["REQUIRES_MODELS"]:
            if needed not in tenant.models:
                out.append(f"{where}model '{name}' reads the output of model '{needed}', which is not in "
                           f"`models:` — add '{needed}' (in any position: models train in the order of their "
                           f"declared dependencies), or remove '{name}'")
        listed.append(name)
    return out


def check_crossrefs(tenant: TenantConfig, file: str | Path | None = None) -> list[str]:
    """Every cross-reference problem of a tenant file, one line each."""
    return check_suites(tenant, file) + check_models(tenant, file)
