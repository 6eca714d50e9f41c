"""The data dictionary: every table and column of `staging` and `marts`, from the warehouse itself and the
YAML documentation beside each model (`warehouse/<layer>/<name>.yml`).

`transform` writes it into `meta.data_dictionary` (so it is published with the snapshot and the apps can
show it); `tonghop dictionary --tenant T` renders it from the serving snapshot as Markdown and HTML into
`<tenant data folder>/docs/`. A column without a description shows up in `undocumented()`; a test fails
on any.
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

DOCUMENTED_LAYERS = ("staging", "marts")
TABLE = "meta.data_dictionary"


@cache
def _docs_cached(root: str) -> dict[str, dict[str, Any]]:
    import yaml

    docs = {}
    for layer in DOCUMENTED_LAYERS:
        for path in sorted((Path(root) / layer).glob("*.yml")):
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            docs[f"{layer}.{path.stem}"] = doc
    return docs


def model_docs(root: Path = WAREHOUSE_SQL_DIR) -> dict[str, dict[str, Any]]:
    """'staging.ho_so' -> its parsed YAML (description vi/en, grain, owner, columns)."""
    return _docs_cached(str(root))


def _description(doc: dict, lang: str) -> str:
    d = doc.get("description") or {}
    return (d.get(lang) if isinstance(d, dict) else d) or ""


def _column_docs(doc: dict) -> dict[str, str]:
    return {c["name"]: (c.get("description") or "").strip() for c in doc.get("columns") or []}


def dictionary_rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """One row per column of every staging/marts table in `con`, joined with its documentation."""
    docs = model_docs()
    columns = con.execute(
        "SELECT table_schema, table_name, column_name, data_type, ordinal_position FROM information_schema.columns "
        f"WHERE table_schema IN {DOCUMENTED_LAYERS} AND table_catalog = current_database() "
        "ORDER BY 1, 2, 5").fetchall()
    rows = []
    for schema, table, column, data_type, position in columns:
        doc = docs.get(f"{schema}.{table}", {})
        rows.append((schema, table, column, data_type, position, _description(doc, "vi"), _description(doc, "en"),
                     doc.get("grain") or "", doc.get("owner") or "", _column_docs(doc).get(column, "")))
    return rows


def write_dictionary_table(con: duckdb.DuckDBPyConnection) -> int:
    """(Re)write `meta.data_dictionary` from the tables as they are now; returns the documented columns."""
    rows = dictionary_rows(con)
    con.execute(f"""CREATE OR REPLACE TABLE {TABLE} (
        table_schema VARCHAR, table_name VARCHAR, column_name VARCHAR, data_type VARCHAR, position INTEGER,
        table_description_vi VARCHAR, table_description_en VARCHAR, grain VARCHAR, owner VARCHAR,
        column_description VARCHAR)""")
    if rows:
        con.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return sum(1 for r in rows if r[-1])


def undocumented(con: duckdb.DuckDBPyConnection) -> list[str]:
    """'staging.ho_so.ma_xa' for every column (or 'staging.x' table) lacking a description."""
    missing = []
    for schema, table, column, _type, _pos, table_vi, table_en, _grain, _owner, column_doc in dictionary_rows(con):
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
    finally:
        con.close()
    out = paths.root / "docs"
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "data-dictionary.md", out / "data-dictionary.html"
    md.write_text(_markdown(tenant.display_name, rows), encoding="utf-8")
    page.write_text(_html(tenant.display_name, rows), encoding="utf-8")
    return [md, page]


def _tables(rows: list[tuple]) -> dict[str, list[tuple]]:
    grouped: dict[str, list[tuple]] = {}
    for r in rows:
        grouped.setdefault(f"{r[0]}.{r[1]}", []).append(r)
    return grouped


def _markdown(title: str, rows: list[tuple]) -> str:
    lines = [f"# Từ điển dữ liệu — {title} / Data dictionary", ""]
    for name, cols in _tables(rows).items():
        first = cols[0]
        lines += [f"## `{name}`", "", first[5], "", f"*{first[6]}*", "",
                  f"Grain: {first[7]} · Owner: {first[8]}", "", "| column | type | description |", "|---|---|---|"]
        lines += [f"| `{c[2]}` | {c[3]} | {c[9].replace('|', '/')} |" for c in cols]
        lines.append("")
    return "\n".join(lines)


def _html(title: str, rows: list[tuple]) -> str:
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
    return "\n".join(parts) + "</html>\n"
