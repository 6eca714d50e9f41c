"""The tenant's database catalogue (Decision 1437/QĐ-TTg) published as CSV and DCAT-AP 3.

Reads the serving snapshot only: `marts.danh_muc_csdl` (the catalogue from the tenant file), `meta.loads`
(freshness: the latest good load of the database's sources) and `meta.quality_scores` (the mean score of the
latest scored batch of each of its sources). Writes under `<tenant data folder>/open_data/`:

- `database_catalogue.csv` — UTF-8 with BOM, one row per database, machine-readable snake_case headers;
- `database_catalogue_dictionary.csv` — what each column means (vi, en);
- `database_catalogue.ttl` / `.jsonld` — a `dcat:Catalog` whose `dcat:dataset`s are the databases, with the
  class as a `dct:type` concept, the owner as `dct:publisher`, open/shared status as `dct:accessRights`,
  the update frequency as `dct:accrualPeriodicity`, freshness as `dct:modified` and the quality score as a
  `dqv:QualityMeasurement`.

A file whose content did not change is not rewritten (its date stays), so the data map sees no change.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import TonghopError
from pipelines.publish.base import PublishContext, PublishResult, write_if_changed

if TYPE_CHECKING:
    from rdflib import Graph

    from pipelines.config import TenantConfig

TARGET = "catalogue"
OUT_DIR = "open_data"
STEM = "database_catalogue"
NS = "https://w3id.org/tonghop/"           # the platform's own vocabulary and default identifiers
VOCAB = NS + "ns#"
EU_FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
EU_ACCESS = "http://publications.europa.eu/resource/authority/access-right/"

CLASS_LABELS = {  # the three classes of state databases (DOMAIN.md)
    "quoc_gia": ("Cơ sở dữ liệu quốc gia", "National database"),
    "dung_chung": ("Cơ sở dữ liệu dùng chung của bộ, ngành, địa phương",
                   "Shared database of a ministry, sector or locality"),
    "noi_bo": ("Cơ sở dữ liệu nội bộ của hệ thống thông tin", "Internal database of an information system"),
}
STATUS_LABELS = {"dang_van_hanh": "Đang vận hành", "dang_xay_dung": "Đang xây dựng", "ke_hoach": "Kế hoạch"}
FREQUENCY_LABELS = {"HOURLY": "Hằng giờ", "DAILY": "Hằng ngày", "WEEKLY": "Hằng tuần", "MONTHLY": "Hằng tháng",
                    "ANNUAL": "Hằng năm", "IRREG": "Không định kỳ", "CONT": "Liên tục"}

# column -> (type, description vi, description en): the CSV's header and its data dictionary, in order
COLUMNS: dict[str, tuple[str, str, str]] = {
    "unit_id": ("string", "Mã đơn vị (bộ, tỉnh) trên nền tảng", "Unit (ministry, province) id on the platform"),
    "unit_name": ("string", "Tên đơn vị", "Unit name"),
    "unit_kind": ("string", "Loại đơn vị: province (tỉnh) hoặc ministry (bộ)", "Unit kind: province or ministry"),
    "admin_code": ("string", "Mã đơn vị hành chính", "Administrative code of the unit"),
    "code": ("string", "Mã cơ sở dữ liệu", "Database code"),
    "name": ("string", "Tên cơ sở dữ liệu", "Database name"),
    "class": ("string", "Phân loại: quoc_gia, dung_chung, noi_bo", "Class: national, shared, internal"),
    "class_name": ("string", "Tên phân loại", "Class name (vi)"),
    "purpose": ("string", "Mục đích", "Purpose"),
    "scope": ("string", "Phạm vi", "Scope"),
    "sources": ("string", "Nguồn dữ liệu (ngăn cách bởi ;)", "Data sources (';'-separated)"),
    "owner": ("string", "Cơ quan chủ quản", "Owner agency"),
    "open_categories": ("string", "Danh mục dữ liệu mở (ngăn cách bởi ;)", "Open data categories (';'-separated)"),
    "shared_categories": ("string", "Danh mục dữ liệu chia sẻ (ngăn cách bởi ;)",
                          "Shared data categories (';'-separated)"),
    "is_open": ("boolean", "Có dữ liệu mở", "Has open data"),
    "is_shared": ("boolean", "Có dữ liệu chia sẻ", "Has shared data"),
    "status": ("string", "Trạng thái: dang_van_hanh, dang_xay_dung, ke_hoach",
               "Status: in operation, being built, planned"),
    "roadmap": ("string", "Lộ trình xây dựng", "Roadmap"),
    "update_frequency": ("string", "Tần suất cập nhật (mã EU: DAILY, WEEKLY, ...; trống: nguồn ngoài)",
                         "Update frequency (EU code; empty: external source)"),
    "last_updated": ("datetime", "Lần nạp thành công gần nhất của nguồn (UTC)", "Latest good load of its sources (UTC)"),
    "quality_score": ("number", "Điểm chất lượng 0–1 (trung bình các chiều, lô gần nhất)",
                      "Quality score 0-1 (mean over dimensions, latest batch)"),
}


@dataclass(frozen=True)
class DatabaseRecord:
    row: dict[str, Any]  # COLUMNS -> value


def cron_frequency(cron: str | None) -> str | None:
    """The EU frequency code of a cron schedule (the run's cadence bounds the data's)."""
    if not cron:
        return None
    cron = cron.strip()
    presets = {"@hourly": "HOURLY", "@daily": "DAILY", "@weekly": "WEEKLY", "@monthly": "MONTHLY",
               "@yearly": "ANNUAL", "@annually": "ANNUAL", "@continuous": "CONT", "@once": "IRREG"}
    if cron.startswith("@"):
        return presets.get(cron, "IRREG")
    parts = cron.split()
    if len(parts) != 5:
        return "IRREG"
    minute, hour, dom, month, dow = parts
    if hour == "*" or "/" in hour:
        return "HOURLY"
    if dom == "*" and month == "*":
        return "DAILY" if dow == "*" else "WEEKLY"
    if month == "*":
        return "MONTHLY"
    return "ANNUAL"


def _snapshot_facts(snapshot: Path) -> tuple[list[dict[str, Any]], dict[str, datetime], dict[str, float]]:
    """The catalogue rows, the latest good load per source and the latest quality score per source."""
    import duckdb

    if not snapshot.exists():
        raise TonghopError(f"database catalogue: no serving snapshot at {snapshot} — run the tenant's pipeline "
                           "first (tonghop run --tenant <tenant>)")
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        tables = {f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
        if "marts.danh_muc_csdl" not in tables:
            raise TonghopError(f"database catalogue: {snapshot} has no marts.danh_muc_csdl — run the tenant's "
                               "pipeline (transform and publish steps) with this version of the platform")
        cur = con.execute("SELECT * FROM marts.danh_muc_csdl ORDER BY ma_csdl")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        loads: dict[str, datetime] = {}
        if "meta.loads" in tables:
            loads = dict(con.execute("SELECT source, max(loaded_at) FROM meta.loads "
                                     "WHERE status IN ('passed', 'unchanged') GROUP BY source").fetchall())
        scores: dict[str, float] = {}
        if "meta.quality_scores" in tables:
            scores = dict(con.execute("""
                SELECT source, avg(score) FROM meta.quality_scores
                WHERE batch_id = (SELECT arg_max(q.batch_id, q.computed_at) FROM meta.quality_scores q
                                  WHERE q.source = quality_scores.source)
                GROUP BY source""").fetchall())
        return rows, loads, scores
    finally:
        con.close()


def records(cfg: TenantConfig, snapshot: Path) -> list[dict[str, Any]]:
    """One row per database of the tenant's catalogue, with freshness and quality from the snapshot."""
    rows, loads, scores = _snapshot_facts(snapshot)
    configured = {s.name: s for s in cfg.sources}
    out = []
    for r in rows:
        own = [s for s in (r["nguon_du_lieu"] or []) if s in configured]
        freqs = {cron_frequency(configured[s].schedule or cfg.schedule) for s in own} - {None}
        order = ["CONT", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "ANNUAL", "IRREG"]
        loaded = [loads[s] for s in own if s in loads]
        scored = [scores[s] for s in own if s in scores]
        out.append({
            "unit_id": cfg.tenant_id, "unit_name": cfg.display_name, "unit_kind": cfg.kind,
            "admin_code": cfg.admin_code,
            "code": r["ma_csdl"], "name": r["ten_csdl"], "class": r["phan_loai"], "class_name": r["ten_phan_loai"],
            "purpose": r["muc_dich"] or "", "scope": r["pham_vi"] or "",
            "sources": ";".join(r["nguon_du_lieu"] or []), "owner": r["co_quan_chu_quan"] or "",
            "open_categories": ";".join(r["danh_muc_mo"] or []),
            "shared_categories": ";".join(r["danh_muc_chia_se"] or []),
            "is_open": bool(r["is_co_du_lieu_mo"]), "is_shared": bool(r["is_co_du_lieu_chia_se"]),
            "status": r["trang_thai"], "roadmap": r["lo_trinh"] or "",
            "update_frequency": min(freqs, key=order.index) if freqs else None,
            # UTC, not the machine's zone: the same data gives the same file anywhere
            "last_updated": max(loaded).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if loaded else None,
            "quality_score": round(sum(scored) / len(scored), 4) if scored else None,
        })
    return out


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow(["true" if r[c] is True else "false" if r[c] is False else "" if r[c] is None else r[c]
                    for c in COLUMNS])
    return "\ufeff".encode() + buf.getvalue().encode("utf-8")


