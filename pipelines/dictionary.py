"""The data dictionary: every table and column of the serving snapshot (`staging`, `marts`, `meta`), from the
warehouse itself and the YAML documentation beside each model, and the shared data contracts.

Where the docs live:
- core SQL models: `warehouse/<layer>/<name>.yml` beside each `.sql`;
- tables the models step writes (`models/*.py`): docs-only `warehouse/marts/<name>.yml` with `written_by:`;
- meta tables: `warehouse/meta/<name>.yml`;
- a tenant's own models: `tenants/<tenant>/warehouse/<layer>/<name>.yml` (`pipelines.tenant_models`);
- shared contracts: `warehouse/contracts/<name>.yml`, written to `meta.data_contracts` with the sources
  of the tenant feeding each.

`transform` writes `meta.data_dictionary` and `meta.data_contracts`; `publish` writes the dictionary again
into the snapshot itself, so it covers what the models step wrote and `meta.snapshot` too. `tonghop
dictionary --tenant T` renders it from the serving snapshot as Markdown and HTML into
`<tenant data folder>/docs/`. A table or column without a description shows up in `undocumented()`; a test
fails on any.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.settings import WAREHOUSE_SQL_DIR

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig

MODEL_LAYERS = ("staging", "marts")
DOCUMENTED_LAYERS = ("staging", "marts", "meta")
TABLE = "meta.data_dictionary"
CONTRACTS_TABLE = "meta.data_contracts"


@cache
def _docs_cached(root: str, layers: tuple[str, ...], stamp: tuple) -> dict[str, dict[str, Any]]:
    from pipelines.yamlsafe import load_yaml_file

    docs = {}
    for layer in layers:
        for path in sorted((Path(root) / layer).glob("*.yml")):
            doc = load_yaml_file(path)
            docs[f"{layer}.{path.stem}"] = doc if isinstance(doc, dict) else {}
    return docs


def _stamp(root: Path, layers: tuple[str, ...]) -> tuple:
    return tuple((str(p), p.stat().st_mtime_ns) for layer in layers for p in sorted((root / layer).glob("*.yml")))


def model_docs(root: Path = WAREHOUSE_SQL_DIR, tenant: TenantConfig | str | None = None,
               layers: tuple[str, ...] = MODEL_LAYERS) -> dict[str, dict[str, Any]]:
    """'staging.ho_so' -> its parsed YAML (description vi/en, grain, owner, columns): the core models' and
    model outputs' docs of `root`, and given a tenant, its own models' docs (a tenant never overrides a core
    doc: a clash is a configuration error)."""
    docs = dict(_docs_cached(str(root), layers, _stamp(root, layers)))
    if tenant is not None:
        from pipelines.tenant_models import models_dir

        tenant_id = tenant if isinstance(tenant, str) else tenant.tenant_id
        own = models_dir(tenant_id)
        layers_own = tuple(layer for layer in layers if layer in MODEL_LAYERS)
        if own.is_dir():
            for name, doc in _docs_cached(str(own), layers_own, _stamp(own, layers_own)).items():
                docs.setdefault(name, {**doc, "_tenant": tenant_id})
    return docs


def all_docs(tenant: TenantConfig | str | None = None) -> dict[str, dict[str, Any]]:
    """Docs of every table the snapshot may hold: models (core and tenant), model outputs and meta tables."""
    return model_docs(tenant=tenant, layers=DOCUMENTED_LAYERS)


def _description(doc: dict, lang: str) -> str:
    d = doc.get("description") or {}
    return (d.get(lang) if isinstance(d, dict) else d) or ""


def _column_docs(doc: dict) -> dict[str, str]:
    return {str(c["name"]): str(c.get("description") or "").strip()
            for c in doc.get("columns") or [] if isinstance(c, dict) and c.get("name")}


def _origin(schema: str, doc: dict) -> str:
    if schema == "meta":
        return "meta"
    if doc.get("_tenant"):
        return "tenant"
    return "model" if doc.get("written_by") else "core"


def dictionary_rows(con: duckdb.DuckDBPyConnection, tenant: TenantConfig | str | None = None,
                    catalog: str | None = None) -> list[tuple]:
    """One row per column of every staging/marts/meta table of `con` (or of its attached `catalog`), joined
    with its documentation."""
    docs = all_docs(tenant)
    where_catalog = "table_catalog = ?" if catalog else "table_catalog = current_database()"
    columns = con.execute(
        "SELECT table_schema, table_name, column_name, data_type, ordinal_position FROM information_schema.columns "
        f"WHERE table_schema IN {DOCUMENTED_LAYERS} AND {where_catalog} ORDER BY 1, 2, 5",
        [catalog] if catalog else []).fetchall()
    rows = []
    for schema, table, column, data_type, position in columns:
        doc = docs.get(f"{schema}.{table}", {})
        rows.append((schema, table, column, data_type, position, _description(doc, "vi"), _description(doc, "en"),
                     doc.get("grain") or "", doc.get("owner") or "", _column_docs(doc).get(column, ""),
                     _origin(schema, doc)))
    return rows


_DDL = """CREATE OR REPLACE TABLE {table} (
    table_schema VARCHAR, table_name VARCHAR, column_name VARCHAR, data_type VARCHAR, position INTEGER,
    table_description_vi VARCHAR, table_description_en VARCHAR, grain VARCHAR, owner VARCHAR,
    column_description VARCHAR, model_source VARCHAR)"""
_CONTRACTS_DDL = """CREATE OR REPLACE TABLE {table} (
    contract VARCHAR, version VARCHAR, column_name VARCHAR, data_type VARCHAR, is_required BOOLEAN,
    personal VARCHAR, allowed_values VARCHAR, description_vi VARCHAR, description_en VARCHAR, fed_by VARCHAR[])"""


def write_dictionary_table(con: duckdb.DuckDBPyConnection, tenant: TenantConfig | None = None,
                           catalog: str | None = None) -> int:
    """(Re)write `meta.data_dictionary` (and `meta.data_contracts`) from the tables as they are now, in `con`'s
    database or its attached `catalog`; returns the documented columns."""
    prefix = f"{catalog}." if catalog else ""
    # Both tables first, so the dictionary describes them too.
    con.execute(_CONTRACTS_DDL.format(table=prefix + CONTRACTS_TABLE))
    contract_rows = contract_dictionary_rows(tenant)
    insert_rows(con, prefix + CONTRACTS_TABLE, contract_rows)
    con.execute(_DDL.format(table=prefix + TABLE))
    rows = dictionary_rows(con, tenant, catalog)
    insert_rows(con, prefix + TABLE, rows)
    return sum(1 for r in rows if r[9])


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple], chunk: int = 500) -> None:
    """Rows inserted a few hundred per statement (`executemany` runs one statement per row: seconds for the
    dictionary's few hundred rows on a loaded machine)."""
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        one = "(" + ", ".join("?" for _ in part[0]) + ")"
        con.execute(f"INSERT INTO {table} VALUES " + ", ".join(one for _ in part), [v for r in part for v in r])


def contract_dictionary_rows(tenant: TenantConfig | None = None) -> list[tuple]:
    """`describe_contracts()` rows, each with the tenant's sources feeding its contract."""
    from pipelines.contracts import describe_contracts

    fed: dict[str, list[str]] = {}
    for source in tenant.sources if tenant is not None else ():
        if source.contract:
            fed.setdefault(source.contract, []).append(source.name)
    return [(c, str(v), col, typ, bool(req), pers, allowed, vi, en, fed.get(c, []))
            for c, v, col, typ, req, pers, allowed, vi, en in describe_contracts()]


def undocumented(con: duckdb.DuckDBPyConnection, tenant: TenantConfig | str | None = None) -> list[str]:
    """'staging.ho_so.ma_xa' for every column (or 'staging.x' table) lacking a description."""
    missing = []
    for schema, table, column, _type, _pos, table_vi, table_en, _grain, _owner, column_doc, _src in \
            dictionary_rows(con, tenant):
        if not (table_vi and table_en):
            missing.append(f"{schema}.{table}")
        if not column_doc:
            missing.append(f"{schema}.{table}.{column}")
    return sorted(set(missing))


def write_dictionary(tenant: TenantConfig) -> list[Path]:
    """Render `meta.data_dictionary` of the serving snapshot to `docs/data-dictionary.md` and `.html`."""
    import duckdb

    from pipelines.errors import TonghopError
    from pipelines.settings import TenantPaths

    paths = TenantPaths.for_tenant(tenant.tenant_id, tenant.data_dir)
    if not paths.snapshot.exists():
        raise TonghopError(f"no serving snapshot at {paths.snapshot} yet — run the pipeline first "
                           f"(tonghop run --tenant {tenant.tenant_id})")
    con = duckdb.connect(str(paths.snapshot), read_only=True)
    try:
        rows = con.execute(f"SELECT * FROM {TABLE} ORDER BY table_schema, table_name, position").fetchall()
        has_contracts = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'meta' "
                                    "AND table_name = 'data_contracts'").fetchone()[0]
        contracts = con.execute(f"SELECT * FROM {CONTRACTS_TABLE} ORDER BY contract").fetchall() \
            if has_contracts else []
    finally:
        con.close()
    out = paths.root / "docs"
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "data-dictionary.md", out / "data-dictionary.html"
    md.write_text(_markdown(tenant.display_name, rows, contracts), encoding="utf-8")
    page.write_text(_html(tenant.display_name, rows, contracts), encoding="utf-8")
    return [md, page]


