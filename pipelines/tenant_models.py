"""Tenant-owned SQL models: `tenants/<tenant>/warehouse/{staging,marts}/<name>.sql`, a `<name>.yml` doc beside
each (the same format as the core models in `warehouse/`).

They are built with the core models in one dependency order (`pipelines.warehouse.sql_models(tenant=…)`), may
read the core tables, the tenant's `src_<source>` views and the `contract_<name>` views its sources feed, and
are documented in the data dictionary and published in the tenant's snapshot. Core models never read them.

`check_tenant_models` lists every problem, one line each naming the file, the model and the fix; it runs in
`tonghop validate-config` (through `pipelines.contracts.check_tenant`) and again when `transform` lists the
models, before anything is built:

- a file name that is not an identifier, or a file outside the tenant's folder (symlink out);
- a model without its `.yml` doc, a doc without its model, a doc without a description or column list;
- a name clash with a core table (a SQL model or a table the models step writes);
- a reference to a table neither the core nor the tenant defines, to a table the models step writes (it
  runs after the SQL models), or to `raw` (personal data un-pseudonymised: read `src_<source>`);
- a `src_<name>` of a source the tenant does not have, a `contract_<name>` none of its sources feeds;
- a cycle among the models (named: `staging.a → marts.b → staging.a`).

After a tenant model is built, `check_built_columns` compares its `.yml` columns with the table's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError
from pipelines.settings import WAREHOUSE_SQL_DIR, tenants_dir
from pipelines.warehouse import MODEL_LAYERS, SqlModel, _without_comments, find_cycle, topological

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_RAW_REF = re.compile(r"\braw\s*\.\s*\"?[A-Za-z_]", re.IGNORECASE)
_UPPER_REF = re.compile(r"\b(STAGING|MARTS|Staging|Marts)\.([A-Za-z_][A-Za-z0-9_]*)")


def models_dir(tenant_id: str) -> Path:
    """Where a tenant's own models live (it need not exist)."""
    return tenants_dir() / tenant_id / "warehouse"


def _rel(path: Path) -> str:
    """A path as the engineer knows it: relative to the tenants folder's parent when inside it."""
    base = tenants_dir().parent
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def discover(tenant_id: str) -> tuple[list[SqlModel], list[str]]:
    """The tenant's model files and the problems of their layout (names, docs, confinement)."""
    root = models_dir(tenant_id)
    if not root.exists() and not root.is_symlink():
        return [], []
    allowed = (tenants_dir().resolve() / tenant_id / "warehouse")
    problems: list[str] = []
    if root.resolve() != allowed or not root.is_dir():
        return [], [f"{_rel(root)}: is a link or not a folder — a tenant's models must be files inside its own "
                    f"folder {_rel(tenants_dir() / tenant_id)}/warehouse/ (copy them there)"]
    for entry in sorted(root.iterdir()):
        if entry.name in MODEL_LAYERS or entry.name.startswith(".") or entry.suffix.lower() in (".md", ".txt"):
            continue
        if entry.is_dir() or entry.suffix.lower() in (".sql", ".yml", ".yaml"):
            problems.append(f"{_rel(entry)}: not a model layer — put models in "
                            f"{_rel(root)}/staging/ or {_rel(root)}/marts/")
    models: list[SqlModel] = []
    for layer in MODEL_LAYERS:
        folder = root / layer
        if not folder.exists() and not folder.is_symlink():
            continue
        if folder.resolve() != allowed / layer or not folder.is_dir():
            problems.append(f"{_rel(folder)}: is a link or not a folder — keep the tenant's models inside "
                            f"{_rel(root)}/ (copy them there)")
            continue
        for path in sorted(folder.iterdir()):
            suffix = path.suffix.lower()
            if suffix not in (".sql", ".yml", ".yaml"):
                continue
            what = f"{_rel(path)}: model {layer}.{path.stem}"
            if path.is_symlink() or not path.resolve().is_relative_to(allowed / layer) or not path.is_file():
                problems.append(f"{what}: is a link or not a regular file — a tenant model must be a file inside "
                                f"{_rel(folder)}/ (copy it there rather than linking)")
                continue
            if suffix != ".sql":
                if suffix == ".yaml":
                    problems.append(f"{what}: docs end in .yml — rename it {path.stem}.yml")
                elif not path.with_suffix(".sql").exists():
                    problems.append(f"{what}: a doc without its model — add {path.stem}.sql beside it or remove "
                                    "the .yml")
                continue
            if not IDENTIFIER.match(path.stem) or len(path.stem) > 63:
                problems.append(f"{what}: the file name is not a valid table name — use lower-case letters, "
                                "digits and '_', starting with a letter (e.g. giay_phep_tan_so.sql)")
                continue
            if not path.with_suffix(".yml").is_file():
                problems.append(f"{what}: has no .yml doc — add {path.stem}.yml beside it (description vi/en, "
                                "grain, owner, columns), as warehouse/<layer>/*.yml")
            models.append(SqlModel(layer, path.stem, path, tenant=tenant_id))
    return models, problems


