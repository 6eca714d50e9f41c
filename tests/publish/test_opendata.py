"""`tonghop publish` (opendata) on both demo tenants: the files, the DCAT-AP 3 catalogue (pyshacl against the
official 3.0.1 shapes: zero violations), the Frictionless packages (valid), the report; the snapshot untouched."""

from __future__ import annotations

import hashlib
import json

import duckdb
import pytest

from tests.conftest import warehouse_state
from tests.publish.conftest import open_folder, publish


def shapes_graph():
    """The DCAT-AP 3.0.1 shapes as shipped. `ranges.ttl` lists 5 property shapes (sh:property) that neither
    file defines; pyshacl stops on such a reference, so those 5 dangling references are dropped — every
    shape that exists is applied."""
    from rdflib import Graph
    from rdflib.namespace import SH

    from pipelines.publish.dcat import SHAPES_DIR

    shapes = Graph()
    for f in sorted(SHAPES_DIR.glob("*.ttl")):
        shapes.parse(f)
    defined = set(shapes.subjects(SH.path, None))
    dangling = [(s, o) for s, o in shapes.subject_objects(SH.property) if o not in defined]
    assert len(dangling) == 5  # if SEMIC fixes the files, this workaround goes
    for s, o in dangling:
        shapes.remove((s, SH.property, o))
    return shapes


def shacl_results(path, fmt):
    import pyshacl
    from rdflib import Graph
    from rdflib.namespace import SH

    data = Graph().parse(path, format=fmt, publicID=path.as_uri())
    _, report, _ = pyshacl.validate(data, shacl_graph=shapes_graph(), inference="none")
    return data, [(str(report.value(r, SH.resultSeverity)), str(report.value(r, SH.resultPath)),
                   str(report.value(r, SH.resultMessage))) for r in report.subjects(SH.resultMessage, None)]


@pytest.mark.parametrize("tenant_fixture", ["province", "ministry"])
def test_catalogue_conforms_to_dcat_ap_3(tenant_fixture, request):
    cfg = request.getfixturevalue(tenant_fixture)
    result = publish(cfg)
    folder = open_folder(cfg)
    n_online = len(result.written)
    assert n_online >= 4
    from rdflib.namespace import DCAT, RDF

    for name, fmt in (("catalog.ttl", "turtle"), ("catalog.jsonld", "json-ld")):
        data, results = shacl_results(folder / name, fmt)
        assert results == [], results[:5]
        assert len(set(data.subjects(RDF.type, DCAT.Dataset))) == n_online
        assert len(set(data.subjects(RDF.type, DCAT.Distribution))) == 3 * n_online


def test_the_shapes_catch_a_broken_catalogue(province):
    """The check can fail: a dataset without a title and a distribution without accessURL are violations."""
    import pyshacl
    from rdflib import Graph
    from rdflib.namespace import DCAT, DCTERMS

    publish(province)
    folder = open_folder(province)
    data = Graph().parse(folder / "catalog.ttl", format="turtle", publicID=(folder / "catalog.ttl").as_uri())
    dataset = next(data.subjects(DCAT.distribution, None))
    data.remove((dataset, DCTERMS.title, None))
    data.remove((next(data.subjects(DCAT.accessURL, None)), DCAT.accessURL, None))
    from rdflib.namespace import SH

    conforms, report, _ = pyshacl.validate(data, shacl_graph=shapes_graph(), inference="none")
    assert not conforms
    paths = {report.value(r, SH.resultPath) for r in report.subjects(SH.resultMessage, None)}
    assert paths == {DCTERMS.title, DCAT.accessURL}