def _tables(rows: list[tuple]) -> dict[str, list[tuple]]:
    grouped: dict[str, list[tuple]] = {}
    for r in rows:
        grouped.setdefault(f"{r[0]}.{r[1]}", []).append(r)
    return grouped


def _contracts(rows: list[tuple]) -> dict[str, list[tuple]]:
    grouped: dict[str, list[tuple]] = {}
    for r in rows:
        grouped.setdefault(r[0], []).append(r)
    return grouped


def _markdown(title: str, rows: list[tuple], contracts: list[tuple] = ()) -> str:
    lines = [f"# Từ điển dữ liệu — {title} / Data dictionary", ""]
    for name, cols in _tables(rows).items():
        first = cols[0]
        lines += [f"## `{name}`", "", first[5], "", f"*{first[6]}*", "",
                  f"Grain: {first[7]} · Owner: {first[8]}", "", "| column | type | description |", "|---|---|---|"]
        lines += [f"| `{c[2]}` | {c[3]} | {c[9].replace('|', '/')} |" for c in cols]
        lines.append("")
    if contracts:
        lines += ["# Hợp đồng dữ liệu chung / Shared data contracts", "",
                  "Bảng mọi đơn vị báo cáo cùng một dạng (warehouse/contracts/) — the tables every unit reports in "
                  "one shape.", ""]
    for name, cols in _contracts(contracts).items():
        fed = ", ".join(cols[0][9] or []) or "—"
        lines += [f"### contract `{name}` (v{cols[0][1]})", "", f"Nguồn cung cấp / fed by: {fed}", "",
                  "| column | type | required | personal | allowed | description |", "|---|---|---|---|---|---|"]
        lines += [f"| `{c[2]}` | {c[3]} | {'✔' if c[4] else ''} | {c[5]} | {c[6].replace('|', '/')} | "
                  f"{c[7].replace('|', '/')} — {c[8].replace('|', '/')} |" for c in cols]
        lines.append("")
    return "\n".join(lines)