def dictionary_csv() -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["column", "type", "description_vi", "description_en"])
    for name, (kind, vi, en) in COLUMNS.items():
        w.writerow([name, kind, vi, en])
    return "\ufeff".encode() + buf.getvalue().encode("utf-8")


def unit_iri(cfg: TenantConfig) -> str:
    base = getattr(getattr(cfg, "open_data", None), "base_url", None)
    return base if base else f"{NS}{cfg.tenant_id}/"


def add_database(g: Graph, catalog, r: dict[str, Any], base: str) -> Any:
    """One database as a dcat:Dataset of `catalog` (also used by the data map)."""
    from rdflib import Literal, URIRef
    from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

    dqv = "http://www.w3.org/ns/dqv#"
    v = VOCAB
    ds = URIRef(f"{base}database/{r['code']}")
    g.add((catalog, DCAT.dataset, ds))
    g.add((ds, RDF.type, DCAT.Dataset))
    g.add((ds, DCTERMS.identifier, Literal(f"{r['unit_id']}/{r['code']}")))
    g.add((ds, DCTERMS.title, Literal(r["name"], lang="vi")))
    g.add((ds, DCTERMS.description, Literal(r["purpose"] or r["name"], lang="vi")))
    cls = URIRef(f"{NS}database-class/{r['class']}")
    g.add((ds, DCTERMS.type, cls))
    g.add((cls, RDF.type, SKOS.Concept))
    g.add((cls, SKOS.prefLabel, Literal(CLASS_LABELS[r["class"]][0], lang="vi")))
    g.add((cls, SKOS.prefLabel, Literal(CLASS_LABELS[r["class"]][1], lang="en")))
    g.add((cls, SKOS.inScheme, URIRef(f"{NS}database-class")))
    if r["owner"]:
        owner = URIRef(f"{ds}#owner")  # named, not a blank node: the same data serialises to the same file
        g.add((ds, DCTERMS.publisher, owner))
        g.add((owner, RDF.type, FOAF.Agent))
        g.add((owner, FOAF.name, Literal(r["owner"], lang="vi")))
    access = "PUBLIC" if r["is_open"] else "RESTRICTED" if r["is_shared"] else "NON_PUBLIC"
    rights = URIRef(EU_ACCESS + access)
    g.add((ds, DCTERMS.accessRights, rights))
    g.add((rights, RDF.type, DCTERMS.RightsStatement))
    for key, prop in (("open_categories", "openCategory"), ("shared_categories", "sharedCategory"),
                      ("sources", "source")):
        for item in filter(None, (r[key] or "").split(";")):
            g.add((ds, URIRef(v + prop), Literal(item)))
    if r["scope"]:
        g.add((ds, URIRef(v + "scope"), Literal(r["scope"], lang="vi")))
    g.add((ds, URIRef(v + "status"), Literal(r["status"])))
    if r["roadmap"]:
        g.add((ds, URIRef(v + "roadmap"), Literal(r["roadmap"], lang="vi")))
    if r["update_frequency"]:
        freq = URIRef(EU_FREQUENCY + r["update_frequency"])
        g.add((ds, DCTERMS.accrualPeriodicity, freq))
        g.add((freq, RDF.type, DCTERMS.Frequency))
    if r["last_updated"]:
        g.add((ds, DCTERMS.modified, Literal(r["last_updated"].replace("Z", "+00:00"), datatype=XSD.dateTime)))
    if r["quality_score"] is not None:
        m = URIRef(f"{ds}#quality")
        g.add((ds, URIRef(dqv + "hasQualityMeasurement"), m))
        g.add((m, RDF.type, URIRef(dqv + "QualityMeasurement")))
        g.add((m, URIRef(dqv + "isMeasurementOf"), URIRef(v + "qualityScore")))
        g.add((m, URIRef(dqv + "value"), Literal(float(r["quality_score"]), datatype=XSD.double)))
    return ds


