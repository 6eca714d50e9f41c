"""The procedures page shows the staffing replay of the last quarter (marts.can_bo_mo_phong): late dossiers with
the actual roster and with the plan, and the officers on each, in Vietnamese number format first, English on the
toggle. The table is written into a copy of the session's published demo snapshot (tests/fixtures/snapshots.py)."""

from __future__ import annotations

import os
import shutil
from datetime import date

import duckdb
import pandas as pd
import pytest

from apps import fmt
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_TENANT, project_path
from tests.security.signin import signed_in

pytestmark = pytest.mark.integration

REPLAY = pd.DataFrame({
    "tu_ngay": [date(2025, 7, 28)] * 3, "den_ngay": [date(2025, 10, 26)] * 3,
    "co_quan": ["Sở Tư pháp", "UBND phường Duy Tân", "Toàn tỉnh"],
    "n_ho_so": [9000, 3345, 12345], "so_can_bo_thuc_te": [40, 9, 49], "so_can_bo_ke_hoach": [38, 11, 49],
    "n_qua_han_ghi_nhan": [700, 512, 1212], "n_qua_han_thuc_te": [720, 514, 1234],
    "n_qua_han_ke_hoach": [745, 242, 987], "la_tong": [False, False, True], "model_version": ["staffing-x"] * 3})


@pytest.fixture
def province_with_replay(province_snapshot, _isolated_home, monkeypatch):
    paths = TenantPaths.for_tenant(DEMO_TENANT)
    paths.root.mkdir(parents=True, exist_ok=True)
    shutil.copy(province_snapshot, paths.snapshot)
    shutil.copy(province_snapshot.parent / "runs.jsonl", paths.run_log)
    with duckdb.connect(str(paths.snapshot)) as con:
        con.register("replay_df", REPLAY)
        con.execute("CREATE TABLE marts.can_bo_mo_phong AS SELECT * FROM replay_df")
    monkeypatch.setenv("TONGHOP_TENANT", DEMO_TENANT)
    return paths


def test_the_procedures_page_shows_late_dossiers_with_the_plan_vs_the_roster(province_with_replay):
    at = signed_in(str(project_path("apps", "pages", "3_Thu_tuc_hanh_chinh.py")), "lanh_dao",
                   os.environ["TONGHOP_TENANT"])
    assert not at.exception, [e.message for e in at.exception]
    assert any(h.value == "Bố trí cán bộ: mô phỏng quý vừa qua" for h in at.subheader)
    shown = {m.label: (m.value, m.proto.delta) for m in at.metric}
    assert shown["Hồ sơ quá hạn với số cán bộ thực tế"][0] == "1.234"
    assert shown["Hồ sơ quá hạn với kế hoạch của mô hình"] == ("987", "-247")
    assert shown["Cán bộ: thực tế / kế hoạch"][0] == "49 / 49"
    assert any("12.345 hồ sơ" in c.value and "28/07/2025" in c.value and "1.212" in c.value for c in at.caption)
    table = at.dataframe[-1].value  # the section closes the page: the agencies the plan changes, no total row
    assert table.iloc[:, 0].tolist() == ["Sở Tư pháp", "UBND phường Duy Tân"]

    at.sidebar.radio(key="w_lang").set_value("English").run()
    assert not at.exception, [e.message for e in at.exception]
    shown = {m.label: m.value for m in at.metric}
    assert shown["Late dossiers with the actual roster"] == fmt.number(1234, lang="en") == "1,234"
    assert shown["Late dossiers with the model's plan"] == "987"
