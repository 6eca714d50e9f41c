"""Cost follows change: what a run must rebuild, retrain and republish, and the state each step leaves behind.

**Nothing new, nothing done.** `transform` records in `meta.build_state` what it built from: the promoted
batches (`meta.loads` status `passed`), the retention purges applied to raw, and a *fingerprint* of everything
else a build reads — every file of `warehouse/` (models, macros, contracts, seeds, meta schema), the tenant's
own models, the tenant's configuration, the pipeline code a build runs (`CODE_TREES`), the DuckDB and
reference-data package versions and a hash of the pseudonymisation key. A transform whose inputs are the recorded ones does
nothing and says so; `train` records the transform build it trained on (plus the models' code and config) and
`publish` writes the build key into the snapshot (`meta.snapshot.build_key`): each skips when its input is the
one it last finished with. A failed or killed step records nothing (the state commits with its work), so the
next run redoes it; a changed model, contract, config or code changes the fingerprint and rebuilds everything.

**Incremental maintenance.** A model whose `.yml` has an `incremental:` block is maintained from the change
instead of rebuilt, when the previous build exists and only new batches (or purges) of append/merge sources
arrived:

- a *keyed* model (`unique_key`, `contract`: staging.ho_so) rebuilds just the keys found in the new batches:
  the source views are restricted to those keys (every batch of them, so the newest promoted row still wins
  and a quarantined late update leaves the old row), the model's own SQL runs over them, and the old rows of
  those keys are replaced. Its `as_of` (a value computed over all rows — the data's own "today") is recomputed
  from the kept rows and the new ones; when it moves, the rows depending on it (`as_of.rows`) are rebuilt too
  and its column updated.
- a *grouped* model (`grain`, `groups`, `rows`: the weekly marts) recomputes the groups that the old and new
  versions of the changed rows fall in: its SQL runs over a superset of the rows contributing to those groups
  (`rows`), and only those groups are replaced.

Every other model is rebuilt in full (they are small). `tests/warehouse/test_incremental.py` checks that an
incremental build equals a full rebuild, table by table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.reference.pii import NO_DIGITS
from pipelines.settings import PROJECT_ROOT, WAREHOUSE_SQL_DIR

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig
    from pipelines.warehouse import SqlModel

log = logging.getLogger("tonghop.incremental")
STATE_TABLE = "meta.build_state"
# Reference data comes from these packages: a new version may change staging's lookup tables.
REFERENCE_PACKAGES = ("duckdb", "vietnamadminunits", "vietnam-provinces", "holidays")


def _x(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list:
    """Run a statement to the end (DuckDB refuses some calls while a result is unfetched)."""
    return con.execute(sql, params or []).fetchall()


# --- fingerprints ---------------------------------------------------------------------------------------

def _files_digest(h: Any, root: Path, patterns: tuple[str, ...]) -> None:
    for pattern in patterns:
        for p in sorted(root.rglob(pattern)):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(root)).encode())
                h.update(p.read_bytes())


@lru_cache(maxsize=8)
def _tree_digest(root: str, patterns: tuple[str, ...], _stamp: tuple) -> str:
    h = hashlib.sha256()
    _files_digest(h, Path(root), patterns)
    return h.hexdigest()


def _stamp(root: Path, patterns: tuple[str, ...]) -> tuple:
    """Names, sizes and mtimes: the cache key that says a tree's digest must be recomputed."""
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for pattern in patterns
                 for p in sorted(root.rglob(pattern)) if p.is_file() and "__pycache__" not in p.parts)


def tree_digest(root: Path, patterns: tuple[str, ...]) -> str:
    return _tree_digest(str(root), patterns, _stamp(root, patterns))


def _versions() -> str:
    out = []
    for name in REFERENCE_PACKAGES:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name}==none")
    return ";".join(out)


# The pipeline code a build runs: the transform step and what it calls (views, contracts, macros' Python twins,
# reference data, quarantine exclusion, dictionary). Not the source readers (raw is already loaded), the CLI,
# the demo, publishers or apps: changing those does not change what a build makes.
CODE_FILES = ("pipelines/steps.py", "pipelines/incremental.py", "pipelines/warehouse.py", "pipelines/contracts.py",
              "pipelines/dictionary.py", "pipelines/tenant_models.py", "pipelines/text.py",
              "pipelines/quality/rowchecks.py")
CODE_TREES = ("pipelines/reference",)
FINGERPRINT_PARTS = {"warehouse": "the SQL models, macros, contracts or seeds (warehouse/)",
                     "tenant": "the tenant's configuration or its own models",
                     "model_list": "the tenant's list of machine-learning models",
                     "code": "the pipeline code", "packages": "DuckDB or the reference-data packages",
                     "key": f"the pseudonymisation key ({'TONGHOP_PII_KEY'})"}


def fingerprint_parts(tenant: TenantConfig, models: list[SqlModel], pii_key: str) -> dict[str, str]:
    """What a transform reads besides the promoted batches, part by part; any change means a full rebuild."""
    # The list of ML models apart: it defines no table (models/retrain.py compares the other parts at each fit)
    own = hashlib.sha256(tenant.model_dump_json(exclude={"models"}).encode())
    for m in models:
        if m.tenant:
            own.update(str(m.path).encode())
            own.update(m.path.read_bytes())
            if m.doc_path.exists():
                own.update(m.doc_path.read_bytes())
    code = hashlib.sha256()
    for name in CODE_FILES:
        code.update(name.encode())
        code.update((PROJECT_ROOT / name).read_bytes())
    for tree in CODE_TREES:
        code.update(tree_digest(PROJECT_ROOT / tree, ("*.py",)).encode())
    return {"warehouse": tree_digest(WAREHOUSE_SQL_DIR, ("*.sql", "*.yml", "*.csv")),
            "tenant": own.hexdigest(), "model_list": digest(tenant.models), "code": code.hexdigest(),
            "packages": digest(_versions()),
            "key": hashlib.sha256(("tonghop-pii|" + pii_key).encode()).hexdigest()}


