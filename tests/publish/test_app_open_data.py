"""The catalogue page's open-data section: progress per phase and the gate's refusals, in both languages."""

from __future__ import annotations

from datetime import date

from tests.conftest import project_path
from tests.publish.conftest import publish
from tests.security.signin import signed_in

PAGE = str(project_path("apps", "pages", "5_Danh_muc_du_lieu.py"))


def _frame(at, column: str):
    """The page's table holding `column` (the page also shows the catalogue, datasets and dictionary)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_catalogue_page_shows_progress_and_refusals(province, monkeypatch):
    monkeypatch.setenv("TONGHOP_TENANT", province.tenant_id)
    at = signed_in(PAGE, "lanh_dao", province.tenant_id, timeout=60)  # a leader: the catalogue page is theirs
    assert not at.exception, at.exception
    assert any("Chưa công bố dữ liệu mở lần nào" in i.value for i in at.info)

    publish(province)
    at = signed_in(PAGE, "lanh_dao", province.tenant_id, timeout=60)
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Bộ dữ liệu đã công bố"] == "5 / 6"
    phases = _frame(at, "Mức tối thiểu")
    late = date.today() > date(2027, 6, 30)  # phase 2's due date in tenants/ninh-binh.yaml
    assert list(phases["Trạng thái"]) == ["Đạt", "Quá hạn" if late else "Đang thực hiện"]
    assert list(phases["Mức tối thiểu"]) == ["4 / 3", "5 / 6"]
    refusals = _frame(at, "Lý do")
    assert list(refusals["Bộ dữ liệu"]) == ["ho_so_theo_xa_tuan"]
    assert "count fewer than 5 records" in refusals["Lý do"][0]

    at.sidebar.radio[0].set_value("English").run()
    assert not at.exception, at.exception
    assert "Datasets published" in {m.label for m in at.metric}
    assert "Phase 1 — dossier figures and digital-transformation targets" in list(_frame(at, "Phase")["Phase"])
