"""Database catalogue (CSV + DCAT-AP 3) and the national data map, from the two demo tenants published once per session
(province and ministry, no model training: the catalogues need no model), each published by the `opendata`
and `catalogue` targets. A near-duplicate database is planted in the ministry's catalogue."""

from __future__ import annotations

import csv
import json
import os
import shutil

import duckdb
import pytest

from pipelines.config import DatabaseEntry, load_tenant
from pipelines.publish import catalogue, datamap, opendata
from pipelines.publish.base import PublishContext
from tests.conftest import project_path

pytestmark = pytest.mark.integration

PROVINCE, MINISTRY = "ninh-binh", "bo-khoa-hoc-cong-nghe"
PLANTED = DatabaseEntry(code="csdl_can_bo_tiep_nhan", name="Dữ liệu cán bộ bộ phận một cửa cấp bộ", kind="noi_bo",
                        owner="Văn phòng Bộ", status="ke_hoach")


def shacl_violations(data_graph) -> str | None:
    """pyshacl against the DCAT-AP 3.0.1 shapes; None when it conforms. ranges.ttl of 3.0.1 lists 5 property
    shapes (sh:property) that neither file defines — a packaging defect upstream that stops pyshacl; only those
    dangling references are dropped, every defined shape is applied."""
    from pyshacl import validate
    from rdflib import Graph, Namespace

    sh = Namespace("http://www.w3.org/ns/shacl#")
    shapes = Graph()
    for name in ("dcat-ap-SHACL.ttl", "ranges.ttl"):
        shapes.parse(project_path("pipelines", "publish", "shapes", "dcat-ap-3.0.1", name))
    dangling = [(s, p, o) for s, p, o in shapes.triples((None, sh.property, None)) if (o, None, None) not in shapes]
    assert len(dangling) == 5
    for t in dangling:
        shapes.remove(t)
    conforms, _, text = validate(data_graph, shacl_graph=shapes, inference="none")
    return None if conforms else text