def models_fingerprint(tenant: TenantConfig) -> str:
    """What `train` reads besides the warehouse: the models' code and the tenant's configuration."""
    h = hashlib.sha256()
    h.update(tree_digest(PROJECT_ROOT / "models", ("*.py", "*.yml", "*.yaml", "*.json")).encode())
    h.update(tenant.model_dump_json().encode())
    h.update(_versions().encode())
    return h.hexdigest()


def digest(*parts: Any) -> str:
    """A short hash, its digits written as letters: published in the snapshot, it must never look like a CCCD
    or a phone number to the personal-data scanner (pipelines/reference/pii.py)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32].translate(NO_DIGITS)


# --- build state ----------------------------------------------------------------------------------------

def read_state(con: duckdb.DuckDBPyConnection, step: str) -> dict[str, Any] | None:
    rows = con.execute(f"SELECT run_id, input_key, detail FROM {STATE_TABLE} WHERE step = ?", [step]).fetchall()
    if not rows:
        return None
    row = rows[0]
    detail = json.loads(row[2]) if row[2] else {}
    return {"run_id": row[0], "input_key": row[1], **detail}


def write_state(con: duckdb.DuckDBPyConnection, step: str, run_id: str, input_key: str,
                detail: dict[str, Any]) -> None:
    from pipelines.warehouse import now

    _x(con, f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?, ?, ?, ?)",
                [step, run_id, input_key, json.dumps(detail, sort_keys=True, default=str), now()])


def promoted_batches(con: duckdb.DuckDBPyConnection) -> list[list[str]]:
    """Each promoted batch with what its content is known by: a batch reloaded under the same id (a retry of
    the same run) or re-validated with other checks is another batch for the build (a full rebuild)."""
    return [list(r) for r in con.execute(
        "SELECT source, batch_id, coalesce(fingerprint, ''), loaded_at::VARCHAR, coalesce(n_rows_promoted, -1)::VARCHAR, "
        "coalesce(n_rows_quarantined, -1)::VARCHAR FROM meta.loads WHERE status = 'passed' ORDER BY 1, 2").fetchall()]


def meta_inputs(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> str:
    """A digest of the `meta` records models read or the snapshot serves, that change without a new promoted
    batch (a blocked batch's scores, a purge, models trained): not the per-run logs (step_runs, unchanged loads)."""
    loads = con.execute("SELECT source, batch_id, status, loaded_at::VARCHAR FROM meta.loads "
                        "WHERE status IN ('passed', 'blocked') ORDER BY ALL").fetchall()
    return digest([list(r) for r in loads], [content_version(con, t) for t in tables])


# What models read from `meta` (marts.chat_luong_du_lieu), and what the snapshot serves besides the models.
MODEL_META = ("meta.quality_scores",)
SERVED_META = ("meta.quality_scores", "meta.validations", "meta.quarantine", "meta.models",
               "meta.retention_purges")


def purged_batches(con: duckdb.DuckDBPyConnection) -> list[list[str]]:
    return [list(r) for r in con.execute(
        "SELECT DISTINCT source, batch_id, action FROM meta.retention_purges ORDER BY 1, 2, 3").fetchall()]


def content_version(con: duckdb.DuckDBPyConnection, qualified: str) -> str:
    """Row count and an order-independent hash of every row: equal versions, equal tables (to 64 bits)."""
    n, h = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0)::VARCHAR FROM {qualified} t").fetchall()[0]
    cols = con.execute(f"SELECT list(column_name || ' ' || column_type) FROM (DESCRIBE {qualified})").fetchall()[0][0]
    return digest(n, h, cols)


# --- the plan -------------------------------------------------------------------------------------------

@dataclass
class Plan:
    """What this transform does: `skip` (nothing changed), or build each model `full` or `incremental`."""

    mode: str                                   # skip | incremental | full
    reason: str
    fingerprint: str
    batches: list[list[str]]
    purges: list[list[str]]
    meta: str = ""                              # meta_inputs(MODEL_META)
    previous: dict[str, Any] | None = None
    new_batches: dict[str, list[str]] = field(default_factory=dict)   # source → batch ids to apply
    incremental: dict[str, dict] = field(default_factory=dict)        # qualified model → its yml spec
    parts: dict[str, str] = field(default_factory=dict)               # the fingerprint, part by part

    @property
    def input_key(self) -> str:
        return digest(self.fingerprint, self.batches, self.purges, self.meta)


def incremental_spec(model: SqlModel) -> dict | None:
    """The `incremental:` block of a core model's `.yml` (tenant models are always rebuilt in full)."""
    if model.tenant or not model.doc_path.exists():
        return None
    from pipelines.yamlsafe import load_yaml_file

    doc = load_yaml_file(model.doc_path) or {}
    spec = doc.get("incremental") if isinstance(doc, dict) else None
    return spec if isinstance(spec, dict) else None


