"""The national data map (bản đồ dữ liệu Việt Nam): every tenant's published catalogues merged, versioned.

Reads only what tenants published under `<tenant data folder>/open_data/`: the database catalogue
(`database_catalogue.csv`, pipelines/publish/catalogue.py) and the open-data publication
(`publish_report.json` + each dataset's `datapackage.json`, pipelines/publish/opendata.py). Writes to
`--out` (default `<TONGHOP_HOME>/datamap/`):

- `datamap.duckdb` and `parquet/{units,databases,datasets,duplicates}.parquet`;
- `catalog.ttl` / `catalog.jsonld` — DCAT-AP 3: a `dcat:Catalog` with one `dcat:catalog` per unit, each
  holding its database catalogue and open datasets;
- `index.html` — one self-contained page (inline CSS/JS, no CDN), searchable and filterable by unit, class
  and openness, in Vietnamese; host it anywhere;
- `version.json` — `1.N`, bumped only when the content changed (a rebuild of the same catalogues rewrites
  nothing).

Likely duplicates across units: names normalised (lowercase, accents and đ stripped, the unit's own name and
filler words removed) compared by token Jaccard; datasets also by column-name overlap. Listed with scores,
for a person to judge.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

from pipelines.errors import TonghopError

OPEN_DATA = "open_data"
NAME_THRESHOLD = 0.6      # databases: token Jaccard of normalised names
DATASET_THRESHOLD = 0.6   # datasets: mean of name and column-name Jaccard
# words that say "database"/"data" or join a name, not what it holds
STOPWORDS = {"co", "so", "du", "lieu", "csdl", "cua", "ve", "va", "cac", "cho", "theo", "tai", "trong", "he", "thong",
             "tinh", "thanh", "pho", "bo", "khai", "thac"}

DB_COLUMNS = ["unit_id", "unit_name", "unit_kind", "admin_code", "code", "name", "class", "class_name", "purpose",
              "scope", "sources", "owner", "open_categories", "shared_categories", "is_open", "is_shared", "status",
              "roadmap", "update_frequency", "last_updated", "quality_score"]


class DatamapError(TonghopError):
    """The map cannot be built (no tenant published, output folder unusable)."""


@dataclass
class DatamapResult:
    out: Path
    version: str
    changed: bool
    n_units: int
    n_databases: int
    n_datasets: int
    n_duplicates: int
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        state = "new version" if self.changed else "unchanged"
        lines = [f"data map {self.version} ({state}): {self.n_units} units, {self.n_databases} databases, "
                 f"{self.n_datasets} open datasets, {self.n_duplicates} likely duplicates — {self.out / 'index.html'}"]
        lines += [f"  warning: {p}" for p in self.problems]
        return "\n".join(lines)


def normalise(text: str) -> str:
    text = (text or "").replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFD", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Mn").lower()
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def tokens(text: str, drop: set[str] = frozenset()) -> frozenset[str]:
    return frozenset(t for t in normalise(text).split() if t not in STOPWORDS and t not in drop and len(t) > 1)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


# --- reading the published catalogues --------------------------------------------------------------------

@dataclass
class Unit:
    unit_id: str
    unit_name: str
    unit_kind: str
    admin_code: str
    folder: Path


def units_from_config(tenants_dir: Path | None = None) -> tuple[list[Unit], list[str]]:
    from pipelines.config import load_tenant_file, tenant_files
    from pipelines.settings import TenantPaths

    units, problems = [], []
    for path in tenant_files(tenants_dir):
        try:
            cfg = load_tenant_file(path)
        except TonghopError as exc:
            problems.append(f"{path.name}: left out of the map — {str(exc)[:200]}")
            continue
        root = TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).root
        units.append(Unit(cfg.tenant_id, cfg.display_name, cfg.kind, cfg.admin_code, root / OPEN_DATA))
    return units, problems


def _read_databases(con, units: list[Unit], problems: list[str]) -> None:
    """Every unit's database_catalogue.csv (each file read on its own: a hand-edited file with other line
    endings or a missing column costs that unit only, with a warning)."""
    import pyarrow as pa

    rows: list[dict[str, str]] = []
    for u in units:
        path = u.folder / "database_catalogue.csv"
        if not path.exists():
            continue
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in DB_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                problems.append(f"{path}: column(s) {', '.join(missing)} missing — left out of the map; republish "
                                f"with `tonghop publish --tenant {u.unit_id} --target catalogue`")
                continue
            rows += [{c: (r[c] if r[c] != "" else None) for c in DB_COLUMNS} for r in reader]
    schema = pa.schema([(c, pa.string()) for c in DB_COLUMNS])
    con.register("raw_db", pa.Table.from_pylist(rows, schema=schema))
    con.execute("""
        CREATE TABLE databases AS SELECT
            unit_id, unit_name, unit_kind, admin_code, code, name, class, class_name, purpose, scope,
            string_split(nullif(sources, ''), ';') AS sources, owner,
            coalesce(string_split(nullif(open_categories, ''), ';'), []) AS open_categories,
            coalesce(string_split(nullif(shared_categories, ''), ';'), []) AS shared_categories,
            is_open::BOOLEAN AS is_open, is_shared::BOOLEAN AS is_shared,
            CASE WHEN is_open::BOOLEAN THEN 'mo' WHEN is_shared::BOOLEAN THEN 'chia_se' ELSE 'han_che' END
                AS openness,
            status, roadmap, nullif(update_frequency, '') AS update_frequency,
            nullif(last_updated, '')::TIMESTAMPTZ AS last_updated, nullif(quality_score, '')::DOUBLE AS quality_score
        FROM raw_db ORDER BY unit_id, code""")
    con.unregister("raw_db")


def _read_datasets(units: list[Unit], problems: list[str]) -> list[dict[str, Any]]:
    rows = []
    for u in units:
        report_path = u.folder / "publish_report.json"
        if not report_path.exists():
            continue
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            problems.append(f"{report_path}: unreadable JSON ({exc}) — its open datasets are left out; "
                            f"run `tonghop publish --tenant {u.unit_id}` again")
            continue
        for e in report.get("datasets", []):
            if e.get("status") not in ("published", "unchanged"):
                continue
            title, description, columns = e["id"], "", []
            dp_path = u.folder / e["id"] / "datapackage.json"
            try:
                dp = json.loads(dp_path.read_text(encoding="utf-8"))
                title, description = dp.get("title") or title, dp.get("description") or ""
                for res in dp.get("resources", [])[:1]:
                    columns = [f["name"] for f in res.get("schema", {}).get("fields", [])]
            except (FileNotFoundError, ValueError):
                problems.append(f"{dp_path}: missing or unreadable — dataset '{e['id']}' has no title or columns "
                                "in the map")
            rows.append({"unit_id": u.unit_id, "unit_name": u.unit_name, "dataset_id": e["id"], "title": title,
                         "description": description, "source_table": e.get("table"), "version": e.get("version"),
                         "modified": e.get("modified"), "row_count": e.get("row_count"),
                         "formats": sorted(d["format"] for d in e.get("distributions", [])),
                         "columns": columns, "openness": "mo"})
    return rows


def find_duplicates(databases: list[dict[str, Any]], datasets: list[dict[str, Any]],
                    unit_names: dict[str, str]) -> list[dict[str, Any]]:
    """Pairs from different units whose names (and, for datasets, columns) look alike, with their scores."""
    drop = {u: set(normalise(n).split()) for u, n in unit_names.items()}
    out: list[dict[str, Any]] = []

    def pairs(items: list[dict[str, Any]], key: str) -> set[tuple[int, int]]:
        index: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            for t in it["_tokens"]:
                index.setdefault(t, []).append(i)
        found = set()
        for ids in index.values():
            for a, b in combinations(ids, 2):
                if items[a]["unit_id"] != items[b]["unit_id"]:
                    found.add((a, b))
        return found

    for d in databases:
        d["_tokens"] = tokens(d["name"], drop.get(d["unit_id"], set()))
    for a, b in sorted(pairs(databases, "name")):
        x, y = databases[a], databases[b]
        score = jaccard(x["_tokens"], y["_tokens"])
        if score >= NAME_THRESHOLD:
            out.append({"kind": "database", "unit_a": x["unit_id"], "id_a": x["code"], "name_a": x["name"],
                        "unit_b": y["unit_id"], "id_b": y["code"], "name_b": y["name"],
                        "name_score": round(score, 3), "schema_score": None, "score": round(score, 3)})
    for d in datasets:
        d["_tokens"] = tokens(d["title"], drop.get(d["unit_id"], set()))
        d["_cols"] = frozenset(c.lower() for c in d["columns"])
    for a, b in sorted(pairs(datasets, "title")):
        x, y = datasets[a], datasets[b]
        name = jaccard(x["_tokens"], y["_tokens"])
        schema = jaccard(x["_cols"], y["_cols"])
        score = (name + schema) / 2 if x["_cols"] and y["_cols"] else name
        if score >= DATASET_THRESHOLD:
            out.append({"kind": "dataset", "unit_a": x["unit_id"], "id_a": x["dataset_id"], "name_a": x["title"],
                        "unit_b": y["unit_id"], "id_b": y["dataset_id"], "name_b": y["title"],
                        "name_score": round(name, 3), "schema_score": round(schema, 3), "score": round(score, 3)})
    for d in [*databases, *datasets]:
        d.pop("_tokens", None)
        d.pop("_cols", None)
    return sorted(out, key=lambda r: (-r["score"], r["kind"], r["unit_a"], r["id_a"], r["unit_b"], r["id_b"]))


# --- outputs -----------------------------------------------------------------------------------------------

def _rows(con, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return v


def to_graph(units: list[dict[str, Any]], databases: list[dict[str, Any]], datasets: list[dict[str, Any]],
             version: str):
    from rdflib import Graph, Literal, URIRef
    from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, XSD

    from pipelines.publish.catalogue import EU_ACCESS, NS, VOCAB, add_database

    DCAT_VERSION = URIRef("http://www.w3.org/ns/dcat#version")  # noqa: N806 — DCAT 3, not in rdflib's DCAT
    g = Graph()
    for prefix, ns in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("th", VOCAB)):
        g.bind(prefix, ns)
    root = URIRef(f"{NS}datamap")
    g.add((root, RDF.type, DCAT.Catalog))
    g.add((root, DCTERMS.title, Literal("Bản đồ dữ liệu Việt Nam", lang="vi")))
    g.add((root, DCTERMS.title, Literal("Vietnam data map", lang="en")))
    g.add((root, DCTERMS.description, Literal(
        "Danh mục các danh mục: cơ sở dữ liệu và dữ liệu mở của các bộ, ngành, địa phương dùng nền tảng Tổng Hợp.",
        lang="vi")))
    g.add((root, DCAT_VERSION, Literal(version)))
    me = URIRef(f"{NS}datamap#publisher")
    g.add((root, DCTERMS.publisher, me))
    g.add((me, RDF.type, FOAF.Agent))
    g.add((me, FOAF.name, Literal("Nền tảng phân tích, xử lý dữ liệu tổng hợp (Tổng Hợp)", lang="vi")))
    public = URIRef(EU_ACCESS + "PUBLIC")
    g.add((public, RDF.type, DCTERMS.RightsStatement))
    by_unit_db: dict[str, list[dict[str, Any]]] = {}
    for d in databases:
        by_unit_db.setdefault(d["unit_id"], []).append(d)
    by_unit_ds: dict[str, list[dict[str, Any]]] = {}
    for d in datasets:
        by_unit_ds.setdefault(d["unit_id"], []).append(d)
    for u in units:
        base = f"{NS}{u['unit_id']}/"
        cat = URIRef(f"{base}catalog")
        g.add((root, DCAT.catalog, cat))
        g.add((cat, RDF.type, DCAT.Catalog))
        g.add((cat, DCTERMS.identifier, Literal(u["unit_id"])))
        g.add((cat, DCTERMS.title, Literal(f"Dữ liệu của {u['unit_name']}", lang="vi")))
        g.add((cat, DCTERMS.description, Literal(
            f"Cơ sở dữ liệu ({u['n_databases']}) và dữ liệu mở ({u['n_datasets']}) của {u['unit_name']}.", lang="vi")))
        agent = URIRef(f"{base}#publisher")
        g.add((cat, DCTERMS.publisher, agent))
        g.add((agent, RDF.type, FOAF.Agent))
        g.add((agent, FOAF.name, Literal(u["unit_name"], lang="vi")))
        if by_unit_db.get(u["unit_id"]):
            dbcat = URIRef(f"{base}database-catalogue")
            g.add((cat, DCAT.catalog, dbcat))
            g.add((dbcat, RDF.type, DCAT.Catalog))
            g.add((dbcat, DCTERMS.title, Literal(f"Danh mục cơ sở dữ liệu — {u['unit_name']}", lang="vi")))
            g.add((dbcat, DCTERMS.description, Literal("Danh mục cơ sở dữ liệu (Quyết định 1437/QĐ-TTg).", lang="vi")))
            g.add((dbcat, DCTERMS.publisher, agent))
            for d in by_unit_db[u["unit_id"]]:
                row = {k: _jsonable(v) for k, v in d.items()}
                for k in ("sources", "open_categories", "shared_categories"):
                    row[k] = ";".join(row[k] or [])
                add_database(g, dbcat, row, base)
        for d in by_unit_ds.get(u["unit_id"], []):
            ds = URIRef(f"{base}open-data/{d['dataset_id']}")
            g.add((cat, DCAT.dataset, ds))
            g.add((ds, RDF.type, DCAT.Dataset))
            g.add((ds, DCTERMS.identifier, Literal(f"{u['unit_id']}/{d['dataset_id']}")))
            g.add((ds, DCTERMS.title, Literal(d["title"], lang="vi")))
            g.add((ds, DCTERMS.description, Literal(d["description"] or d["title"], lang="vi")))
            g.add((ds, DCTERMS.publisher, agent))
            g.add((ds, DCTERMS.accessRights, public))
            if d["version"]:
                g.add((ds, DCAT_VERSION, Literal(str(d["version"]))))
            if d["modified"]:
                g.add((ds, DCTERMS.modified, Literal(str(d["modified"]).replace("Z", "+00:00"),
                                                     datatype=XSD.dateTime)))
    return g


_HTML = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Bản đồ dữ liệu Việt Nam — phiên bản __VERSION__</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;background:#f6f8fa}
header{background:#b71c1c;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.9;font-size:14px}main{padding:16px 24px}
.filters{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:12px}
.filters input,.filters select{padding:6px 8px;font-size:14px;border:1px solid #c5ccd3;border-radius:4px}
.filters input{min-width:280px}.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:12px}
.card{background:#fff;border:1px solid #dde2e7;border-radius:6px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:22px}h2{font-size:17px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border:1px solid #dde2e7;padding:5px 7px;text-align:left;vertical-align:top}th{background:#eef1f4}
.tag{display:inline-block;padding:1px 6px;border-radius:10px;font-size:12px;background:#e3e8ee}
.mo{background:#d7f0dc}.chia_se{background:#fff1c9}.han_che{background:#f6d5d5}
footer{padding:12px 24px;font-size:12px;color:#5b6670}
</style></head><body>
<header><h1>Bản đồ dữ liệu Việt Nam</h1>
<p>Phiên bản __VERSION__ · cập nhật __BUILT__ · cơ sở dữ liệu và dữ liệu mở của các bộ, ngành, địa phương</p></header>
<main>
<div class="cards" id="cards"></div>
<div class="filters">
<input id="q" type="search" placeholder="Tìm theo tên, mục đích, cơ quan chủ quản… (không cần dấu)" aria-label="Tìm kiếm">
<select id="unit" aria-label="Đơn vị"><option value="">Tất cả đơn vị</option></select>
<select id="cls" aria-label="Phân loại"><option value="">Tất cả phân loại</option>
<option value="quoc_gia">CSDL quốc gia</option><option value="dung_chung">CSDL dùng chung</option>
<option value="noi_bo">CSDL nội bộ</option></select>
<select id="open" aria-label="Mức mở"><option value="">Mọi mức tiếp cận</option><option value="mo">Dữ liệu mở</option>
<option value="chia_se">Chia sẻ</option><option value="han_che">Hạn chế</option></select>
</div>
<h2>Cơ sở dữ liệu <span id="ndb"></span></h2>
<table><thead><tr><th>Đơn vị</th><th>Cơ sở dữ liệu</th><th>Phân loại</th><th>Cơ quan chủ quản</th><th>Mục đích</th>
<th>Mức tiếp cận</th><th>Trạng thái</th><th>Tần suất</th><th>Cập nhật gần nhất</th><th>Điểm chất lượng</th></tr></thead>
<tbody id="db"></tbody></table>
<h2>Dữ liệu mở <span id="nds"></span></h2>
<table><thead><tr><th>Đơn vị</th><th>Bộ dữ liệu</th><th>Mô tả</th><th>Phiên bản</th><th>Cập nhật</th><th>Số dòng</th>
<th>Định dạng</th></tr></thead><tbody id="ds"></tbody></table>
<h2>Có thể trùng lặp giữa các đơn vị <span id="ndu"></span></h2>
<table><thead><tr><th>Loại</th><th>Đơn vị A</th><th>Tên A</th><th>Đơn vị B</th><th>Tên B</th><th>Điểm tên</th>
<th>Điểm cấu trúc</th><th>Điểm</th></tr></thead><tbody id="du"></tbody></table>
</main>
<footer>Tạo bởi <code>tonghop datamap build</code>. Tải về: datamap.duckdb, parquet/, catalog.ttl, catalog.jsonld (DCAT-AP 3).</footer>
<script id="data" type="application/json">__DATA__</script>
<script>
const D=JSON.parse(document.getElementById('data').textContent);
const CLS={quoc_gia:'CSDL quốc gia',dung_chung:'CSDL dùng chung',noi_bo:'CSDL nội bộ'};
const OPEN={mo:'Mở',chia_se:'Chia sẻ',han_che:'Hạn chế'};
const ST={dang_van_hanh:'Đang vận hành',dang_xay_dung:'Đang xây dựng',ke_hoach:'Kế hoạch'};
const FQ={HOURLY:'Hằng giờ',DAILY:'Hằng ngày',WEEKLY:'Hằng tuần',MONTHLY:'Hằng tháng',QUARTERLY:'Hằng quý',ANNUAL:'Hằng năm',IRREG:'Không định kỳ',CONT:'Liên tục'};
const UN=Object.fromEntries(D.units.map(u=>[u.unit_id,u.unit_name]));
const norm=s=>(s||'').toString().replace(/đ/g,'d').replace(/Đ/g,'D').normalize('NFD').replace(/[\\u0300-\\u036f]/g,'').toLowerCase();
const esc=s=>(s==null?'':String(s)).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const num=(v,d)=>v==null?'—':Number(v).toLocaleString('vi-VN',{maximumFractionDigits:d});
const sel=document.getElementById('unit');
D.units.forEach(u=>{const o=document.createElement('option');o.value=u.unit_id;o.textContent=u.unit_name;sel.appendChild(o)});
function cards(){const c=document.getElementById('cards');
c.innerHTML=[['Đơn vị',D.units.length],['Cơ sở dữ liệu',D.databases.length],['Dữ liệu mở',D.datasets.length],['Có thể trùng lặp',D.duplicates.length]]
.map(([k,v])=>`<div class="card"><b>${num(v,0)}</b>${k}</div>`).join('')}
function render(){
const q=norm(document.getElementById('q').value),u=sel.value,k=document.getElementById('cls').value,o=document.getElementById('open').value;
const hit=(r,f)=>!q||f.some(x=>norm(r[x]).includes(q));
const db=D.databases.filter(r=>(!u||r.unit_id===u)&&(!k||r.class===k)&&(!o||r.openness===o)&&hit(r,['name','purpose','owner','unit_name','code']));
document.getElementById('db').innerHTML=db.map(r=>`<tr><td>${esc(r.unit_name)}</td><td><b>${esc(r.name)}</b><br><small>${esc(r.code)}</small></td><td>${esc(CLS[r.class]||r.class)}</td><td>${esc(r.owner)}</td><td>${esc(r.purpose)}</td><td><span class="tag ${r.openness}">${OPEN[r.openness]}</span></td><td>${esc(ST[r.status]||r.status)}</td><td>${esc(FQ[r.update_frequency]||'—')}</td><td>${esc(r.last_updated?r.last_updated.slice(0,10):'—')}</td><td>${r.quality_score==null?'—':num(r.quality_score*100,1)+' %'}</td></tr>`).join('');
document.getElementById('ndb').textContent=`(${num(db.length,0)})`;
const ds=D.datasets.filter(r=>(!u||r.unit_id===u)&&(!k)&&(!o||o==='mo')&&hit(r,['title','description','unit_name','dataset_id']));
document.getElementById('ds').innerHTML=ds.map(r=>`<tr><td>${esc(r.unit_name)}</td><td><b>${esc(r.title)}</b><br><small>${esc(r.dataset_id)}</small></td><td>${esc(r.description)}</td><td>${esc(r.version)}</td><td>${esc((r.modified||'').slice(0,10))}</td><td>${num(r.row_count,0)}</td><td>${esc((r.formats||[]).join(', '))}</td></tr>`).join('');
document.getElementById('nds').textContent=`(${num(ds.length,0)})`;
const du=D.duplicates.filter(r=>(!u||r.unit_a===u||r.unit_b===u)&&hit(r,['name_a','name_b']));
document.getElementById('du').innerHTML=du.map(r=>`<tr><td>${r.kind==='database'?'Cơ sở dữ liệu':'Dữ liệu mở'}</td><td>${esc(UN[r.unit_a])}</td><td>${esc(r.name_a)}</td><td>${esc(UN[r.unit_b])}</td><td>${esc(r.name_b)}</td><td>${num(r.name_score,2)}</td><td>${r.schema_score==null?'—':num(r.schema_score,2)}</td><td><b>${num(r.score,2)}</b></td></tr>`).join('');
document.getElementById('ndu').textContent=`(${num(du.length,0)})`}
['q','unit','cls','open'].forEach(id=>document.getElementById(id).addEventListener('input',render));
cards();render();
</script></body></html>
"""