def _html(title: str, rows: list[tuple], contracts: list[tuple] = ()) -> str:
    e = html.escape
    parts = [f"<!doctype html><html lang='vi'><meta charset='utf-8'><title>Từ điển dữ liệu — {e(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}</style>",
             f"<h1>Từ điển dữ liệu — {e(title)}</h1><ul>"]
    tables = _tables(rows)
    parts += [f"<li><a href='#{e(n)}'>{e(n)}</a></li>" for n in tables]
    parts.append("</ul>")
    for name, cols in tables.items():
        first = cols[0]
        parts.append(f"<h2 id='{e(name)}'>{e(name)}</h2><p>{e(first[5])}</p><p><i>{e(first[6])}</i></p>"
                     f"<p>Grain: {e(first[7])} · Owner: {e(first[8])}</p>"
                     "<table><tr><th>column</th><th>type</th><th>description</th></tr>")
        parts += [f"<tr><td><code>{e(c[2])}</code></td><td>{e(c[3])}</td><td>{e(c[9])}</td></tr>" for c in cols]
        parts.append("</table>")
    if contracts:
        parts.append("<h1 id='contracts'>Hợp đồng dữ liệu chung / Shared data contracts</h1>")
    for name, cols in _contracts(contracts).items():
        parts.append(f"<h3>contract {e(name)} (v{e(str(cols[0][1]))})</h3>"
                     f"<p>Nguồn cung cấp / fed by: {e(', '.join(cols[0][9] or []) or '—')}</p>"
                     "<table><tr><th>column</th><th>type</th><th>required</th><th>personal</th><th>allowed</th>"
                     "<th>description</th></tr>")
        parts += [f"<tr><td><code>{e(c[2])}</code></td><td>{e(c[3])}</td><td>{'✔' if c[4] else ''}</td>"
                  f"<td>{e(c[5])}</td><td>{e(c[6])}</td><td>{e(c[7])} — {e(c[8])}</td></tr>" for c in cols]
        parts.append("</table>")
    return "\n".join(parts) + "</html>\n"


def published_gaps(con: duckdb.DuckDBPyConnection) -> list[str]:
    """What a snapshot (or warehouse) holds that its own `meta.data_dictionary` does not describe: a table
    without both descriptions, a column without a row or a description. Empty means fully documented."""
    rows = con.execute(f"""
        SELECT c.table_schema, c.table_name, c.column_name, d.table_description_vi, d.table_description_en,
               d.column_description
        FROM information_schema.columns c
        LEFT JOIN {TABLE} d USING (table_schema, table_name, column_name)
        WHERE c.table_catalog = current_database() AND c.table_schema IN {DOCUMENTED_LAYERS}""").fetchall()
    gaps = set()
    for schema, table, column, vi, en, col in rows:
        if not (vi and en):
            gaps.add(f"{schema}.{table}")
        if not col:
            gaps.add(f"{schema}.{table}.{column}")
    return sorted(gaps)
