"""Tenant-owned SQL models (`tenants/<tenant>/warehouse/{staging,marts}/*.sql`): built with the core models in one
dependency order, documented, published; every configuration mistake is one line from `validate-config` and
stops a run before anything is built.

A small temporary tenant (one CSV source) in its own tenants folder (`TONGHOP_TENANTS_DIR`): its staging model
reads `src_tram_do` and the core `staging.dm_tinh`, its mart reads its staging model. Built once per module.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.config import load_tenant
from pipelines.errors import ConfigError
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.conftest import warehouse_state

pytestmark = pytest.mark.integration
TENANT = "thu-nghiem"
STEPS = ["extract_load", "validate", "transform", "publish"]

TENANT_YAML = f"""\
tenant_id: {TENANT}
display_name: Đơn vị thử nghiệm
kind: province
admin_code: "99"
sources:
  - name: tram_do
    kind: csv
    description: Trạm đo thử nghiệm
    location: sources/tram_do.csv
    primary_key: [ma_tram]
"""
# 6 stations in 3 provinces (01 Hà Nội, 79 TP. Hồ Chí Minh, 31 Hải Phòng), codes without the leading zero.
CSV = "ma_tram,ma_tinh,gia_tri\nT1,1,10\nT2,1,5\nT3,79,7\nT4,79,1\nT5,79,2\nT6,31,4\n"
EXPECTED = {"01": (2, 15), "79": (3, 10), "31": (1, 4)}

STAGING_SQL = """-- staging.tram_do: stations, province code padded; reads the core staging.dm_tinh too
select s.ma_tram, lpad(s.ma_tinh::varchar, 2, '0') as ma_tinh, s.gia_tri::double as gia_tri, p.ten_tinh
from src_tram_do as s
left join staging.dm_tinh as p on p.ma_tinh = lpad(s.ma_tinh::varchar, 2, '0')
"""
MART_SQL = """select ma_tinh, any_value(ten_tinh) as ten_tinh, count(*) as n_tram, sum(gia_tri) as tong_gia_tri
from staging.tram_do group by ma_tinh order by ma_tinh
"""


def _doc(name: str, columns: list[str], description: bool = True) -> str:
    lines = [f"name: {name}"]
    if description:
        lines += ["description:", f"  vi: Bảng thử nghiệm {name}", f"  en: Test table {name}"]
    lines += ["grain: ma_tram", "owner: thử nghiệm", "columns:"]
    lines += [f"- name: {c}\n  description: Cột {c} — column {c}" for c in columns]
    return "\n".join(lines) + "\n"


def write_tenant(root: Path) -> Path:
    """The temp tenant's YAML and models under `root` (a tenants folder); returns its models folder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{TENANT}.yaml").write_text(TENANT_YAML, encoding="utf-8")
    models = root / TENANT / "warehouse"
    for layer in ("staging", "marts"):
        (models / layer).mkdir(parents=True, exist_ok=True)
    add_model(models, "staging", "tram_do", STAGING_SQL, ["ma_tram", "ma_tinh", "gia_tri", "ten_tinh"])
    add_model(models, "marts", "tram_do_theo_tinh", MART_SQL, ["ma_tinh", "ten_tinh", "n_tram", "tong_gia_tri"])
    return models


