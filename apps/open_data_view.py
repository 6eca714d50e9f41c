"""The open-data section of the catalogue page: progress against the tenant's open-data plan, per phase, and
the datasets the publication gate refused (with their reasons), in Vietnamese or English.

Reads `<tenant data folder>/open_data/progress.json` and `publish_report.json` (written by `tonghop publish`
and the DAG's `open_data` task) through `pipelines.publish.plan.load_progress` — never the warehouse.
"""

from __future__ import annotations

import streamlit as st

TEXT = {
    "od_title": {"vi": "Dữ liệu mở: tiến độ theo kế hoạch", "en": "Open data: progress against the plan"},
    "od_none": {"vi": "Chưa công bố dữ liệu mở lần nào: chạy `tonghop publish --tenant {tenant}`.",
                "en": "No open data published yet: run `tonghop publish --tenant {tenant}`."},
    "od_no_plan": {"vi": "Đơn vị chưa khai báo kế hoạch dữ liệu mở (mục open_data trong tệp cấu hình).",
                   "en": "This unit has no open-data plan yet (open_data in its tenant file)."},
    "od_published": {"vi": "Bộ dữ liệu đã công bố", "en": "Datasets published"},
    "od_review": {"vi": "Rà soát tiếp theo", "en": "Next review"},
    "od_review_overdue": {"vi": "Đã quá hạn rà soát (tối thiểu 6 tháng một lần).",
                          "en": "The review is overdue (at least every 6 months)."},
    "od_phase": {"vi": "Đợt", "en": "Phase"}, "od_due": {"vi": "Hạn", "en": "Due"},
    "od_level": {"vi": "Mức tối thiểu", "en": "Minimum level"},
    "od_status": {"vi": "Trạng thái", "en": "Status"},
    "od_missing": {"vi": "Còn thiếu (bắt buộc)", "en": "Missing (required)"},
    "met": {"vi": "Đạt", "en": "Met"}, "in_progress": {"vi": "Đang thực hiện", "en": "In progress"},
    "overdue": {"vi": "Quá hạn", "en": "Overdue"},
    "od_refused": {"vi": "Bộ dữ liệu bị từ chối công bố", "en": "Datasets refused by the publication gate"},
    "od_dataset": {"vi": "Bộ dữ liệu", "en": "Dataset"}, "od_reason": {"vi": "Lý do", "en": "Reason"},
    "od_no_refusal": {"vi": "Không bộ dữ liệu nào bị từ chối.", "en": "No dataset was refused."},
}


def _t(key: str, lang: str) -> str:
    return TEXT[key][lang]


def render_open_data(lang: str) -> None:
    import pandas as pd

    from apps.data import tenant_id
    from pipelines.config import load_tenant
    from pipelines.publish.plan import load_progress
    from pipelines.settings import TenantPaths

    cfg = load_tenant(tenant_id())
    st.header(_t("od_title", lang))
    if cfg.open_data is None:
        st.info(_t("od_no_plan", lang))
        return
    progress = load_progress(TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).root)
    if progress is None:
        st.info(_t("od_none", lang).format(tenant=cfg.tenant_id))
        return
    left, right = st.columns(2)
    left.metric(_t("od_published", lang), f"{progress['n_published']} / {progress['n_planned']}")
    review = progress["review"]
    right.metric(_t("od_review", lang), review["next_review_due"] or "—")
    if review["is_review_overdue"]:
        st.warning(_t("od_review_overdue", lang))
    st.dataframe(pd.DataFrame([{
        _t("od_phase", lang): p["name_en"] if lang == "en" and p["name_en"] else p["name"],
        _t("od_due", lang): p["due"],
        _t("od_level", lang): f"{p['n_published_cumulative']} / {p['min_datasets']}",
        _t("od_status", lang): _t(p["status"], lang),
        _t("od_missing", lang): ", ".join(p["missing_required"]),
    } for p in progress["phases"]]), hide_index=True, width="stretch")
    st.subheader(_t("od_refused", lang))
    if not progress["refusals"]:
        st.success(_t("od_no_refusal", lang))
        return
    st.dataframe(pd.DataFrame([{_t("od_dataset", lang): ds, _t("od_reason", lang): reason}
                               for ds, reasons in progress["refusals"].items() for reason in reasons]),
                 hide_index=True, width="stretch")