def to_graph(cfg: TenantConfig, rows: list[dict[str, Any]]) -> Graph:
    from rdflib import Graph, Literal, URIRef
    from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF

    g = Graph()
    g.bind("dcat", DCAT)
    g.bind("dct", DCTERMS)
    g.bind("foaf", FOAF)
    g.bind("dqv", "http://www.w3.org/ns/dqv#")
    g.bind("th", VOCAB)
    base = unit_iri(cfg)
    catalog = URIRef(f"{base}database-catalogue")
    g.add((catalog, RDF.type, DCAT.Catalog))
    g.add((catalog, DCTERMS.title, Literal(f"Danh mục cơ sở dữ liệu — {cfg.display_name}", lang="vi")))
    g.add((catalog, DCTERMS.title, Literal(f"Database catalogue — {cfg.display_name_en or cfg.display_name}",
                                           lang="en")))
    g.add((catalog, DCTERMS.description, Literal(
        f"Danh mục cơ sở dữ liệu do {cfg.display_name} quản lý (Quyết định 1437/QĐ-TTg): tên, mục đích, phạm vi, "
        "nguồn, cơ quan chủ quản, phân loại, dữ liệu mở và chia sẻ, tần suất cập nhật, chất lượng.", lang="vi")))
    publisher = URIRef(f"{base}#publisher")
    g.add((catalog, DCTERMS.publisher, publisher))
    g.add((publisher, RDF.type, FOAF.Agent))
    g.add((publisher, FOAF.name, Literal(cfg.display_name, lang="vi")))
    g.add((catalog, DCTERMS.identifier, Literal(cfg.tenant_id)))
    for r in rows:
        add_database(g, catalog, r, base)
    return g