@pytest.fixture(scope="module")
def published(tmp_path_factory, province_snapshot, ministry_snapshot):
    """Both tenants' homes, copied from the session's published snapshots (tests/fixtures/snapshots.py: the
    same demo data and steps); the ministry's marts rebuilt with the planted database in its catalogue; then
    both published by the `opendata` and `catalogue` targets."""
    from pipelines.runner import run

    home = tmp_path_factory.mktemp("datamap_home")
    for snapshot in (province_snapshot, ministry_snapshot):
        tenant_home = snapshot.parent
        shutil.copytree(tenant_home, home / tenant_home.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGHOP_HOME", str(home))
        mp.setenv("TONGHOP_PII_KEY", "test-key-" + "0" * 40)
        ministry = load_tenant(MINISTRY)
        ministry = ministry.model_copy(update={"catalogue": ministry.catalogue.model_copy(
            update={"databases": [*ministry.catalogue.databases, PLANTED]})})
        mp.setenv("GX_ANALYTICS_ENABLED", "false")
        report = run(ministry, steps=["transform", "publish"], run_id="datamap")
        assert report.ok, report.summary()
        for cfg in (load_tenant(PROVINCE), ministry):
            ctx = PublishContext.for_tenant(cfg, "datamap")
            assert opendata.publish(ctx).status == "ok"
            assert catalogue.publish(ctx).status == "ok"
    return home


@pytest.fixture
def home(published, monkeypatch, tmp_path):
    """A copy of the published homes for this test (the map and republishing write into it)."""
    copy = tmp_path / "published"
    shutil.copytree(published, copy)
    monkeypatch.setenv("TONGHOP_HOME", str(copy))
    return copy


def test_database_catalogue_csv_matches_config_and_snapshot(home):
    cfg = load_tenant(PROVINCE)
    folder = home / PROVINCE / "open_data"
    raw = (folder / "database_catalogue.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert list(rows[0]) == list(catalogue.COLUMNS)
    assert sorted(r["code"] for r in rows) == sorted(d.code for d in cfg.catalogue.databases)
    by_code = {r["code"]: r for r in rows}
    tthc = by_code["csdl_tthc"]
    assert tthc["class"] == "dung_chung" and tthc["owner"] == "Văn phòng UBND tỉnh"
    assert tthc["sources"] == "ho_so;can_bo" and tthc["is_open"] == "true" and tthc["update_frequency"] == "DAILY"
    con = duckdb.connect(str(home / PROVINCE / "serving.duckdb"), read_only=True)
    loaded = con.execute("SELECT max(loaded_at) FROM meta.loads WHERE source IN ('ho_so', 'can_bo')").fetchone()[0]
    score = con.execute("SELECT avg(s) FROM (SELECT source, avg(score) s FROM meta.quality_scores "
                        "WHERE source IN ('ho_so', 'can_bo') GROUP BY source)").fetchone()[0]
    con.close()
    assert tthc["last_updated"] == loaded.astimezone(datamap.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert float(tthc["quality_score"]) == pytest.approx(score, abs=1e-4)
    # an external national database: no freshness or score of ours, restricted access
    dan_cu = by_code["csdl_quoc_gia_dan_cu"]
    assert dan_cu["last_updated"] == "" and dan_cu["quality_score"] == "" and dan_cu["is_shared"] == "true"
    dictionary = list(csv.DictReader((folder / "database_catalogue_dictionary.csv").read_text("utf-8-sig").splitlines()))
    assert [d["column"] for d in dictionary] == list(catalogue.COLUMNS)


def test_database_catalogue_dcat_conforms_and_is_stable(home):
    from rdflib import Graph, URIRef
    from rdflib.namespace import DCAT, DCTERMS, FOAF

    for tenant in (PROVINCE, MINISTRY):
        folder = home / tenant / "open_data"
        ttl = Graph().parse(folder / "database_catalogue.ttl")
        assert shacl_violations(ttl) is None
        jsonld = Graph().parse(folder / "database_catalogue.jsonld", format="json-ld")
        assert len(jsonld) == len(ttl) and shacl_violations(jsonld) is None
    ds = URIRef(f"{catalogue.NS}{PROVINCE}/database/csdl_quoc_gia_dan_cu")
    g = Graph().parse(home / PROVINCE / "open_data" / "database_catalogue.ttl")
    assert (ds, DCTERMS.type, URIRef(f"{catalogue.NS}database-class/quoc_gia")) in g
    assert (ds, DCTERMS.accessRights, URIRef(catalogue.EU_ACCESS + "RESTRICTED")) in g
    owner = g.value(ds, DCTERMS.publisher)
    assert str(g.value(owner, FOAF.name)) == "Bộ Công an"
    assert len(list(g.objects(None, DCAT.dataset))) == 4
    # a republish of the same snapshot rewrites nothing
    files = sorted((home / PROVINCE / "open_data").glob("database_catalogue*"))
    before = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files}
    again = catalogue.publish(PublishContext.for_tenant(load_tenant(PROVINCE), "again"))
    assert again.status == "ok" and again.written == [] and len(again.unchanged) == 4
    assert {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files} == before


def test_datamap_lists_units_classes_duplicates(home):
    result = datamap.build()
    assert result.changed and result.version == "1.0" and result.n_units == 2
    out = home / "datamap"
    con = duckdb.connect(str(out / "datamap.duckdb"), read_only=True)
    units = {r[0]: r[1:] for r in con.execute(
        "SELECT unit_id, n_databases, n_national, n_shared, n_internal, n_datasets FROM units").fetchall()}
    assert units[PROVINCE][:4] == (4, 1, 2, 1)
    assert units[MINISTRY][:4] == (7, 3, 3, 1)  # 6 configured + the planted one
    assert units[PROVINCE][4] >= 1 and units[MINISTRY][4] >= 1
    dups = con.execute("SELECT kind, unit_a, id_a, unit_b, id_b, score FROM duplicates").fetchall()
    pairs = {frozenset([(a, ia), (b, ib)]): s for _, a, ia, b, ib, s in dups}
    planted = frozenset([(MINISTRY, "csdl_can_bo_tiep_nhan"), (PROVINCE, "csdl_can_bo_mot_cua")])
    assert pairs[planted] >= 0.6
    assert pairs[frozenset([(MINISTRY, "csdl_quoc_gia_dan_cu"), (PROVINCE, "csdl_quoc_gia_dan_cu")])] == 1.0
    # different things do not pair: the frequency licences database with nothing of the province
    assert not any((MINISTRY, "csdl_tan_so_vo_tuyen_dien") in p for p in pairs)
    assert all(a != b for _, a, _, b, _, _ in dups)
    classes = dict(con.execute("SELECT class, count(*) FROM databases GROUP BY class").fetchall())
    assert classes == {"quoc_gia": 4, "dung_chung": 5, "noi_bo": 2}
    con.close()
    for name in ("units", "databases", "datasets", "duplicates"):
        n = duckdb.connect().execute(f"SELECT count(*) FROM '{out / 'parquet' / (name + '.parquet')}'").fetchone()[0]
        assert n > 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Tỉnh Ninh Bình" in page and "Bộ Khoa học và Công nghệ" in page and "Bản đồ dữ liệu Việt Nam" in page
    assert "<script src" not in page and "<link" not in page and "https://cdn" not in page
    data = json.loads(page.split('<script id="data" type="application/json">')[1].split("</script>")[0])
    assert {u["unit_id"] for u in data["units"]} == {PROVINCE, MINISTRY} and len(data["duplicates"]) == len(dups)


def test_datamap_dcat_catalogue_of_catalogues(home):
    from rdflib import Graph, URIRef
    from rdflib.namespace import DCAT

    datamap.build()
    g = Graph().parse(home / "datamap" / "catalog.ttl")
    root = URIRef(f"{catalogue.NS}datamap")
    assert {str(c) for c in g.objects(root, DCAT.catalog)} == {
        f"{catalogue.NS}{t}/catalog" for t in (PROVINCE, MINISTRY)}
    assert shacl_violations(g) is None
    assert len(Graph().parse(home / "datamap" / "catalog.jsonld", format="json-ld")) == len(g)


def test_datamap_version_bumps_only_on_change(home):
    from pipelines.cli import main

    first = datamap.build()
    stamp = {p.name: p.stat().st_mtime_ns for p in (home / "datamap").iterdir()}
    assert main(["datamap", "build"]) == 0
    second = json.loads((home / "datamap" / "version.json").read_text())
    assert second["version"] == first.version == "1.0"
    assert {p.name: p.stat().st_mtime_ns for p in (home / "datamap").iterdir()} == stamp
    # the province drops a database from its published catalogue: new content, new version
    path = home / PROVINCE / "open_data" / "database_catalogue.csv"
    lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    path.write_text("\ufeff" + "".join(line for line in lines if ",csdl_can_bo_mot_cua," not in line), "utf-8")
    third = datamap.build()
    assert third.changed and third.version == "1.1" and third.n_databases == first.n_databases - 1
    assert not any(p.name.startswith(".build") for p in (home / "datamap").iterdir())


def test_unpublished_tenant_is_listed_with_a_warning(home):
    shutil.rmtree(home / MINISTRY / "open_data")
    result = datamap.build()
    assert result.n_units == 2 and any(MINISTRY in p and "tonghop publish" in p for p in result.problems)
    con = duckdb.connect(str(home / "datamap" / "datamap.duckdb"), read_only=True)
    assert con.execute("SELECT is_published FROM units WHERE unit_id = ?", [MINISTRY]).fetchone()[0] is False
    con.close()


def test_datamap_dag_is_scheduled_on_every_tenants_assets(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project_path("dags", "tonghop_datamap.py")))
    assert bag.import_errors == {}
    dag = bag.dags["tonghop_datamap"]
    assert [t.task_id for t in dag.tasks] == ["build_datamap"]

    def uris(cond):
        return {cond.uri} if hasattr(cond, "uri") else set().union(*(uris(c) for c in getattr(cond, "objects", [])))

    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"
    tenants = [p.stem for p in sorted(project_path("tenants").glob("*.yaml"))]
    assert uris(condition) == {f"tonghop://{t}/{p}" for t in tenants for p in ("serving", "open_data")}
    assert os.environ["AIRFLOW_HOME"].startswith(str(tmp_path))