def add_model(models: Path, layer: str, name: str, sql: str, columns: list[str] | None = None, **doc) -> Path:
    path = models / layer / f"{name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sql, encoding="utf-8")
    if columns is not None:
        path.with_suffix(".yml").write_text(_doc(name, columns, **doc), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("tenant_models")
    home, tenants = base / "home", base / "tenants"
    write_tenant(tenants)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGHOP_HOME", str(home))
        mp.setenv("TONGHOP_TENANTS_DIR", str(tenants))
        mp.setenv("TONGHOP_PII_KEY", "test-key-" + "0" * 40)
        mp.setenv("GX_ANALYTICS_ENABLED", "false")
        cfg = load_tenant(TENANT)
        paths = TenantPaths.for_tenant(TENANT).ensure()
        (paths.sources / "tram_do.csv").write_text(CSV, encoding="utf-8")
        report = run(cfg, steps=STEPS, run_id="r1")
        assert report.ok, report.summary()
    return base, report


@pytest.fixture
def tenant_copy(built, tmp_path, monkeypatch):
    """A writable copy of the built home and the tenants folder, pointed at by the environment."""
    base, _ = built
    shutil.copytree(base / "home", tmp_path / "home")
    shutil.copytree(base / "tenants", tmp_path / "tenants")
    monkeypatch.setenv("TONGHOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(tmp_path / "tenants"))
    return tmp_path / "tenants", tmp_path / "tenants" / TENANT / "warehouse"


def test_tenant_models_build_after_the_core_ones_and_are_published(built):
    base, report = built
    transform = next(r for r in report.results if r.step == "transform")
    order = list(transform.metrics["tables"])
    # the tenant's staging model after the core table it reads, its mart after its staging model
    assert order.index("staging.dm_tinh") < order.index("staging.tram_do") < order.index("marts.tram_do_theo_tinh")
    assert transform.metrics["tables"]["staging.tram_do"] == 6
    con = duckdb.connect(str(base / "home" / TENANT / "serving.duckdb"), read_only=True)
    try:
        got = {m: (n, t) for m, _, n, t in con.execute("SELECT * FROM marts.tram_do_theo_tinh").fetchall()}
        names = dict(con.execute("SELECT ma_tinh, ten_tinh FROM marts.tram_do_theo_tinh").fetchall())
        dictionary = con.execute("SELECT DISTINCT table_schema || '.' || table_name, model_source, "
                                 "table_description_en FROM meta.data_dictionary WHERE model_source = 'tenant' "
                                 "ORDER BY 1").fetchall()
        from pipelines.dictionary import published_gaps

        gaps = published_gaps(con)
    finally:
        con.close()
    assert got == EXPECTED
    assert all(names[code] for code in EXPECTED), names  # the core staging.dm_tinh joined in
    assert dictionary == [("marts.tram_do_theo_tinh", "tenant", "Test table tram_do_theo_tinh"),
                          ("staging.tram_do", "tenant", "Test table tram_do")]
    assert gaps == []


def test_dependency_order_is_core_first_and_tenant_models_last(built, monkeypatch):
    base, _ = built
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(base / "tenants"))
    from pipelines.warehouse import sql_models

    models = sql_models(tenant=load_tenant(TENANT))
    names = [m.qualified for m in models]
    core = [m.qualified for m in sql_models()]
    assert [n for n in names if n in core] != [] and set(names) - set(core) == {"staging.tram_do",
                                                                                "marts.tram_do_theo_tinh"}
    for i, m in enumerate(models):  # every model after everything it references
        assert m.refs - {m.qualified} <= set(names[:i]) | (m.refs - set(names)), m.qualified
    assert all(m.tenant is None for m in models if m.qualified in core)
    assert [m.tenant for m in models if m.qualified not in core] == [TENANT, TENANT]


def test_rendered_dictionary_lists_tenant_models_and_contracts(built, monkeypatch, capsys):
    base, _ = built
    monkeypatch.setenv("TONGHOP_HOME", str(base / "home"))
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(base / "tenants"))
    assert main(["dictionary", "--tenant", TENANT]) == 0
    md = (base / "home" / TENANT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert "## `staging.tram_do`" in md and "## `marts.tram_do_theo_tinh`" in md and "Cột tong_gia_tri" in md
    assert "## `meta.loads`" in md and "### contract `ho_so`" in md
    capsys.readouterr()


# --- configuration errors -------------------------------------------------------------------------------

def _break(models: Path, case: str) -> tuple[str, str]:
    """Apply one mistake; returns (the model file the line must name, what the line must say)."""
    if case == "clash_core":
        add_model(models, "staging", "ho_so", "select 1 as x", ["x"])
        return "staging/ho_so.sql", "clashes with the core table staging.ho_so"
    if case == "clash_model_output":
        add_model(models, "marts", "du_bao_ho_so_tuan", "select 1 as x", ["x"])
        return "marts/du_bao_ho_so_tuan.sql", "clashes with marts.du_bao_ho_so_tuan, which models/inflow_forecast.py"
    if case == "missing_table":
        add_model(models, "marts", "thieu", "select * from staging.khong_co", ["x"])
        return "marts/thieu.sql", "reads staging.khong_co, which neither the core nor the tenant defines"
    if case == "reads_unbuilt_core":  # the core staging.can_bo needs contract_can_bo, which no source feeds
        add_model(models, "marts", "can_bo_tinh", "select * from staging.can_bo", ["x"])
        return "marts/can_bo_tinh.sql", "reads staging.can_bo, which this tenant does not build (it needs contract_can_bo)"
    if case == "reads_model_output":
        add_model(models, "marts", "doc_du_bao", "select * from marts.du_bao_ho_so_tuan", ["x"])
        return "marts/doc_du_bao.sql", "writes after the SQL models are built"
    if case == "unknown_source":
        add_model(models, "staging", "nguon_la", "select * from src_khong_co", ["x"])
        return "staging/nguon_la.sql", "reads src_khong_co, but the tenant has no source 'khong_co'"
    if case == "contract_not_fed":
        add_model(models, "staging", "pa", "select * from contract_phan_anh", ["x"])
        return "staging/pa.sql", "reads contract_phan_anh, but no source of the tenant feeds it"
    if case == "unknown_contract":
        add_model(models, "staging", "hd", "select * from contract_khong_co", ["x"])
        return "staging/hd.sql", "there is no such contract"
    if case == "cycle":
        add_model(models, "marts", "vong_a", "select * from marts.vong_b", ["x"])
        add_model(models, "marts", "vong_b", "select * from marts.vong_a", ["x"])
        return "marts/vong_a.sql", "cycle marts.vong_a → marts.vong_b → marts.vong_a"
    if case == "no_doc":
        add_model(models, "marts", "khong_tai_lieu", "select 1 as x")
        return "marts/khong_tai_lieu.sql", "has no .yml doc — add khong_tai_lieu.yml"
    if case == "doc_without_description":
        add_model(models, "marts", "mo_ta", "select 1 as x", ["x"], description=False)
        return "marts/mo_ta.sql", "needs `description: {vi: …, en: …}`"
    if case == "bad_name":
        add_model(models, "marts", "Tram-Do", "select 1 as x", ["x"])
        return "marts/Tram-Do.sql", "not a valid table name"
    if case == "reads_raw":
        add_model(models, "staging", "tho", "select * from raw.tram_do", ["x"])
        return "staging/tho.sql", "reads the raw layer"
    if case == "symlink_out":
        outside = models.parent.parent.parent / "outside.sql"
        outside.write_text("select 1 as x", encoding="utf-8")
        (models / "marts" / "lien_ket.sql").symlink_to(outside)
        (models / "marts" / "lien_ket.yml").write_text(_doc("lien_ket", ["x"]), encoding="utf-8")
        return "marts/lien_ket.sql", "is a link or not a regular file"
    if case == "folder_symlink_out":
        outside = models.parent.parent.parent / "outside_marts"
        shutil.move(models / "marts", outside)
        (models / "marts").symlink_to(outside, target_is_directory=True)
        return "warehouse/marts", "is a link or not a folder"
    raise AssertionError(case)


CASES = ["clash_core", "clash_model_output", "missing_table", "reads_unbuilt_core", "reads_model_output", "unknown_source",
         "contract_not_fed", "unknown_contract", "cycle", "no_doc", "doc_without_description", "bad_name",
         "reads_raw", "symlink_out", "folder_symlink_out"]


@pytest.mark.parametrize("case", CASES)
def test_each_mistake_is_one_line_from_validate_config(case, tenant_copy, capsys):
    tenants, models = tenant_copy
    where, what = _break(models, case)
    assert main(["validate-config", str(tenants / f"{TENANT}.yaml")]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error ")]
    assert len(lines) == 1, err  # exactly this mistake, nothing else reported
    line = lines[0]
    assert f"{TENANT}.yaml" in line and where in line and what in line, line
    assert " — " in line  # and the fix


def test_the_good_tenant_validates(tenant_copy, capsys):
    tenants, _ = tenant_copy
    assert main(["validate-config", str(tenants / f"{TENANT}.yaml")]) == 0
    assert "1 valid, 0 invalid" in capsys.readouterr().out


def test_a_run_with_a_bad_model_fails_before_building_anything(tenant_copy):
    _, models = tenant_copy
    warehouse = TenantPaths.for_tenant(TENANT).warehouse
    before = warehouse_state(warehouse)
    _break(models, "cycle")
    report = run(TENANT, steps=["transform", "publish"], run_id="r2")
    assert report.failed_step == "transform"
    assert "cycle marts.vong_a → marts.vong_b → marts.vong_a" in report.error
    assert warehouse_state(warehouse) == before


def test_doc_listing_columns_the_select_does_not_return_fails_the_transform(tenant_copy):
    _, models = tenant_copy
    warehouse = TenantPaths.for_tenant(TENANT).warehouse
    before = warehouse_state(warehouse)
    doc = models / "marts" / "tram_do_theo_tinh.yml"
    doc.write_text(_doc("tram_do_theo_tinh", ["ma_tinh", "ten_tinh", "n_tram", "tong", "trung_binh"]),
                   encoding="utf-8")
    report = run(TENANT, steps=["transform"], run_id="r3")
    assert report.failed_step == "transform"
    assert "marts/tram_do_theo_tinh.yml: model marts.tram_do_theo_tinh: documents column(s) tong, trung_binh " \
           "the SELECT does not return and does not document column(s) tong_gia_tri" in report.error
    assert warehouse_state(warehouse) == before


def test_cycle_among_core_and_tenant_models_is_named(tenant_copy):
    from pipelines.warehouse import SqlModel, find_cycle, topological

    _, models = tenant_copy
    a = add_model(models, "staging", "a", "select * from marts.b")
    b = add_model(models, "marts", "b", "select * from staging.a")
    graph = [SqlModel("staging", "a", a, tenant=TENANT), SqlModel("marts", "b", b, tenant=TENANT)]
    assert find_cycle({"staging.a": {"marts.b"}, "marts.b": {"staging.a"}}) == ["marts.b", "staging.a", "marts.b"]
    with pytest.raises(ConfigError, match="cycle marts.b → staging.a → marts.b"):
        topological(graph)


def test_a_value_a_model_cannot_use_fails_transform_with_one_line_and_changes_nothing(tenant_copy):
    """Data-dependent failures (a cast that works on yesterday's rows, not today's) are a sentence naming the
    model's file and what it reads, never a DuckDB traceback; the transaction leaves every table as it was."""
    _, models = tenant_copy
    warehouse = TenantPaths.for_tenant(TENANT).warehouse
    before = warehouse_state(warehouse)
    (models / "staging" / "tram_do.sql").write_text(
        STAGING_SQL.replace("s.gia_tri::double as gia_tri", "(s.ma_tram || s.gia_tri)::double as gia_tri"),
        encoding="utf-8")
    report = run(TENANT, steps=["transform"], run_id="r4")
    assert report.failed_step == "transform"
    assert report.error.startswith(f"building staging.tram_do (tenants/{TENANT}/warehouse/staging/tram_do.sql)")
    assert "ConversionException" in report.error and "src_tram_do" in report.error
    assert "Nothing was changed" in report.error and "\n" not in report.error
    assert warehouse_state(warehouse) == before