def to_html(data: dict[str, Any], version: str, built: str) -> str:
    payload = json.dumps(data, ensure_ascii=False, default=_jsonable, separators=(",", ":"))
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _HTML.replace("__VERSION__", html.escape(version)).replace("__BUILT__", html.escape(built)) \
        .replace("__DATA__", payload)


def _replace(tmp: Path, final: Path) -> None:
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    os.replace(tmp, final)


def build(out: Path | None = None, tenants_dir: Path | None = None, units: list[Unit] | None = None,
          force: bool = False) -> DatamapResult:
    """Build (or leave unchanged) the national data map from every tenant's published catalogues."""
    import duckdb

    from pipelines.settings import tonghop_home

    out = Path(out) if out else tonghop_home() / "datamap"
    problems: list[str] = []
    if units is None:
        units, problems = units_from_config(tenants_dir)
    if not units:
        raise DatamapError("no tenant to map — add tenant files in tenants/ (TONGHOP_TENANTS_DIR)")
    out.mkdir(parents=True, exist_ok=True)
    work = out / f".build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        con = duckdb.connect(str(work / "datamap.duckdb"))
        _read_databases(con, units, problems)
        databases = _rows(con, "SELECT * FROM databases")
        datasets = _read_datasets(units, problems)
        published = {d["unit_id"] for d in databases} | {d["unit_id"] for d in datasets}
        unit_rows = []
        for u in sorted(units, key=lambda u: u.unit_id):
            dbs = [d for d in databases if d["unit_id"] == u.unit_id]
            unit_rows.append({"unit_id": u.unit_id, "unit_name": u.unit_name, "unit_kind": u.unit_kind,
                              "admin_code": u.admin_code, "is_published": u.unit_id in published,
                              "n_databases": len(dbs), "n_datasets": sum(d["unit_id"] == u.unit_id for d in datasets),
                              "n_national": sum(d["class"] == "quoc_gia" for d in dbs),
                              "n_shared": sum(d["class"] == "dung_chung" for d in dbs),
                              "n_internal": sum(d["class"] == "noi_bo" for d in dbs)})
            if u.unit_id not in published:
                problems.append(f"{u.unit_id}: nothing published yet in {u.folder} — run "
                                f"`tonghop publish --tenant {u.unit_id}` (catalogue and opendata targets)")
        duplicates = find_duplicates(databases, datasets, {u.unit_id: u.unit_name for u in units})
        content = json.dumps({"units": unit_rows, "databases": databases, "datasets": datasets,
                              "duplicates": duplicates}, sort_keys=True, default=_jsonable, ensure_ascii=False)
        digest = hashlib.sha256(content.encode()).hexdigest()
        try:
            previous = json.loads((out / "version.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            previous = None
        result = DatamapResult(out, previous["version"] if previous else "1.0", False, len(unit_rows),
                               len(databases), len(datasets), len(duplicates), problems)
        if previous and previous.get("content_sha256") == digest and not force and (out / "index.html").exists():
            con.close()
            return result
        if previous and previous.get("content_sha256") != digest:  # --force rewrites; only new content bumps
            major, minor = (int(x) for x in previous["version"].split("."))
            result.version = f"{major}.{minor + 1}"
        result.changed = not previous or previous.get("content_sha256") != digest
        built = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        import pyarrow as pa

        for name, rows in (("units", unit_rows), ("datasets", datasets), ("duplicates", duplicates)):
            if rows:
                con.register(f"_{name}", pa.Table.from_pylist(rows))
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM _{name}")
                con.unregister(f"_{name}")
            else:
                con.execute(f"CREATE TABLE {name} AS SELECT NULL::VARCHAR AS unit_id WHERE false")
        con.execute("CREATE TABLE version AS SELECT ? AS version, ? AS content_sha256, ?::TIMESTAMPTZ AS built_at",
                    [result.version, digest, built])
        (work / "parquet").mkdir()
        for name in ("units", "databases", "datasets", "duplicates"):
            con.execute(f"COPY {name} TO '{work / 'parquet' / (name + '.parquet')}' (FORMAT parquet)")
        con.close()
        g = to_graph(unit_rows, databases, datasets, result.version)
        (work / "catalog.ttl").write_bytes(g.serialize(format="turtle").encode())
        (work / "catalog.jsonld").write_bytes(g.serialize(format="json-ld", indent=1).encode())
        (work / "index.html").write_text(to_html({"units": unit_rows, "databases": databases, "datasets": datasets,
                                                  "duplicates": duplicates}, result.version, built), encoding="utf-8")
        (work / "version.json").write_text(json.dumps({"version": result.version, "content_sha256": digest,
                                                       "built_at": built, "units": len(unit_rows)}, indent=1),
                                           encoding="utf-8")
        # swap in; version.json last, so an interrupted swap is rebuilt next time
        for name in ("datamap.duckdb", "parquet", "catalog.ttl", "catalog.jsonld", "index.html", "version.json"):
            _replace(work / name, out / name)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)

