"""The open-data plan in the tenant file: its checks (one line naming the field), validate-config's table
check, lineage to sources, progress per phase and the scheduled task's skip."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml

from pipelines.config import load_tenant_file
from pipelines.errors import ConfigError
from pipelines.publish.plan import check_plan, compute_progress, feeding_sources, load_progress
from tests.conftest import project_path
from tests.publish.conftest import open_folder, publish


def _tenant_file(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(project_path("tenants", "ninh-binh.yaml").read_text(encoding="utf-8"))
    mutate(data["open_data"])
    path = tmp_path / "ninh-binh.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda p: p["datasets"][0].update(phase="dot_9"),
     "dataset 'ho_so_theo_tuan' names phase 'dot_9', which the plan does not have (phases: dot_1, dot_2)"),
    (lambda p: p["phases"][0]["required"].append("khong_co"), "phase 'dot_1' requires unknown dataset(s) khong_co"),
    (lambda p: p.update(review_months=12), "field 'open_data.review_months'"),
    (lambda p: p["datasets"][0].update(themes=["GOV"]), "theme 'GOV' is not an EU data theme"),
    (lambda p: p["datasets"][0].update(frequency="HOURLY"), "field 'open_data.datasets[0].frequency'"),
    (lambda p: p.update(licence="proprietary"), "field 'open_data.licence'"),
    (lambda p: p["datasets"][0].update(table="raw.ho_so"), "field 'open_data.datasets[0].table'"),
    (lambda p: p["datasets"].append(dict(p["datasets"][0])), "dataset ids must be unique; repeated: ho_so_theo_tuan"),
])
def test_plan_mistakes_are_one_line_naming_the_field(tmp_path, mutate, message):
    with pytest.raises(ConfigError) as err:
        load_tenant_file(_tenant_file(tmp_path, mutate))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_shipped_plans_validate_and_name_real_tables():
    for tenant in ("ninh-binh", "bo-khoa-hoc-cong-nghe"):
        cfg = load_tenant_file(project_path("tenants", f"{tenant}.yaml"))
        assert cfg.open_data and len(cfg.open_data.datasets) >= 5
        assert check_plan(cfg) == []


def test_validate_config_names_an_unknown_table(tmp_path, capsys):
    from pipelines.cli import main

    path = _tenant_file(tmp_path, lambda p: p["datasets"][0].update(table="marts.ho_so_tuan_x"))
    assert main(["validate-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert ("field 'open_data.datasets[ho_so_theo_tuan].table': 'marts.ho_so_tuan_x' is no published table"
            in err)


def test_lineage_from_open_table_to_sources():
    cfg = load_tenant_file(project_path("tenants", "ninh-binh.yaml"))
    assert feeding_sources(cfg, "marts.ho_so_tuan") == {"ho_so"}
    assert feeding_sources(cfg, "marts.xa_hoi_so_tinh") == {"chi_so_xa_hoi_so"}
    assert feeding_sources(cfg, "marts.chuyen_doi_so_chi_tieu") == {"ho_so", "chi_so_xa_hoi_so", "chi_so_cds_tinh"}
    ministry = load_tenant_file(project_path("tenants", "bo-khoa-hoc-cong-nghe.yaml"))
    assert feeding_sources(ministry, "marts.tan_so_theo_tinh") == {"giay_phep_tan_so"}


def test_progress_per_phase():
    plan = load_tenant_file(project_path("tenants", "ninh-binh.yaml")).open_data
    state = {"datasets": {k: {"version": "1.0.0", "issued": "2026-03-02T00:00:00+00:00"} for k in
                          ("ho_so_theo_tuan", "thoi_gian_xu_ly_ho_so", "chi_tieu_chuyen_doi_so")}}
    p = compute_progress(plan, state, {"ho_so_theo_xa_tuan": ["small"]}, today=date(2026, 9, 10))
    one, two = p["phases"]
    assert one["is_met"] and one["status"] == "met" and one["n_published_cumulative"] == 3
    assert one["planned"] == ["ho_so_theo_tuan", "thoi_gian_xu_ly_ho_so", "chi_tieu_chuyen_doi_so",
                              "xa_hoi_so_toan_tinh"]
    assert not two["is_met"] and two["status"] == "in_progress" and two["missing_required"] == ["xa_hoi_so_theo_xa"]
    assert two["refused"] == ["ho_so_theo_xa_tuan"]
    # first publication 2 March + 6 months: review due 2 September, overdue on 10 September
    assert p["review"] == {"period_months": 6, "last_review": None, "next_review_due": "2026-09-02",
                           "is_review_overdue": True}
    without_required = {"datasets": {"thoi_gian_xu_ly_ho_so": {"version": "1.0.0", "issued": "2026-03-02"},
                                     "chi_tieu_chuyen_doi_so": {"version": "1.0.0", "issued": "2026-03-02"},
                                     "xa_hoi_so_toan_tinh": {"version": "1.0.0", "issued": "2026-03-02"}}}
    late = compute_progress(plan, without_required, {}, today=date(2026, 9, 10))["phases"][0]
    assert late["status"] == "overdue" and late["missing_required"] == ["ho_so_theo_tuan"]


def test_progress_file_and_loader(province):
    publish(province)
    progress = load_progress(open_folder(province).parent)
    assert progress["n_planned"] == 6 and progress["n_published"] == 5
    assert [ph["id"] for ph in progress["phases"]] == ["dot_1", "dot_2"]
    assert progress["phases"][0]["is_met"] and not progress["phases"][1]["is_met"]
    assert list(progress["refusals"]) == ["ho_so_theo_xa_tuan"]
    assert json.loads((open_folder(province) / "progress.json").read_text())["n_published"] == 5


def test_no_publication_yet_loads_none(_isolated_home):
    assert load_progress(_isolated_home / "ninh-binh") is None


def test_scheduled_task_publishes_then_skips(province):
    from pipelines.publish.opendata import run_open_data_task

    first = run_open_data_task("ninh-binh", "dag_run_1")
    assert first["status"] == "ok" and first["n_written"] == 5 and first["n_refused"] == 1
    second = run_open_data_task("ninh-binh", "dag_run_2")
    assert second == {"status": "skipped", "message": "nothing open changed since the last publication",
                      "n_written": 0, "n_unchanged": 6, "n_refused": 0,
                      "catalogue_status": "ok", "ckan_status": "skipped"}  # catalogue: rewrites nothing unchanged
