"""The tenant's open-data catalogue as DCAT-AP 3 (rdflib): Catalog → Dataset → Distribution, serialised as
JSON-LD and Turtle. Checked in tests with pyshacl against the DCAT-AP 3.0.1 shapes in `shapes/dcat-ap-3.0.1/`.

Distribution URLs are `base_url` + path when the plan sets `base_url` (where `open_data/` is served), else
relative IRIs, resolved against the catalogue file's own location (the folder can be hosted anywhere).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

if TYPE_CHECKING:
    from pipelines.config import TenantConfig

DCAT_VERSION = URIRef("http://www.w3.org/ns/dcat#version")  # DCAT 3; not in rdflib's closed DCAT namespace
SPDX = Namespace("http://spdx.org/rdf/terms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
EU_FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
EU_LANGUAGE = "http://publications.europa.eu/resource/authority/language/"
IANA = "https://www.iana.org/assignments/media-types/"
FORMATS = {  # distribution format -> (IANA media type, EU file type)
    "csv": ("text/csv", "CSV"),
    "parquet": ("application/vnd.apache.parquet", "PARQUET"),
    "json": ("application/json", "JSON"),
}
# EU data-theme labels (the authority table's English labels; Vietnamese for the portal)
THEME_LABELS = {
    "AGRI": ("Nông nghiệp, thủy sản, lâm nghiệp và thực phẩm", "Agriculture, fisheries, forestry and food"),
    "ECON": ("Kinh tế và tài chính", "Economy and finance"),
    "EDUC": ("Giáo dục, văn hóa và thể thao", "Education, culture and sport"),
    "ENER": ("Năng lượng", "Energy"),
    "ENVI": ("Môi trường", "Environment"),
    "GOVE": ("Chính phủ và khu vực công", "Government and public sector"),
    "HEAL": ("Y tế", "Health"),
    "INTR": ("Vấn đề quốc tế", "International issues"),
    "JUST": ("Tư pháp, hệ thống pháp luật và an toàn công cộng", "Justice, legal system and public safety"),
    "OP_DATPRO": ("Dữ liệu tạm thời", "Provisional data"),
    "REGI": ("Vùng và đô thị", "Regions and cities"),
    "SOCI": ("Dân số và xã hội", "Population and society"),
    "TECH": ("Khoa học và công nghệ", "Science and technology"),
    "TRAN": ("Giao thông vận tải", "Transport"),
}
SHAPES_DIR = Path(__file__).parent / "shapes" / "dcat-ap-3.0.1"


def _iri(base: str, path: str) -> URIRef:
    return URIRef(base + path)


def _typed(g: Graph, node: URIRef, rdf_type: URIRef) -> URIRef:
    g.add((node, RDF.type, rdf_type))
    return node


def _agent(g: Graph, agent: URIRef, name: str, name_en: str = "") -> URIRef:
    g.add((agent, RDF.type, FOAF.Agent))
    g.add((agent, FOAF.name, Literal(name, lang="vi")))
    if name_en:
        g.add((agent, FOAF.name, Literal(name_en, lang="en")))
    return agent


def _when(value: str) -> Literal:
    return Literal(value, datatype=XSD.dateTime)


def build_catalog(cfg: TenantConfig, entries: list[dict[str, Any]]) -> Graph:
    """`entries`: one per dataset online (published now or earlier), as written to publish_report.json."""
    from pipelines.config import EU_FREQUENCY_BASE, EU_THEME_BASE, OPEN_LICENCES

    plan = cfg.open_data
    assert plan is not None
    base = plan.base_url or ""
    g = Graph()
    for prefix, ns in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("spdx", SPDX), ("vcard", VCARD),
                       ("skos", SKOS)):
        g.bind(prefix, ns)
    licence_uri, _ = OPEN_LICENCES[plan.licence]
    licence = _typed(g, URIRef(licence_uri), DCTERMS.LicenseDocument)
    # named nodes, not blank ones: the same catalogue serialises to the same bytes on every run
    publisher = _agent(g, _iri(base, "catalog#publisher"), plan.publisher, plan.publisher_en)
    contact = _iri(base, "catalog#contact")
    g.add((contact, RDF.type, VCARD.Kind))
    g.add((contact, RDF.type, VCARD.Organization))
    g.add((contact, VCARD.fn, Literal(plan.publisher, lang="vi")))
    g.add((contact, VCARD.hasEmail, URIRef(f"mailto:{plan.contact_email}")))

    catalog = _typed(g, _iri(base, "catalog"), DCAT.Catalog)
    g.add((catalog, DCTERMS.title, Literal(f"Dữ liệu mở — {cfg.display_name}", lang="vi")))
    g.add((catalog, DCTERMS.title, Literal(f"Open data — {cfg.display_name_en or cfg.display_name}", lang="en")))
    g.add((catalog, DCTERMS.description, Literal(
        f"Danh mục dữ liệu mở của {cfg.display_name}, tự do tái sử dụng, không chứa dữ liệu cá nhân.", lang="vi")))
    g.add((catalog, DCTERMS.description, Literal(
        f"Open-data catalogue of {cfg.display_name_en or cfg.display_name}: free to reuse, no personal data.",
        lang="en")))
    g.add((catalog, DCTERMS.publisher, publisher))
    g.add((catalog, DCTERMS.license, licence))
    for lang in ("VIE", "ENG"):
        g.add((catalog, DCTERMS.language, _typed(g, URIRef(EU_LANGUAGE + lang), DCTERMS.LinguisticSystem)))
    modified = max((e["modified"] for e in entries), default=None)
    if modified:
        g.add((catalog, DCTERMS.modified, _when(modified)))
    owners: dict[str, URIRef] = {}
    _typed(g, SPDX.checksumAlgorithm_sha256, SPDX.ChecksumAlgorithm)
    by_id = {d.id: d for d in plan.datasets}
    for e in entries:
        ds = by_id[e["id"]]
        node = _typed(g, _iri(base, f"{ds.id}/"), DCAT.Dataset)
        g.add((catalog, DCAT.dataset, node))
        g.add((node, DCTERMS.identifier, Literal(ds.id)))
        g.add((node, DCTERMS.title, Literal(ds.title, lang="vi")))
        g.add((node, DCTERMS.title, Literal(ds.title_en, lang="en")))
        g.add((node, DCTERMS.description, Literal(ds.description, lang="vi")))
        g.add((node, DCTERMS.description, Literal(ds.description_en, lang="en")))
        for kw in ds.keywords:
            g.add((node, DCAT.keyword, Literal(kw, lang="vi")))
        for kw in ds.keywords_en:
            g.add((node, DCAT.keyword, Literal(kw, lang="en")))
        for theme in ds.themes:
            concept = _typed(g, URIRef(EU_THEME_BASE + theme), SKOS.Concept)
            g.add((node, DCAT.theme, concept))
            label_vi, label_en = THEME_LABELS[theme]
            g.add((concept, SKOS.prefLabel, Literal(label_vi, lang="vi")))
            g.add((concept, SKOS.prefLabel, Literal(label_en, lang="en")))
        g.add((node, DCTERMS.accrualPeriodicity,
               _typed(g, URIRef(EU_FREQUENCY_BASE + ds.frequency), DCTERMS.Frequency)))
        if ds.owner and ds.owner != plan.publisher:
            if ds.owner not in owners:
                owners[ds.owner] = _agent(g, _iri(base, f"catalog#agent-{len(owners) + 1}"), ds.owner)
            owner = owners[ds.owner]
        else:
            owner = publisher
        g.add((node, DCTERMS.publisher, owner))
        g.add((node, DCAT.contactPoint, contact))
        g.add((node, DCTERMS.issued, _when(e["issued"])))
        g.add((node, DCTERMS.modified, _when(e["modified"])))
        g.add((node, DCAT_VERSION, Literal(e["version"])))
        for dist in e["distributions"]:
            media, file_type = FORMATS[dist["format"]]
            d = _typed(g, _iri(base, dist["path"]), DCAT.Distribution)
            g.add((node, DCAT.distribution, d))
            g.add((d, DCTERMS.title, Literal(f"{ds.title} ({dist['format'].upper()})", lang="vi")))
            g.add((d, DCTERMS.title, Literal(f"{ds.title_en} ({dist['format'].upper()})", lang="en")))
            g.add((d, DCAT.accessURL, _iri(base, dist["path"])))
            g.add((d, DCAT.downloadURL, _iri(base, dist["path"])))
            g.add((d, DCAT.mediaType, _typed(g, URIRef(IANA + media), DCTERMS.MediaType)))
            g.add((d, DCTERMS["format"], _typed(g, URIRef(EU_FILE_TYPE + file_type), DCTERMS.MediaTypeOrExtent)))
            g.add((d, DCAT.byteSize, Literal(dist["byte_size"], datatype=XSD.nonNegativeInteger)))
            g.add((d, DCTERMS.license, licence))
            g.add((d, DCTERMS.issued, _when(e["issued"])))
            g.add((d, DCTERMS.modified, _when(e["modified"])))
            checksum = _iri(base, dist["path"] + "#sha256")
            g.add((d, SPDX.checksum, checksum))
            g.add((checksum, RDF.type, SPDX.Checksum))
            g.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
            g.add((checksum, SPDX.checksumValue, Literal(dist["sha256"], datatype=XSD.hexBinary)))
    return g


def serialise(g: Graph) -> dict[str, bytes]:
    """catalog.ttl and catalog.jsonld, in a stable order (same graph, same bytes: unchanged files stay)."""
    ttl = g.serialize(format="turtle").encode("utf-8")
    jsonld = g.serialize(format="json-ld", indent=2, sort_keys=True, auto_compact=True).encode("utf-8")
    return {"catalog.ttl": ttl, "catalog.jsonld": jsonld}