def plan_transform(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, models: list[SqlModel],
                   pii_key: str) -> Plan:
    from pipelines.contracts import load_contracts
    from pipelines.warehouse import table_exists

    parts = fingerprint_parts(tenant, models, pii_key)
    fingerprint = digest(parts)
    batches, purges = promoted_batches(con), purged_batches(con)
    prev = read_state(con, "transform")
    plan = Plan("full", "", fingerprint, batches, purges, meta_inputs(con, MODEL_META), prev, parts=parts)
    if prev is None:
        plan.reason = "first build of this warehouse"
        return plan
    if prev.get("fingerprint") != fingerprint:
        moved = [FINGERPRINT_PARTS[k] for k in FINGERPRINT_PARTS if prev.get("parts", {}).get(k) != parts[k]]
        plan.reason = (f"{', '.join(moved) or 'what the build reads'} changed since the last build "
                       f"(run {prev['run_id']}): everything rebuilt")
        return plan
    before = {tuple(b) for b in prev.get("batches", [])}
    now_ = {tuple(b) for b in batches}
    new = sorted(now_ - before)
    new_purges = sorted({tuple(p) for p in purges} - {tuple(p) for p in prev.get("purges", [])})
    if not new and not new_purges:
        if prev.get("input_key") == plan.input_key:
            plan.mode = "skip"
            plan.reason = f"nothing promoted since the last build (run {prev['run_id']}) and nothing else changed"
            return plan
    if before - now_:
        plan.reason = f"{len(before - now_)} batch(es) built from are no longer promoted: everything rebuilt"
        return plan
    changed: dict[str, list[str]] = {}
    for source, batch_id, *_ in [*new, *new_purges]:
        changed.setdefault(source, [])
        if batch_id not in changed[source]:
            changed[source].append(batch_id)
    plan.mode, plan.new_batches = "incremental", changed
    plan.reason = (f"{len(new)} batch(es) promoted" + (f", {len(new_purges)} purged" if new_purges else "")
                   + f" since the last build (run {prev['run_id']})")
    # Which incremental models can follow the change (else: rebuilt in full this time).
    contracts = load_contracts()
    by_name = {s.name: s for s in tenant.sources}
    built_before = prev.get("tables", {})
    restricted_views: set[str] = set()
    for m in models:
        spec = incremental_spec(m)
        if not spec or m.qualified not in built_before or not table_exists(con, m.layer, m.name):
            continue
        if "contract" in spec:
            c = contracts.get(spec["contract"])
            feeding = [s for s in tenant.sources if s.contract == spec["contract"]]
            if c is None or not feeding or list(spec.get("unique_key", [])) != list(c.key):
                continue
            if not any(s.name in changed for s in feeding):
                continue  # none of its sources changed: kept as it is (unless what it reads changed)
            if any(by_name[s].write_disposition == "replace" for s in changed if s in by_name
                   and by_name[s].contract == spec["contract"]):
                continue  # a replacing batch drops rows: rebuilt in full
            keys = {}
            for s in feeding:
                cols = [s.mapping.get(k, k) if s.mapping else k for k in c.key]
                # a plain column name (any case: the ministry's `applicationNo`), not a mapping expression
                if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", col or "") for col in cols):
                    break
                keys[s.name] = cols
            else:
                plan.incremental[m.qualified] = {**spec, "_source_keys": keys,
                                                 "_sources": [s.name for s in feeding]}
                restricted_views |= {f"src_{s.name}" for s in feeding} | {f"contract_{c.name}"}
        elif "grain" in spec:
            plan.incremental[m.qualified] = spec
    # A restricted view must feed nothing else.
    for m in models:
        if m.qualified not in plan.incremental and m.sources & restricted_views:
            for q in [q for q, s in plan.incremental.items() if "contract" in s]:
                plan.incremental.pop(q)
    return plan


# --- applying the change --------------------------------------------------------------------------------

@dataclass
class Delta:
    """What a keyed model's incremental build changed: old and new rows (temp tables), and its as_of."""

    old: str
    new: str
    as_of_before: Any = None
    as_of_after: Any = None
    n_deleted: int = 0
    n_inserted: int = 0
    update: str | None = None         # the as_of UPDATE template applied after the rows were replaced
    key: list[str] = field(default_factory=list)   # the columns the rows were replaced by (key or grain)
    keys: str | None = None           # temp table of the values of `key` replaced
    rows: str | None = None           # temp table of the rows inserted for those values (after: the as_of UPDATE)

    @property
    def as_of_moved(self) -> bool:
        return self.as_of_before != self.as_of_after

    @property
    def empty(self) -> bool:
        return not self.n_deleted and not self.n_inserted and not self.as_of_moved


def keys_table(spec_model: str) -> str:
    return "_inc_keys_" + re.sub(r"\W", "_", spec_model)