def load_doc(model: SqlModel) -> dict[str, Any]:
    """The parsed `.yml` doc of a model ({} when there is none)."""
    from pipelines.yamlsafe import load_yaml_file

    if not model.doc_path.is_file():
        return {}
    doc = load_yaml_file(model.doc_path)
    return doc if isinstance(doc, dict) else {}


def _doc_problems(model: SqlModel, what: str) -> list[str]:
    if not model.doc_path.is_file():
        return []
    try:
        doc = load_doc(model)
    except ConfigError as exc:
        return [f"{what}: its doc is unreadable ({exc}) — fix {model.doc_path.name}"]
    out = []
    d = doc.get("description")
    if not (isinstance(d, dict) and d.get("vi") and d.get("en")):
        out.append(f"{what}: {model.doc_path.name} needs `description: {{vi: …, en: …}}` — describe the table in "
                   "Vietnamese and English")
    cols = doc.get("columns")
    if not isinstance(cols, list) or not cols or not all(isinstance(c, dict) and c.get("name") for c in cols):
        out.append(f"{what}: {model.doc_path.name} needs `columns:` — a list of `- name: <column>` with a "
                   "`description:` for every column the SELECT returns")
    else:
        blank = [str(c["name"]) for c in cols if not str(c.get("description") or "").strip()]
        if blank:
            out.append(f"{what}: {model.doc_path.name} has column(s) {', '.join(blank)} without a description — "
                       "describe each")
    return out


def model_output_tables(root: Path = WAREHOUSE_SQL_DIR) -> dict[str, str]:
    """Tables the models step (Python, after the SQL models) writes: name → the module writing it, from the
    docs-only `.yml` files carrying `written_by:`."""
    from pipelines.dictionary import model_docs

    return {name: str(doc["written_by"]) for name, doc in model_docs(root).items() if doc.get("written_by")}


