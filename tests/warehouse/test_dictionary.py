"""The data dictionary covers every table a snapshot publishes: core and tenant SQL models, the marts the models
step writes, the meta tables, and the shared contracts. The ministry demo tenant (its own tenant models) is
built through every step once per module; the province's full run (model outputs) is checked in
tests/test_pipeline.py with the same `published_gaps`."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from pipelines.cli import main
from pipelines.config import load_tenant
from pipelines.dictionary import published_gaps, write_dictionary_table
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_ROWS

pytestmark = pytest.mark.integration
MINISTRY = "bo-khoa-hoc-cong-nghe"


@pytest.fixture(scope="module")
def ministry(tmp_path_factory, demo_portals):
    from pipelines.demo.ministry import api as ministry_api
    from pipelines.demo.ministry import generate_ministry
    from pipelines.demo.servers import PORT_ENV

    sources = tmp_path_factory.mktemp("ministry_sources")
    generate_ministry(sources, rows=DEMO_ROWS, seed=37)
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGHOP_HOME", str(home))
        mp.setenv("TONGHOP_PII_KEY", "test-key-" + "0" * 40)
        mp.setenv("GX_ANALYTICS_ENABLED", "false")
        mp.setenv(PORT_ENV, str(demo_portals.server_address[1]))
        mp.setenv(ministry_api.TOKEN_ENV, demo_portals.ministry_token)
        cfg = load_tenant(MINISTRY)
        paths = TenantPaths.for_tenant(MINISTRY).ensure()
        shutil.copytree(sources, paths.sources, dirs_exist_ok=True)
        report = run(cfg, run_id="r1")
        assert report.ok, report.summary()
    return home, paths, report


def _q(path, sql):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_ministry_tenant_models_build_and_are_published(ministry):
    _, paths, report = ministry
    tables = next(r for r in report.results if r.step == "transform").metrics["tables"]
    order = list(tables)
    assert order.index("staging.dm_tinh") < order.index("staging.giay_phep_tan_so") \
        < order.index("marts.tan_so_theo_tinh")
    # 750 licences exported (tests/demo/test_ministry.py); the mart has every province for every licence type
    assert tables["staging.giay_phep_tan_so"] == 750
    n_types = _q(paths.snapshot, "SELECT count(DISTINCT loai_giay_phep) FROM staging.giay_phep_tan_so")[0][0]
    assert tables["marts.tan_so_theo_tinh"] == 34 * n_types
    assert _q(paths.snapshot, "SELECT sum(n_giay_phep) FROM marts.tan_so_theo_tinh") == [(750,)]


def test_every_table_and_column_of_the_ministry_snapshot_is_described(ministry):
    _, paths, _ = ministry
    with duckdb.connect(str(paths.snapshot), read_only=True) as con:
        assert published_gaps(con) == []
        in_snapshot = {f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = current_database()"
        ).fetchall()}
        documented = dict(con.execute("SELECT DISTINCT table_schema || '.' || table_name, model_source "
                                      "FROM meta.data_dictionary").fetchall())
        fed = dict(con.execute("SELECT DISTINCT contract, fed_by FROM meta.data_contracts").fetchall())
    assert set(documented) == in_snapshot and len(in_snapshot) >= 29
    assert "meta.file_fingerprints" not in in_snapshot  # server paths stay in the warehouse
    assert documented["staging.giay_phep_tan_so"] == documented["marts.tan_so_theo_tinh"] == "tenant"
    assert documented["meta.snapshot"] == documented["meta.data_dictionary"] == "meta"
    assert documented["staging.ho_so"] == "core"
    assert fed["ho_so"] == ["ho_so_dvc_bo"] and fed["chi_so_xa_hoi_so"] == ["bao_cao_xa_hoi_so_tinh"]
    assert fed["phan_anh"] == [] and len(fed) == 7


def test_a_new_undocumented_table_is_a_gap(ministry, tmp_path):
    _, paths, _ = ministry
    copy = tmp_path / "serving.duckdb"
    shutil.copy(paths.snapshot, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("CREATE TABLE marts.bang_moi AS SELECT 1 AS cot_moi")
        con.execute("ALTER TABLE staging.ho_so ADD COLUMN cot_them INTEGER")
        write_dictionary_table(con, load_tenant(MINISTRY))
        assert published_gaps(con) == ["marts.bang_moi", "marts.bang_moi.cot_moi", "staging.ho_so.cot_them"]


def test_rendered_dictionary_has_tenant_models_meta_and_contracts(ministry, monkeypatch, capsys):
    home, paths, _ = ministry
    monkeypatch.setenv("TONGHOP_HOME", str(home))
    assert main(["dictionary", "--tenant", MINISTRY]) == 0
    md = (paths.root / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    for heading in ("## `marts.tan_so_theo_tinh`", "## `staging.giay_phep_tan_so`", "## `meta.quality_scores`",
                    "### contract `ho_so`"):
        assert heading in md
    assert "Nguồn cung cấp / fed by: ho_so_dvc_bo" in md
    n_tables = _q(paths.snapshot, "SELECT count(DISTINCT table_schema || table_name) FROM meta.data_dictionary")[0][0]
    assert (paths.root / "docs" / "data-dictionary.html").read_text(encoding="utf-8").count("<h2") == n_tables
    capsys.readouterr()