def source_key_filters(con: duckdb.DuckDBPyConnection, plan: Plan) -> dict[str, str]:
    """Per source feeding a keyed incremental model: a WHERE condition keeping the rows of the changed keys.

    Fills the key tables from the batches to apply (new and purged); the condition reads the table lazily,
    so keys added later (rows depending on a moved `as_of`) are taken into account.
    """
    filters: dict[str, str] = {}
    for qualified, spec in plan.incremental.items():
        if "contract" not in spec:
            continue
        table = keys_table(qualified)
        key = list(spec["unique_key"])
        # typed like the key columns of a source with new batches (its raw table exists)
        first_source = next(s for s in spec["_source_keys"] if s in plan.new_batches)
        first = spec["_source_keys"][first_source]
        _x(con, f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT "
                + ", ".join(f'"{src}" AS "{k}"' for src, k in zip(first, key, strict=True))
                + f' FROM raw."{first_source}" LIMIT 0')
        for source, cols in spec["_source_keys"].items():
            batches = plan.new_batches.get(source)
            if not batches:
                continue
            placeholders = ", ".join("?" for _ in batches)
            _x(con, f"INSERT INTO {table} SELECT DISTINCT " + ", ".join(f'"{c}"' for c in cols)
                        + f' FROM raw."{source}" WHERE _batch_id IN ({placeholders}) AND '
               # a row without its key is quarantined (a contract key is required), never built
               + " AND ".join(f'"{c}" IS NOT NULL' for c in cols), batches)
        _x(con, f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT DISTINCT * FROM {table}")
        for source, cols in spec["_source_keys"].items():
            tuple_sql = "(" + ", ".join(f'"{source}"."{c}"' for c in cols) + ")"
            filters[source] = f"{tuple_sql} IN (SELECT ({', '.join(chr(34) + k + chr(34) for k in key)}) FROM {table})" \
                if len(cols) > 1 else f'"{source}"."{cols[0]}" IN (SELECT "{key[0]}" FROM {table})'
    return filters


def _extends_keys(spec: dict) -> bool:
    """A keyed spec whose moved `as_of` rebuilds rows by key (`as_of.rows` without `as_of.set`)."""
    as_of = spec.get("as_of") or {}
    return bool(as_of) and "set" not in as_of


def changed_raw_rows(con: duckdb.DuckDBPyConnection, plan: Plan, filters: dict[str, str]) -> dict[str, str]:
    """Copy once the raw rows (every batch) of the changed keys of each restricted source into a temp table the
    `src_` view reads instead of the raw table: the view is read several times (contract checks, `as_of`, the
    model), the raw table is scanned once. Not when a key set grows after the views are made (`_extends_keys`)."""
    growing = {source for spec in plan.incremental.values() if "contract" in spec and _extends_keys(spec)
               for source in spec["_source_keys"]}
    read_from = {}
    for source, condition in filters.items():
        if source in growing:
            continue
        name = "_inc_raw_" + re.sub(r"\W", "_", source)
        _x(con, f'CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM raw."{source}" AS "{source}" WHERE {condition}')
        read_from[source] = name
    return read_from


def _null_safe(a: str, b: str, cols: list[str]) -> str:
    return " AND ".join(f'{a}."{c}" IS NOT DISTINCT FROM {b}."{c}"' for c in cols)


def _in_keys(alias: str, key: list[str], keys: str) -> str:
    """The row's key is among the changed keys (a contract key is required: never NULL)."""
    if len(key) == 1:
        return f'({alias}."{key[0]}" IN (SELECT "{key[0]}" FROM {keys}))'
    return f"(EXISTS (SELECT 1 FROM {keys} k WHERE " + " AND ".join(f'k."{c}" = {alias}."{c}"' for c in key) + "))"


def apply_keyed(con: duckdb.DuckDBPyConnection, model: SqlModel, spec: dict) -> Delta:
    """Replace the rows of the changed keys of `model` (a keyed model) by its SQL over the restricted views."""
    key = list(spec["unique_key"])
    keys = keys_table(model.qualified)
    tag = re.sub(r"\W", "_", model.qualified)
    delta = Delta(old=f"_inc_old_{tag}", new=f"_inc_new_{tag}")
    as_of = spec.get("as_of")
    sql = model.sql
    if as_of:
        col, var = as_of["column"], as_of["variable"]
        delta.as_of_before = con.execute(f'SELECT max("{col}") FROM {model.qualified}').fetchall()[0][0]
        kept = con.execute(f"SELECT {as_of['table_value']} FROM {model.qualified} t "
                           f"WHERE NOT {_in_keys('t', key, keys)}").fetchall()[0][0]
        fresh = con.execute(f"SELECT {as_of['source_value']} FROM {as_of['source_view']}").fetchall()[0][0]
        values = [v for v in (kept, fresh) if v is not None]
        delta.as_of_after = max(values) if values else None
        if delta.as_of_moved and _extends_keys(spec):
            _x(con, f"INSERT INTO {keys} SELECT {', '.join(chr(34) + k + chr(34) for k in key)} "
                        f"FROM {model.qualified} t WHERE ({as_of['rows']}) AND NOT {_in_keys('t', key, keys)}")
        if delta.as_of_after is not None:
            _x(con, f"SET VARIABLE {var} = ?", [delta.as_of_after])
    try:
        _x(con, f"CREATE OR REPLACE TEMP TABLE {delta.new} AS\n{sql}")
        delta.rows = f"_inc_ins_{tag}"  # the rows inserted by key (the snapshot inserts them too)
        _x(con, f"CREATE OR REPLACE TEMP TABLE {delta.rows} AS SELECT * FROM {delta.new}")
    finally:
        if as_of:
            _x(con, f"RESET VARIABLE {as_of['variable']}")
    _x(con, f"CREATE OR REPLACE TEMP TABLE {delta.old} AS SELECT * FROM {model.qualified} t "
            f"WHERE {_in_keys('t', key, keys)}")
    delta.n_deleted = con.execute(f"DELETE FROM {model.qualified} t WHERE {_in_keys('t', key, keys)}"
                                  ).fetchall()[0][0]
    delta.n_inserted = con.execute(f"INSERT INTO {model.qualified} BY NAME SELECT * FROM {delta.new}").fetchall()[0][0]
    if as_of and delta.as_of_moved:
        if _extends_keys(spec):
            lit = _literal(con, delta.as_of_after)
            delta.update = (f'UPDATE {{table}} SET "{as_of["column"]}" = {lit} '
                            f'WHERE "{as_of["column"]}" IS DISTINCT FROM {lit}')
            _x(con, delta.update.format(table=model.qualified))
        else:
            # The columns depending on as_of are updated in place. The rows whose values move with it
            # (`as_of.rows`) are passed on as changed (old and new versions) to the marts built from this one.
            moved = f"_inc_moved_{tag}"
            _x(con, f"CREATE OR REPLACE TEMP TABLE {moved} AS SELECT * FROM {model.qualified} t "
                    f"WHERE ({as_of['rows']}) AND NOT {_in_keys('t', key, keys)}")
            _x(con, f"INSERT INTO {delta.old} BY NAME SELECT * FROM {moved}")
            sets = _as_of_sets(as_of, _literal(con, delta.as_of_after))
            delta.update = as_of_update(as_of, delta.as_of_after, con)
            _x(con, delta.update.format(table=model.qualified))
            # their new versions: the same expressions over the old ones (no second pass over the table)
            _x(con, f"INSERT INTO {delta.new} BY NAME SELECT * REPLACE ("
                    + ", ".join(f'{expr} AS "{c}"' for c, expr in sets) + f") FROM {moved}")
            _x(con, f"DROP TABLE {moved}")
    delta.key = key
    delta.keys = keys
    return delta


def _as_of_sets(as_of: dict, lit: str) -> list[tuple[str, str]]:
    return [(as_of["column"], lit)] + [(c, f"({expr.replace('{as_of}', lit)})") for c, expr in as_of["set"].items()]


def _literal(con: duckdb.DuckDBPyConnection, value: Any) -> str:
    """A value as an SQL literal of its DuckDB type (a date, a timestamp, a number)."""
    if value is None:
        return "NULL"
    typ = con.execute("SELECT typeof(?)", [value]).fetchall()[0][0]
    text = str(value)
    if "'" in text or "\\" in text:
        raise ValueError(f"as_of value {text!r} cannot be written as a literal")
    return f"CAST('{text}' AS {typ})"


def as_of_update(as_of: dict, value: Any, con: duckdb.DuckDBPyConnection) -> str:
    """The UPDATE (a template on `{table}`) that moves a keyed model's `as_of` column and the columns computed
    from it (`as_of.set`: column → expression, `{as_of}` its new value) to `value`, for every row not there yet.
    Replayed as it is on the snapshot's copy of the table (`apply_snapshot_deltas`)."""
    lit = _literal(con, value)
    col, *computed = _as_of_sets(as_of, lit)
    moving = f'({as_of["rows"]}) AND "{col[0]}" IS DISTINCT FROM {lit}'
    # two statements: the computed columns move only in `as_of.rows` (a few rows), the column itself in all
    sql = ("UPDATE \0 SET " + ", ".join(f'"{c}" = {expr}' for c, expr in computed) + f" WHERE {moving};\n"
           if computed else "")
    sql += f'UPDATE \0 SET "{col[0]}" = {col[1]} WHERE "{col[0]}" IS DISTINCT FROM {lit}'
    return sql.replace("{", "{{").replace("}", "}}").replace("\0", "{table}")



def _exists_in(table: str, alias: str, grain: list[str]) -> str:
    return f"EXISTS (SELECT 1 FROM {table} a WHERE {_null_safe('a', alias, grain)})"


def _as_of_extra(spec: dict, delta: Delta) -> tuple[str, str]:
    """The groups (a condition on `{alias}`) and upstream rows (on `u`) a moved as_of reaches, or ('', '')."""
    as_of = spec.get("as_of")
    if not (as_of and delta.as_of_moved):
        return "", ""
    # e.g. the last weeks of a backlog: `{as_of_min}` is the earlier of the two values
    low = min(v for v in (delta.as_of_before, delta.as_of_after) if v is not None)
    return (as_of["groups"].replace("{as_of_min}", f"DATE '{low}'"),
            as_of["rows"].replace("{as_of_min}", f"DATE '{low}'"))


def _over(model: SqlModel, upstream: str, table: str) -> str:
    """The model's SQL reading `table` instead of `upstream`."""
    return re.sub(rf"\b{re.escape(upstream)}\b", table, model.sql)


def _upstream_rows(con: duckdb.DuckDBPyConnection, model: SqlModel, upstream: str, name: str, where: str) -> None:
    """Temp table `name`: the upstream rows (`u`) matching `where`, with only the columns the model's SQL names
    (a large share of a wide table can match); all of them if the model then gives other columns than its table."""
    from pipelines.warehouse import _without_comments

    sql = _without_comments(model.sql)
    every = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {upstream})").fetchall()]
    # a superset of the columns it reads: every name found as a word (identifiers are case-insensitive); a
    # binding error would abort the transaction, so only plain names are pruned
    cols = [c for c in every if re.search(rf"\b{c}\b", sql, re.IGNORECASE)]
    if cols and len(cols) < len(every) and all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c) for c in every):
        _x(con, f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT " + ", ".join(f'u."{c}"' for c in cols)
                + f" FROM {upstream} u WHERE {where}")
        if (con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {_over(model, upstream, name)})").fetchall()
                == con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {model.qualified})").fetchall()):
            return
    _x(con, f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {upstream} u WHERE {where}")


def _replaced(con: duckdb.DuckDBPyConnection, model: SqlModel, grain: list[str], tag: str, touched,
              change) -> Delta:
    """Run `change()` (which deletes and inserts rows of the groups `touched(alias)` selects) and return what it
    replaced: the rows of those groups before and after, and the groups themselves (for the marts built from
    this one and for the snapshot)."""
    delta = Delta(old=f"_inc_old_{tag}", new=f"_inc_new_{tag}", key=grain, keys=f"_inc_grp_{tag}")
    delta.rows = delta.new
    _x(con, f"CREATE OR REPLACE TEMP TABLE {delta.old} AS SELECT * FROM {model.qualified} m WHERE {touched('m')}")
    change()
    _x(con, f"CREATE OR REPLACE TEMP TABLE {delta.new} AS SELECT * FROM {model.qualified} m WHERE {touched('m')}")
    cols = ", ".join(f'"{c}"' for c in grain)
    _x(con, f"CREATE OR REPLACE TEMP TABLE {delta.keys} AS SELECT DISTINCT {cols} FROM "
            f"(SELECT {cols} FROM {delta.old} UNION ALL SELECT {cols} FROM {delta.new})")
    delta.n_deleted = con.execute(f"SELECT count(*) FROM {delta.old}").fetchall()[0][0]
    delta.n_inserted = con.execute(f"SELECT count(*) FROM {delta.new}").fetchall()[0][0]
    return delta


def apply_grouped(con: duckdb.DuckDBPyConnection, model: SqlModel, spec: dict, delta: Delta,
                  upstream: str) -> Delta:
    """Recompute the groups of `model` that the changed rows of `upstream` fall in."""
    grain = list(spec["grain"])
    tag = re.sub(r"\W", "_", model.qualified)
    changed = f"(SELECT * FROM {delta.old} UNION ALL BY NAME SELECT * FROM {delta.new})"
    affected, rows = f"_inc_aff_{tag}", f"_inc_rows_{tag}"
    fmt = {"changed": changed, "affected": affected, "upstream": upstream}
    _x(con, f"CREATE OR REPLACE TEMP TABLE {affected} AS SELECT DISTINCT * FROM ("
                + spec["groups"].format(**fmt) + ")")
    extra_groups, extra_rows = _as_of_extra(spec, delta)
    # a superset of the upstream rows contributing to the affected groups (`rows`: a condition on `u`)
    _upstream_rows(con, model, upstream, rows,
                   "(" + spec["rows"].format(**fmt) + ")" + (f" OR ({extra_rows})" if extra_rows else ""))

    def cond(alias: str) -> str:
        return (f"({_exists_in(affected, alias, grain)}"
                + (" OR (" + extra_groups.replace("{alias}", alias) + ")" if extra_groups else "") + ")")

    def change() -> None:
        _x(con, f"DELETE FROM {model.qualified} m WHERE {cond('m')}")
        _x(con, f"INSERT INTO {model.qualified} BY NAME SELECT * FROM ({_over(model, upstream, rows)}) o "
                f"WHERE {cond('o')}")

    out = _replaced(con, model, grain, tag, cond, change)
    drop_temp(con, [affected, rows])
    return out


def apply_additive(con: duckdb.DuckDBPyConnection, model: SqlModel, spec: dict, delta: Delta,
                   upstream: str) -> Delta:
    """Maintain a mart whose measures are sums over the upstream rows (`additive`: those columns) from the
    changed rows alone: the model's SQL over the new versions minus the same over the old versions, added to
    the groups it reaches; a group left without rows (`exists` false) is deleted, a new one inserted. The other
    columns are functions of the group (kept, or taken from the new versions). A moved as_of (`as_of`, as for a
    grouped model) recomputes the groups it reaches from the upstream rows it names."""
    grain, measures = list(spec["grain"]), list(spec["additive"])
    tag = re.sub(r"\W", "_", model.qualified)
    part_new, part_old, sums = f"_inc_pnew_{tag}", f"_inc_pold_{tag}", f"_inc_sum_{tag}"
    _x(con, f"CREATE OR REPLACE TEMP TABLE {part_new} AS {_over(model, upstream, delta.new)}")
    _x(con, f"CREATE OR REPLACE TEMP TABLE {part_old} AS {_over(model, upstream, delta.old)}")
    g = ", ".join(f'"{c}"' for c in grain)
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {model.qualified})").fetchall())
    others = [c for c in types if c not in grain and c not in measures]
    _x(con, f"CREATE OR REPLACE TEMP TABLE {sums} AS SELECT {g}, "
            + ", ".join(f'sum("{m}") AS "{m}"' for m in measures)
            + f" FROM (SELECT {g}, " + ", ".join(f'"{m}"' for m in measures) + f" FROM {part_new} UNION ALL "
            + f"SELECT {g}, " + ", ".join(f'-"{m}"' for m in measures) + f" FROM {part_old}) GROUP BY ALL "
            + "HAVING " + " OR ".join(f'sum("{m}") <> 0' for m in measures))
    extra_groups, extra_rows = _as_of_extra(spec, delta)

    def touched(alias: str) -> str:
        return (f"({_exists_in(sums, alias, grain)}"
                + (" OR (" + extra_groups.replace("{alias}", alias) + ")" if extra_groups else "") + ")")

    def change() -> None:
        merged = f"_inc_merged_{tag}"
        _x(con, f"CREATE OR REPLACE TEMP TABLE {merged} AS SELECT "
                + ", ".join(f'd."{c}"' for c in grain) + ", "
                + ", ".join(f'CAST(coalesce(o."{m}", 0) + d."{m}" AS {types[m]}) AS "{m}"' for m in measures)
                + "".join(f', coalesce(o."{c}", n."{c}") AS "{c}"' for c in others)
                + f" FROM {sums} d LEFT JOIN {model.qualified} o ON {_null_safe('d', 'o', grain)}"
                + f" LEFT JOIN {part_new} n ON {_null_safe('d', 'n', grain)}")
        _x(con, f"DELETE FROM {model.qualified} m WHERE {_exists_in(sums, 'm', grain)}")
        _x(con, f"INSERT INTO {model.qualified} BY NAME SELECT * FROM {merged} WHERE {spec['exists']}")
        _x(con, f"DROP TABLE {merged}")
        if extra_groups:
            rows = f"_inc_rows_{tag}"
            _upstream_rows(con, model, upstream, rows, extra_rows)
            cond = "(" + extra_groups.replace("{alias}", "{a}") + ")"
            _x(con, f"DELETE FROM {model.qualified} m WHERE {cond.format(a='m')}")
            _x(con, f"INSERT INTO {model.qualified} BY NAME SELECT * FROM ({_over(model, upstream, rows)}) o "
                    f"WHERE {cond.format(a='o')}")
            _x(con, f"DROP TABLE {rows}")

    out = _replaced(con, model, grain, tag, touched, change)
    drop_temp(con, [part_new, part_old, sums])
    return out


