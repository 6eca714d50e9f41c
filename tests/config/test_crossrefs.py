"""validate-config's cross-references: suites that exist, models that exist, and each model's inputs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.crossrefs import check_crossrefs, model_requirements

BASE = """
tenant_id: {tid}
display_name: Đơn vị thử
kind: province
admin_code: "97"
sources:
{sources}
models: {models}
"""
HO_SO = """  - name: ho_so_a
    kind: csv
    location: sources/a.csv
    options: {{types: {{ngay_nhan: DATE}}}}
    primary_key: [ma_ho_so]
    contract: ho_so
    expectation_suite: {suite}
"""
CAN_BO = """  - name: can_bo_a
    kind: csv
    location: sources/c.csv
    options: {types: {so_can_bo: INTEGER}}
    primary_key: [co_quan]
    contract: can_bo
"""


def _write(tenants: Path, tid: str, sources: str, models: str = "[]") -> Path:
    path = tenants / f"{tid}.yaml"
    path.write_text(textwrap.dedent(BASE.format(tid=tid, sources=sources, models=models)), encoding="utf-8")
    return path


@pytest.fixture
def tenants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "tenants"
    folder.mkdir()
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(folder))
    return folder


def test_the_shipped_tenants_pass_and_models_declare_their_inputs():
    assert main(["validate-config"]) == 0
    assert model_requirements("staffing") == {"REQUIRES": ("ho_so", "can_bo"), "REQUIRES_ANY": (),
                                              "REQUIRES_MODELS": ("inflow_forecast",)}
    assert model_requirements("anomalies")["REQUIRES_ANY"] == ("chi_so_xa_hoi_so", "ho_so")
    for name in ("inflow_forecast", "overdue_risk"):
        assert model_requirements(name)["REQUIRES"] == ("ho_so",)


def test_each_broken_reference_is_one_line(tenants: Path, capsys: pytest.CaptureFixture):
    path = _write(tenants, "sai-tham-chieu", HO_SO.format(suite="khong_co"),
                  "[overdue_risk, du_bao_thoi_tiet, staffing, anomalies]")
    assert main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err
    lines = [x.removeprefix("error ") for x in err.strip().splitlines()]
    assert len(lines) == 4, err
    assert lines[0].startswith(f"{path}: source 'ho_so_a': expectation_suite 'khong_co' does not exist — expected "
                               "expectations/gx/expectations/khong_co.json or tenants/sai-tham-chieu/expectations/"
                               "khong_co.json (known: chi_so_xa_hoi_so, ho_so)")
    assert lines[1] == (f"{path}: models: 'du_bao_thoi_tiet' is not a known model — expected one of anomalies, "
                        "inflow_forecast, overdue_risk, staffing (models/__init__.py REGISTRY)")
    assert lines[2].startswith(f"{path}: model 'staffing' needs the shared contract(s) can_bo, which no source of "
                               "this tenant feeds (fed: ho_so) — add a source with `contract: can_bo`")
    assert lines[3] == (f"{path}: model 'staffing' reads the output of model 'inflow_forecast', which is not in "
                        "`models:` — add 'inflow_forecast' (in any position: models train in the order of their "
                        "declared dependencies), or remove 'staffing'")


def test_tenant_suites_drafts_and_clashes(tenants: Path, capsys: pytest.CaptureFixture):
    own = tenants / "co-bo-rieng" / "expectations"
    own.mkdir(parents=True)
    path = _write(tenants, "co-bo-rieng", HO_SO.format(suite="ho_so_rieng") + CAN_BO,
                  "[inflow_forecast, staffing, anomalies]")
    (own / "ho_so_rieng.suggested.json").write_text('{"name": "ho_so_rieng", "expectations": []}', encoding="utf-8")
    assert main(["validate-config", str(path)]) == 2  # a draft is not a suite
    assert "ho_so_rieng.suggested.json is a draft of `tonghop suggest-suite` — review it and rename it to " \
           "ho_so_rieng.json" in capsys.readouterr().err
    (own / "ho_so_rieng.json").write_text(json.dumps({"name": "ho_so_rieng", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "ma_ho_so"}}]}), encoding="utf-8")
    assert main(["validate-config", str(path)]) == 0  # its models have every input: ho_so and can_bo
    (own / "ho_so.json").write_text('{"name": "ho_so", "expectations": []}', encoding="utf-8")  # core name
    (own / "ho_so_rieng.json").write_text("{not json", encoding="utf-8")
    assert main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "has the name of a core suite 'ho_so'" in err
    assert "source 'ho_so_a': expectation_suite 'ho_so_rieng': " in err and "not a readable expectation suite" in err


def test_anomalies_needs_one_of_its_contracts(tenants: Path):
    from pipelines.config import TenantConfig

    cfg = TenantConfig.model_validate({"tenant_id": "chi-can-bo", "display_name": "Đơn vị", "kind": "ministry",
                                       "admin_code": "CB", "models": ["anomalies"], "sources": [
                                           {"name": "can_bo_a", "kind": "csv", "location": "sources/c.csv",
                                            "primary_key": ["co_quan"], "contract": "can_bo"}]})
    assert check_crossrefs(cfg, "f.yaml") == [
        "f.yaml: model 'anomalies' needs one of the shared contracts chi_so_xa_hoi_so, ho_so, and no source of this "
        "tenant feeds any (fed: can_bo) — add such a source, or remove 'anomalies' from `models:`"]