@pytest.mark.parametrize("tenant_fixture", ["province", "ministry"])
def test_every_datapackage_is_valid_frictionless(tenant_fixture, request):
    import frictionless

    cfg = request.getfixturevalue(tenant_fixture)
    publish(cfg)
    packages = sorted(open_folder(cfg).glob("*/datapackage.json"))
    assert len(packages) >= 4
    for path in packages:
        report = frictionless.validate(str(path))
        assert report.valid, (path.parent.name, report.flatten(["type", "message"])[:5])
        pkg = json.loads(path.read_text(encoding="utf-8"))
        assert [r["format"] for r in pkg["resources"]] == ["csv", "parquet", "json"]
        assert pkg["licenses"][0]["name"] == "CC-BY-4.0"
        fields = pkg["resources"][0]["schema"]["fields"]
        assert all(f.get("description") for f in fields), [f["name"] for f in fields if not f.get("description")]


def test_files_rows_checksums_and_report(province):
    result = publish(province, run_id="r1")
    folder = open_folder(province)
    report = json.loads((folder / "publish_report.json").read_text(encoding="utf-8"))
    assert report["run_id"] == "r1" and report["snapshot_run_id"] == "opendata"
    by_id = {d["id"]: d for d in report["datasets"]}
    assert set(by_id) == {d.id for d in province.open_data.datasets}
    assert sorted(result.written) == sorted(k for k, d in by_id.items() if d["status"] == "published")
    snap = duckdb.connect(str(folder.parent / "serving.duckdb"), read_only=True)
    try:
        for d in (d for d in report["datasets"] if d["status"] == "published"):
            assert d["version"] == "1.0.0"
            n = snap.execute(f"SELECT count(*) FROM {d['table']}").fetchone()[0]
            assert d["row_count"] == n > 0
            files = {x["format"]: folder / x["path"] for x in d["distributions"]}
            for x in d["distributions"]:
                data = (folder / x["path"]).read_bytes()
                assert x["byte_size"] == len(data) and x["sha256"] == hashlib.sha256(data).hexdigest()
            csv = files["csv"].read_bytes()
            assert csv.startswith(b"\xef\xbb\xbf") and not csv.startswith(b"\xef\xbb\xbf\xef\xbb\xbf")
            con = duckdb.connect()
            assert con.execute(f"SELECT count(*) FROM read_parquet('{files['parquet']}')").fetchone()[0] == n
            assert len(json.loads(files["json"].read_text(encoding="utf-8"))) == n
            assert con.execute(f"SELECT count(*) FROM read_csv('{files['csv']}')").fetchone()[0] == n
        # dropped columns are not published
        cols = json.loads((folder / "xa_hoi_so_theo_xa" / "datapackage.json").read_text())["resources"][0]
        assert "ma_xa_goc" not in {f["name"] for f in cols["schema"]["fields"]}
    finally:
        snap.close()


def test_reads_only_the_snapshot(province):
    """No warehouse.duckdb exists in this home, and the snapshot's content is the same after publishing."""
    folder = open_folder(province)
    snapshot = folder.parent / "serving.duckdb"
    before = warehouse_state(snapshot)
    publish(province)
    assert warehouse_state(snapshot) == before
    assert not (folder.parent / "warehouse.duckdb").exists()


def test_cli_publish(province, capsys):
    from pipelines.cli import main

    assert main(["publish", "--tenant", province.tenant_id]) == 0
    out = capsys.readouterr().out
    assert "opendata: ok — 5 written, 0 unchanged, 1 refused" in out
    assert "refused ho_so_theo_xa_tuan: dataset 'ho_so_theo_xa_tuan': column 'n_tiep_nhan'" in out
    assert main(["publish", "--tenant", province.tenant_id, "--target", "nowhere"]) == 2
    assert "unknown publish target 'nowhere'" in capsys.readouterr().err


def test_no_snapshot_is_one_clear_error(_isolated_home, capsys):
    from pipelines.cli import main

    assert main(["publish", "--tenant", "ninh-binh"]) == 2
    err = capsys.readouterr().err
    assert "no serving snapshot at" in err and "tonghop run --tenant ninh-binh" in err
    assert "Traceback" not in err