def check_tenant_models(tenant: TenantConfig, file: str | Path | None = None,
                        core: list[SqlModel] | None = None) -> list[str]:
    """Every problem of the tenant's own models, one line each (what `tonghop validate-config` prints)."""
    from pipelines.contracts import load_contracts

    models, problems = discover(tenant.tenant_id)
    if not models and not problems:
        return []
    prefix = f"{file}: " if file else ""
    if core is None:
        core = [SqlModel(layer, p.stem, p) for layer in MODEL_LAYERS
                for p in sorted((WAREHOUSE_SQL_DIR / layer).glob("*.sql"))]
    core_names = {m.qualified for m in core}
    outputs = model_output_tables()
    own = {m.qualified for m in models}
    sources = {s.name for s in tenant.sources}
    fed = {s.contract for s in tenant.sources if s.contract}
    contracts = set(load_contracts())
    unbuilt = _core_not_built(core, {f"src_{s}" for s in sources} | {f"contract_{c}" for c in fed})
    for m in models:
        what = f"{_rel(m.path)}: model {m.qualified}"
        problems += _doc_problems(m, what)
        if m.qualified in core_names:
            problems.append(f"{what}: clashes with the core table {m.qualified} (warehouse/{m.layer}/{m.name}.sql) — "
                            f"rename the file, e.g. {m.layer}/{_prefixed(tenant, m.name)}.sql")
            continue
        if m.qualified in outputs:
            problems.append(f"{what}: clashes with {m.qualified}, which {outputs[m.qualified]} writes — rename the "
                            f"file, e.g. {m.layer}/{_prefixed(tenant, m.name)}.sql")
            continue
        try:
            sql = m.sql
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{what}: cannot be read ({type(exc).__name__}) — save it as UTF-8 text")
            continue
        code = _without_comments(sql)
        if not code.strip():
            problems.append(f"{what}: is empty — write the SELECT that builds the table")
            continue
        if _RAW_REF.search(code):
            problems.append(f"{what}: reads the raw layer, which holds personal data as loaded — read "
                            "src_<source> (pseudonymised, promoted rows only) instead")
        for upper in sorted({f"{a}.{b}" for a, b in _UPPER_REF.findall(code)}):
            problems.append(f"{what}: writes {upper} in capitals — write table names in lower case "
                            f"({upper.lower()})")
        for ref in sorted(m.refs - {m.qualified}):
            if ref in unbuilt:
                problems.append(f"{what}: reads {ref}, which this tenant does not build (it needs "
                                f"{', '.join(sorted(unbuilt[ref]))}) — feed that contract from a source "
                                "(`contract:` and `mapping:`), or read another table")
                continue
            if ref in core_names or ref in own:
                continue
            if ref in outputs:
                problems.append(f"{what}: reads {ref}, which {outputs[ref]} writes after the SQL models are built "
                                "— SQL models cannot read model output; read the tables it is made from")
            else:
                known = sorted(n for n in (core_names - unbuilt.keys()) | own if n.startswith(ref.split(".")[0] + "."))
                problems.append(f"{what}: reads {ref}, which neither the core nor the tenant defines — expected "
                                f"one of {', '.join(known)} (or add {ref.replace('.', '/')}.sql to "
                                f"{_rel(models_dir(tenant.tenant_id))}/)")
        for view in sorted(m.sources):
            kind, name = view.split("_", 1)
            if kind == "src" and name not in sources:
                problems.append(f"{what}: reads {view}, but the tenant has no source '{name}' — expected one of "
                                f"{', '.join('src_' + s for s in sorted(sources)) or '(no sources)'}")
            elif kind == "contract" and name not in fed:
                why = ("no source of the tenant feeds it — add `contract: " + name + "` and a mapping to a source"
                       if name in contracts else
                       f"there is no such contract — expected one of {', '.join(sorted(contracts))}")
                problems.append(f"{what}: reads {view}, but {why}")
    # A cycle through the tenant's models (the core ones are acyclic and never read the tenant's).
    by_name = {m.qualified: m for m in [*core, *models]}
    graph = {n: (m.refs - {n}) & by_name.keys() for n, m in by_name.items()}
    cycle = find_cycle({n: graph[n] for n in own if n in graph})
    if cycle:
        problems.append(f"{_rel(by_name[cycle[0]].path)}: model {cycle[0]}: models read each other in a cycle "
                        f"{' → '.join(cycle)} — break it: one of them must not read the other")
    return [prefix + p for p in problems]


def _core_not_built(core: list[SqlModel], available: set[str]) -> dict[str, set[str]]:
    """Core tables this tenant's sources cannot build (transform skips them), each with the views it lacks."""
    missing: dict[str, set[str]] = {}
    for m in topological(core):
        lacking = set(m.sources - available)
        for ref in m.refs & missing.keys():
            lacking |= missing[ref]
        if lacking:
            missing[m.qualified] = lacking
    return missing


def _prefixed(tenant: TenantConfig, name: str) -> str:
    short = re.sub(r"[^a-z0-9_]", "_", tenant.admin_code.lower())
    return f"{short}_{name}" if IDENTIFIER.match(f"{short}_{name}") else f"rieng_{name}"


def checked_tenant_models(tenant: TenantConfig, core: list[SqlModel] | None = None) -> list[SqlModel]:
    """The tenant's models, or ConfigError naming every problem (so a run never half-builds)."""
    problems = check_tenant_models(tenant, file=None, core=core)
    if problems:
        raise ConfigError(f"tenant '{tenant.tenant_id}': " + "; ".join(problems))
    models, _ = discover(tenant.tenant_id)
    return models


def check_built_columns(con: duckdb.DuckDBPyConnection, model: SqlModel) -> str | None:
    """One line if the model's `.yml` and the table it built disagree on columns (documented columns the SELECT
    does not return, or returned columns nobody documented); None when they agree."""
    from pipelines.warehouse import columns_of

    built = list(columns_of(con, model.layer, model.name))
    documented = [str(c.get("name")) for c in load_doc(model).get("columns") or [] if isinstance(c, dict)]
    extra = [c for c in documented if c not in built]
    missing = [c for c in built if c not in documented]
    if not (extra or missing):
        return None
    parts = []
    if extra:
        parts.append(f"documents column(s) {', '.join(extra)} the SELECT does not return")
    if missing:
        parts.append(f"does not document column(s) {', '.join(missing)}")
    return (f"{_rel(model.doc_path)}: model {model.qualified}: {' and '.join(parts)} — make the .yml's `columns:` "
            "list exactly the columns the SELECT returns")