# --- the change, kept for the snapshot ------------------------------------------------------------------
# An incremental build records, per table it changed from the change, the keys (or groups) whose rows it
# replaced and the as_of UPDATE it ran, in schema `delta` of the warehouse (never published). `publish`
# brings the snapshot's copy of the table from the version it holds to the warehouse's by replaying the
# chain of those records (delete the keys, insert their rows, run the last UPDATE) instead of rewriting it.

DELTA_SCHEMA = "delta"


def record_delta(con: duckdb.DuckDBPyConnection, table: str, from_version: str, to_version: str, delta: Delta,
                 run_id: str) -> None:
    _x(con, f"CREATE SCHEMA IF NOT EXISTS {DELTA_SCHEMA}")
    _x(con, f"CREATE TABLE IF NOT EXISTS {DELTA_SCHEMA}.log (table_name VARCHAR, from_version VARCHAR, "
            "to_version VARCHAR, key_columns VARCHAR[], keys_table VARCHAR, rows_table VARCHAR, update_sql VARCHAR, "
            "run_id VARCHAR, n_keys BIGINT)")
    name = "k_" + digest(table, to_version)
    cols = ", ".join(f'"{c}"' for c in delta.key)
    n = con.execute(f"CREATE OR REPLACE TABLE {DELTA_SCHEMA}.{name} AS SELECT DISTINCT {cols} FROM {delta.keys}"
                    ).fetchall()[0][0]
    rows = None
    if delta.rows:
        rows = "r_" + digest(table, to_version)
        _x(con, f"CREATE OR REPLACE TABLE {DELTA_SCHEMA}.{rows} AS SELECT * FROM {delta.rows}")
    _x(con, f"INSERT INTO {DELTA_SCHEMA}.log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
       [table, from_version, to_version, list(delta.key), name, rows, delta.update, run_id, n])


