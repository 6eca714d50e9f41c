"""Demo tenants for any of the 34 provinces of 2025: the multi-tenant load test and the cluster tests.

Each province gets a tenant file modelled on the demo province's (`tenants/ninh-binh.yaml`: the same
file-based sources — one-stop-shop database, digital-society workbook, officers, indicators, the two
business-registry exports — minus the web services, the catalogue and the open-data plan, which name
Ninh Bình's own systems) and its own generated data: its real communes (`vietnam-provinces`), its merged
legacy provinces' ward codes (`vietnamadminunits`), a seed of its own. Tenant files go to a folder the
caller names (a temp folder, listed by `TONGHOP_TENANTS_DIR`), never `tenants/`.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.settings import PROJECT_ROOT, TenantPaths

TEMPLATE = PROJECT_ROOT / "tenants" / "ninh-binh.yaml"
WEB_SOURCE_KINDS = ("api", "ckan")  # served by the demo's portals for Ninh Bình only
PROVINCE_SUITES = ("ho_so", "chi_so_xa_hoi_so")  # core suites whose reference lists name province 37
SUITE_SUFFIX = "_tinh"  # the province's own copy of a core suite: ho_so → ho_so_tinh


def province_codes() -> list[int]:
    """The 34 provinces' codes, in code order (1 Hà Nội … 96 Cà Mau)."""
    from vietnam_provinces import Province

    return sorted(p.code.value for p in Province.iter_all())


def province_tenant_id(code: int) -> str:
    from vietnam_provinces import Province

    province = next(p for p in Province.iter_all() if p.code.value == code)
    return province.codename.replace("_", "-")


def tenant_document(code: int, *, models: list[str] | None = None, sources: list[str] | None = None) -> dict:
    """The province's tenant settings (a mapping ready for YAML); `sources`: keep only these (default: all
    the file-based ones)."""
    import yaml

    from pipelines.demo.places import demo_province

    doc = yaml.load(TEMPLATE.read_bytes(), Loader=yaml.CSafeLoader)
    with demo_province(code) as name:
        tenant_id = province_tenant_id(code)
        doc.update(tenant_id=tenant_id, display_name=name, display_name_en=None, admin_code=f"{code:02d}")
    doc.pop("display_name_en")
    doc.pop("catalogue", None)
    doc.pop("open_data", None)
    doc["models"] = list(models or [])
    doc["sources"] = [s for s in doc["sources"] if s["kind"] not in WEB_SOURCE_KINDS
                      and (sources is None or s["name"] in sources)]
    for source in doc["sources"]:
        if source.get("expectation_suite") in PROVINCE_SUITES:
            source["expectation_suite"] += SUITE_SUFFIX
    return doc


def write_province_suites(code: int, out_dir: Path) -> list[Path]:
    """The province's own copies of the core suites whose reference lists name a province (`communes:37`,
    `units:37`): the same checks against this province's communes (pipelines/quality/reference.py)."""
    import json
    import re

    from pipelines.quality.reference import sync_suite
    from pipelines.settings import EXPECTATIONS_DIR

    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in PROVINCE_SUITES:
        core = EXPECTATIONS_DIR / "gx" / "expectations" / f"{name}.json"
        suite = json.loads(core.read_text(encoding="utf-8"))
        for e in suite["expectations"]:
            if e.get("meta", {}).get("reference"):
                e["meta"]["reference"] = re.sub(r":\d+$", f":{code}", e["meta"]["reference"])
        suite["name"] = f"{core.stem}{SUITE_SUFFIX}"  # a tenant suite may not reuse a core suite's name
        path = out_dir / f"{suite['name']}.json"
        path.write_text(json.dumps(suite, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        sync_suite(path)
        written.append(path)
    return written


def write_province(code: int, tenants_dir: Path, *, rows: int, seed: int | None = None,
                   models: list[str] | None = None, sources: list[str] | None = None) -> str:
    """Write the province's tenant file into `tenants_dir` and its source files into its data folder (under
    TONGHOP_HOME); returns its tenant id."""
    import yaml

    from pipelines.demo.generate import generate
    from pipelines.demo.places import demo_province, divided_ward_codes

    doc = tenant_document(code, models=models, sources=sources)
    tenants_dir.mkdir(parents=True, exist_ok=True)
    (tenants_dir / f"{doc['tenant_id']}.yaml").write_text(
        f"# {doc['display_name']}: a generated demo province (pipelines/demo/provinces.py)\n"
        + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    write_province_suites(code, tenants_dir / doc["tenant_id"] / "expectations")
    paths = TenantPaths.for_tenant(doc["tenant_id"]).ensure()
    with demo_province(code):
        # One planted fault is a dossier filed under a ward divided among several communes in 2025; 12 provinces
        # had none, so their data comes without the planted faults.
        generate(paths.sources, rows=rows, seed=seed if seed is not None else 1000 + code,
                 faults=bool(divided_ward_codes()))
    return doc["tenant_id"]