def publish(ctx: PublishContext) -> PublishResult:
    cfg = ctx.tenant
    if cfg.catalogue is None or not cfg.catalogue.databases:
        return PublishResult(TARGET, "skipped", message=f"tenant '{cfg.tenant_id}' lists no databases "
                             "(add 'catalogue: databases:' to its tenant file)")
    try:
        rows = records(cfg, ctx.snapshot)
    except TonghopError as exc:
        return PublishResult(TARGET, "failed", message=str(exc))
    out = ctx.output_root / OUT_DIR
    out.mkdir(parents=True, exist_ok=True)
    g = to_graph(cfg, rows)
    files = {
        f"{STEM}.csv": to_csv(rows),
        f"{STEM}_dictionary.csv": dictionary_csv(),
        f"{STEM}.ttl": g.serialize(format="turtle").encode(),
        f"{STEM}.jsonld": json.dumps(json.loads(g.serialize(format="json-ld")), ensure_ascii=False,
                                     indent=1, sort_keys=True).encode(),
    }
    changed = [name for name, data in files.items() if write_if_changed(out / name, data)]
    codes = [r["code"] for r in rows]
    return PublishResult(TARGET, "ok", written=codes if changed else [], unchanged=[] if changed else codes,
                         message=f"{len(rows)} databases in {out / (STEM + '.csv')}"
                                 + ("" if changed else " (unchanged)"))