def forget_deltas(con: duckdb.DuckDBPyConnection, table: str | None = None) -> None:
    """Drop the recorded changes of `table` (all of them when None): its snapshot copy will be rewritten."""
    from pipelines.warehouse import table_exists

    if not table_exists(con, DELTA_SCHEMA, "log"):
        return
    if table is None:
        _x(con, f"DROP SCHEMA {DELTA_SCHEMA} CASCADE")
        return
    for names in con.execute(f"SELECT keys_table, rows_table FROM {DELTA_SCHEMA}.log WHERE table_name = ?",
                             [table]).fetchall():
        for name in filter(None, names):
            _x(con, f"DROP TABLE IF EXISTS {DELTA_SCHEMA}.{name}")
    _x(con, f"DELETE FROM {DELTA_SCHEMA}.log WHERE table_name = ?", [table])


def delta_chain(con: duckdb.DuckDBPyConnection, table: str, from_version: str, to_version: str) -> list[tuple] | None:
    """The recorded changes leading `table` from `from_version` to `to_version`, in order; None if there is no
    such chain (a full rebuild in between, or records already dropped)."""
    from pipelines.warehouse import table_exists

    if from_version == to_version or not table_exists(con, DELTA_SCHEMA, "log"):
        return None
    rows = con.execute(f"SELECT from_version, to_version, key_columns, keys_table, update_sql, rows_table "
                       f"FROM {DELTA_SCHEMA}.log WHERE table_name = ?", [table]).fetchall()
    by_from = {r[0]: r for r in rows}
    chain, v = [], from_version
    while v != to_version:
        step = by_from.get(v)
        if step is None or len(chain) > len(rows):
            return None
        chain.append(step)
        v = step[1]
    if len({tuple(step[2]) for step in chain}) != 1:
        return None
    return chain


def apply_delta_chain(con: duckdb.DuckDBPyConnection, source: str, target: str, chain: list[tuple]) -> None:
    """Bring `target` (the snapshot's copy) to `source`'s version: delete the rows of every key the chain
    replaced, insert `source`'s rows of those keys (the recorded rows when the chain is one build long), then
    run the chain's last as_of UPDATE."""
    key = list(chain[0][2])
    cols = ", ".join(f'"{c}"' for c in key)
    keys = "_pub_keys"
    _x(con, f"CREATE OR REPLACE TEMP TABLE {keys} AS SELECT DISTINCT {cols} FROM ("
            + " UNION ALL ".join(f"SELECT {cols} FROM {DELTA_SCHEMA}.{step[3]}" for step in chain) + ")")
    _x(con, f"DELETE FROM {target} t WHERE {_exists_in(keys, 't', key)}")
    if len(chain) == 1 and chain[0][5]:
        _x(con, f"INSERT INTO {target} BY NAME SELECT * FROM {DELTA_SCHEMA}.{chain[0][5]}")
    else:
        _x(con, f"INSERT INTO {target} BY NAME SELECT * FROM {source} t WHERE {_exists_in(keys, 't', key)}")
    updates = [step[4] for step in chain if step[4]]
    if updates:
        _x(con, updates[-1].format(table=target))
    _x(con, f"DROP TABLE {keys}")


def drop_temp(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    for name in names:
        _x(con, f"DROP TABLE IF EXISTS {name}")


# --- the build loop -------------------------------------------------------------------------------------

@dataclass
class Outcome:
    mode: str = "full"                                   # full | incremental (at least one model followed)
    built: dict[str, int] = field(default_factory=dict)  # table → rows
    skipped: set[str] = field(default_factory=set)       # models whose sources this tenant lacks
    versions: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)     # tables whose version moved
    incremental: dict[str, str] = field(default_factory=dict)  # table → what was replaced, in words

    def state(self, plan: Plan) -> dict[str, Any]:
        return {"fingerprint": plan.fingerprint, "parts": plan.parts, "batches": plan.batches,
                "purges": plan.purges, "tables": self.versions}


def _reads_meta(model: SqlModel) -> bool:
    """A model reading `meta.*` or `raw.*` directly (e.g. quality scores) changes with every run: always rebuilt."""
    from pipelines.warehouse import _without_comments

    return bool(re.search(r"\b(meta|raw)\.[a-z_]", _without_comments(model.sql)))


_REFERENCE = re.compile(r"\b(ref|seed)_[a-z]")


def _reads_reference(model: SqlModel) -> bool:
    """A model reading the reference tables (`ref_*`, `seed_*`), registered only when such a model is built;
    a tenant's own model may read anything."""
    from pipelines.warehouse import _without_comments

    return bool(model.tenant) or bool(_REFERENCE.search(_without_comments(model.sql)))


def build_models(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, models: list[SqlModel], plan: Plan,
                 run_id: str, source_views, contract_views, build_model) -> Outcome:
    """Build every model in dependency order, each in full or from the change (see the module docstring).

    `source_views`, `contract_views`, `build_model` are the transform step's own functions
    (`pipelines.steps`), passed in so that both paths build views and models the same way.
    """
    from pipelines.reference.register import register_reference
    from pipelines.tenant_models import check_built_columns
    from pipelines.warehouse import table_exists

    out = Outcome()
    filters = source_key_filters(con, plan)
    read_from = changed_raw_rows(con, plan, filters)
    names = source_views(con, tenant, restrict=filters, read_from=read_from, reference=False)
    referenced = False
    feeding: dict[str, set[str]] = {}  # contract → the sources (with raw data) feeding it
    for s in tenant.sources:
        if s.contract and s.name in names:
            feeding.setdefault(s.contract, set()).add(s.name)
    changed_sources = set(plan.new_batches) if plan.mode == "incremental" else set(names)
    # Contract views are checked (every value converts) when built: only those the change reaches now, the
    # others when a model that reads them has to be rebuilt.
    touched = {c for c, srcs in feeding.items() if srcs & changed_sources}
    contracts = set(contract_views(con, tenant, set().union(*(feeding[c] for c in touched)))) if touched else set()
    available = {f"src_{s}" for s in names} | {f"contract_{c}" for c in feeding}

    def ensure_contracts(model: SqlModel) -> None:
        for c in {v[len("contract_"):] for v in model.sources if v.startswith("contract_")} - contracts:
            contracts.update(contract_views(con, tenant, feeding[c]))

    def behind(view: str) -> set[str]:
        return feeding.get(view[len("contract_"):], set()) if view.startswith("contract_") else {view[len("src_"):]}
    restricted = set(filters)
    restricted_views = {f"src_{s}" for s in restricted} | {
        f"contract_{s.contract}" for s in tenant.sources if s.name in restricted and s.contract}
    prev = (plan.previous or {}).get("tables", {})
    if plan.mode != "incremental":
        forget_deltas(con)  # every table rebuilt: the snapshot's copies are rewritten
    deltas: dict[str, Delta] = {}
    temps: list[str] = [keys_table(q) for q, s in plan.incremental.items() if "contract" in s] + list(read_from.values())
    for model in models:
        q = model.qualified
        started = time.perf_counter()
        if model.sources - available or model.refs & out.skipped:
            out.skipped.add(q)
            continue
        spec = plan.incremental.get(q)
        others_same = all(out.versions.get(r) == prev.get(r) for r in model.refs - deltas.keys())
        version = None
        delta = None
        if spec and "contract" in spec and others_same and restricted:
            ensure_contracts(model)
            delta = apply_keyed(con, model, spec)
            out.incremental[q] = (f"{delta.n_deleted:,} row(s) replaced by {delta.n_inserted:,} for the changed keys"
                                  + (f"; as of {delta.as_of_before} → {delta.as_of_after}" if delta.as_of_moved
                                     else ""))
            version = prev[q] if delta.empty else digest(prev[q], plan.input_key)
        elif spec and "grain" in spec and others_same and len(model.refs & deltas.keys()) == 1:
            upstream = next(iter(model.refs & deltas.keys()))
            apply = apply_additive if "additive" in spec else apply_grouped
            delta = apply(con, model, spec, deltas[upstream], upstream)
            out.incremental[q] = (f"{delta.n_deleted:,} row(s) replaced by {delta.n_inserted:,} in the groups "
                                  "the change reaches" + (" (sums of the changed rows)" if "additive" in spec else ""))
            delta.as_of_before, delta.as_of_after = deltas[upstream].as_of_before, deltas[upstream].as_of_after
            unchanged = not delta.n_deleted and not delta.n_inserted
            version = prev[q] if unchanged and not deltas[upstream].as_of_moved else digest(prev[q], plan.input_key)
        elif (plan.mode == "incremental" and q in prev and not _reads_meta(model)
              and table_exists(con, model.layer, model.name)
              and not any(behind(v) & changed_sources for v in model.sources)
              and all(out.versions.get(r) == prev.get(r) for r in model.refs)):
            version = prev[q]  # nothing it reads has changed: kept as it is
        else:
            ensure_contracts(model)
            if restricted and (model.sources & restricted_views):
                # a full build of a model reading a restricted view: the views over every row again
                names_again = source_views(con, tenant, only=restricted, reference=False)
                contract_views(con, tenant, names_again)
                restricted.clear()
            if not referenced and _reads_reference(model):
                register_reference(con, tenant)
                referenced = True
            build_model(con, model)
            if model.tenant and (mismatch := check_built_columns(con, model)):
                from pipelines.errors import ConfigError

                raise ConfigError(mismatch)  # rolls the whole transform back: a tenant table ships documented
        if delta is not None:
            deltas[q] = delta
            temps += [delta.old, delta.new] + [t for t in (delta.keys, delta.rows)
                                               if t and t.startswith(("_inc_grp", "_inc_ins"))]
        if version is None:
            version = content_version(con, q)
        else:
            out.mode = "incremental"
        out.versions[q] = version
        if prev.get(q) != version:
            out.changed.append(q)
            if delta is not None and q in prev:
                record_delta(con, q, prev[q], version, delta, run_id)
            elif plan.mode == "incremental":
                forget_deltas(con, q)
        out.built[q] = con.execute(f"SELECT count(*) FROM {q}").fetchall()[0][0]
        log.info("built %s: %s rows in %.1f s%s", q, f"{out.built[q]:,}", time.perf_counter() - started,
                 f" ({out.incremental[q]})" if q in out.incremental else "")
    drop_temp(con, temps)
    return out


# --- train and publish ----------------------------------------------------------------------------------

def train_key(con: duckdb.DuckDBPyConnection, tenant: TenantConfig) -> str | None:
    """What `train` reads: the tables as the last transform left them, the models' code and the config."""
    built = read_state(con, "transform")
    if built is None:
        return None  # a warehouse without a recorded build (never transformed here): always train
    return digest(built.get("tables", {}), models_fingerprint(tenant))


def publish_inputs(con: duckdb.DuckDBPyConnection) -> tuple[str | None, dict[str, str]]:
    """The build key a snapshot of the warehouse as it is now carries, and the table versions transform knows."""
    built, trained = read_state(con, "transform"), read_state(con, "train")
    if built is None:
        return None, {}
    versions = dict(built.get("tables", {}))
    # the build's fingerprint too: a documentation-only change rebuilds identical tables but a new dictionary
    return digest(versions, trained and (trained["run_id"], trained["input_key"]), built.get("fingerprint"),
                  meta_inputs(con, SERVED_META)), versions
