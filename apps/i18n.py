"""Interface text: Vietnamese first, English as a toggle. One dictionary, keys in English."""

from __future__ import annotations

TEXT: dict[str, dict[str, str]] = {
    "title": {"vi": "Tổng quan thủ tục hành chính", "en": "Administrative procedures overview"},
    "language": {"vi": "Ngôn ngữ", "en": "Language"},
    "data_as_of": {"vi": "Số liệu đến ngày", "en": "Data as of"},
    "snapshot_at": {"vi": "Bản phục vụ cập nhật lúc", "en": "Snapshot published at"},
    "n_ho_so": {"vi": "Hồ sơ tiếp nhận", "en": "Dossiers received"},
    "on_time_rate": {"vi": "Tỷ lệ trả đúng hạn", "en": "Returned on time"},
    "pending": {"vi": "Đang xử lý", "en": "In progress"},
    "pending_overdue": {"vi": "Đang xử lý quá hạn", "en": "In progress, overdue"},
    "weekly_chart": {"vi": "Hồ sơ tiếp nhận và trả kết quả theo tuần", "en": "Dossiers received and returned per week"},
    "week": {"vi": "Tuần", "en": "Week"},
    "count": {"vi": "Số hồ sơ", "en": "Dossiers"},
    "series": {"vi": "Chỉ tiêu", "en": "Measure"},
    "received": {"vi": "Tiếp nhận", "en": "Received"},
    "returned": {"vi": "Đã trả", "en": "Returned"},
    "overdue": {"vi": "Trả quá hạn", "en": "Returned late"},
    "agency": {"vi": "Cơ quan", "en": "Agency"},
    "risk_title": {"vi": "Hồ sơ có nguy cơ quá hạn cao nhất", "en": "Open dossiers most at risk of being late"},
    "risk_prob": {"vi": "Xác suất quá hạn", "en": "Probability late"},
    "dossier": {"vi": "Mã hồ sơ", "en": "Dossier"},
    "due": {"vi": "Hạn trả", "en": "Due"},
    "model_version": {"vi": "Phiên bản mô hình", "en": "Model version"},
    "needs_data": {"vi": "Phần «{what}» cần dữ liệu mà đơn vị này chưa có ({tables}). Để có phần này, khai báo một "
                          "nguồn theo hợp đồng dữ liệu dùng chung tương ứng (contract) hoặc bật mô hình trong tệp cấu "
                          "hình đơn vị, rồi chạy lại pipeline. Xem docs/onboarding.md.",
                   "en": "The part '{what}' needs data this tenant does not have yet ({tables}). To get it, declare a "
                         "source for the matching shared data contract, or list the model in the tenant file, then "
                         "run the pipeline again. See docs/onboarding.md."},
    "dossier_kpis": {"vi": "Chỉ số hồ sơ thủ tục hành chính", "en": "Administrative-procedure dossier figures"},
    "no_snapshot": {"vi": "Chưa có bản dữ liệu phục vụ. Hãy chạy pipeline của đơn vị trước (tonghop run).",
                    "en": "No serving snapshot yet. Run the tenant's pipeline first (tonghop run)."},
    "dq_title": {"vi": "Chất lượng dữ liệu", "en": "Data quality"},
    "dq_trend": {"vi": "Điểm chất lượng theo lần chạy", "en": "Quality score per run"},
    "dq_score": {"vi": "Điểm", "en": "Score"},
    "dq_run": {"vi": "Lần nạp", "en": "Load"},
    "dq_source": {"vi": "Nguồn dữ liệu", "en": "Source"},
    "dq_dimension": {"vi": "Tiêu chí", "en": "Dimension"},
    "completeness": {"vi": "Đầy đủ", "en": "Completeness"},
    "uniqueness": {"vi": "Duy nhất", "en": "Uniqueness"},
    "validity": {"vi": "Hợp lệ", "en": "Validity"},
    "consistency": {"vi": "Nhất quán", "en": "Consistency"},
    "timeliness": {"vi": "Kịp thời", "en": "Timeliness"},
    "dq_promotion": {"vi": "Dòng đọc vào, đưa vào sử dụng và cách ly", "en": "Rows read, promoted and quarantined"},
    "dq_read": {"vi": "Đọc vào", "en": "Read"},
    "dq_promoted": {"vi": "Đưa vào sử dụng", "en": "Promoted"},
    "dq_quarantined": {"vi": "Cách ly", "en": "Quarantined"},
    "dq_checks": {"vi": "Kết quả kiểm tra lần gần nhất", "en": "Latest check results"},
    "dq_check": {"vi": "Kiểm tra", "en": "Check"},
    "dq_severity": {"vi": "Mức độ", "en": "Severity"},
    "dq_passed": {"vi": "Đạt", "en": "Passed"},
    "dq_failed_rows": {"vi": "Dòng không đạt", "en": "Failing rows"},
    "dq_anomalies": {"vi": "Bất thường cần xem lại", "en": "Anomalies to look into"},
    "dq_anomalies_help": {"vi": "Giá trị lệch xa mức thường gặp (điểm z vững ≥ 3,5): cần hỏi lại đơn vị báo cáo, "
                                "chưa chắc là sai.",
                          "en": "Values far from the usual level (robust z ≥ 3.5): a question for the reporting "
                                "unit, not necessarily an error."},
    "dq_anomaly_kind": {"vi": "Loại", "en": "Kind"},
    "dq_anomaly_object": {"vi": "Đối tượng", "en": "Subject"},
    "dq_anomaly_period": {"vi": "Kỳ", "en": "Period"},
    "dq_anomaly_value": {"vi": "Giá trị", "en": "Value"},
    "dq_anomaly_expected": {"vi": "Mức thường gặp", "en": "Usual level"},
    "dq_anomaly_z": {"vi": "Điểm z", "en": "z-score"},
    "dq_anomaly_note": {"vi": "Mô tả", "en": "Description"},
    "dq_no_anomalies": {"vi": "Không có bất thường nào.", "en": "No anomalies."},
    "dq_docs": {"vi": "Báo cáo kiểm tra của Great Expectations (Data Docs)",
                "en": "Great Expectations report (Data Docs)"},
    "dq_docs_help": {"vi": "Trang do Great Expectations tạo sau mỗi lần kiểm tra (tiếng Anh): các bộ kỳ vọng và "
                           "kết quả từng lần chạy, mở trong thẻ mới; hoặc tải cả bộ về và mở index.html.",
                     "en": "Pages Great Expectations builds after each validation (in English): the suites and "
                           "each run's results, opened in a new tab; or download the whole site and open index.html."},
    "dq_docs_open": {"vi": "Mở Data Docs", "en": "Open Data Docs"},
    "dq_docs_suite": {"vi": "Bộ kỳ vọng: {suite}", "en": "Suite: {suite}"},
    "dq_docs_latest": {"vi": "Kết quả kiểm tra mới nhất: {suite}", "en": "Latest validation: {suite}"},
    "dq_docs_static_off": {"vi": "Ứng dụng chưa bật phục vụ tệp tĩnh (server.enableStaticServing) nên chưa mở "
                                 "trực tiếp được; hãy chạy bằng `make app` hoặc tải về bên dưới.",
                           "en": "The app does not serve static files (server.enableStaticServing), so the pages "
                                 "cannot open here; start it with `make app` or download them below."},
    "dq_docs_copy_failed": {"vi": "Không chép được Data Docs vào {folder} để phục vụ ({error}); hãy tải về bên dưới.",
                            "en": "Could not copy the Data Docs into {folder} to serve them ({error}); download "
                                  "them below."},
    "dq_docs_download": {"vi": "Tải toàn bộ Data Docs (.zip)", "en": "Download all Data Docs (.zip)"},
    "dq_not_checked": {"vi": "chưa kiểm tra", "en": "not checked"},
    "dq_source_not_checked": {"vi": "Nguồn này chưa được kiểm tra: không có hợp đồng dữ liệu (contract) và không có "
                                    "bộ kỳ vọng (expectation_suite). Dữ liệu vẫn được đưa vào sử dụng nhưng không ai "
                                    "bảo đảm chất lượng; tạo bộ kỳ vọng bằng `tonghop suggest-suite`.",
                              "en": "This source is not checked: it has no shared contract and no expectation suite. "
                                    "Its data is used, but nothing vouches for its quality; start a suite with "
                                    "`tonghop suggest-suite`."},
    "dq_timeliness_late": {"vi": "dữ liệu mới nhất {newest}, chạy ngày {run}: trễ {days} ngày so với lịch {rhythm}",
                           "en": "newest data {newest}, run on {run}: {days} days behind the {rhythm} schedule"},
    "dq_timeliness_on_time": {"vi": "dữ liệu mới nhất {newest}, chạy ngày {run}: kịp thời theo lịch {rhythm}",
                              "en": "newest data {newest}, run on {run}: on time for the {rhythm} schedule"},
    "dq_timeliness_no_date": {"vi": "chạy ngày {run}: không đọc được ngày của dữ liệu (lịch {rhythm})",
                              "en": "run on {run}: the data carries no readable date ({rhythm} schedule)"},
    "dq_rhythm_hourly": {"vi": "hằng giờ", "en": "hourly"},
    "dq_rhythm_daily": {"vi": "hằng ngày", "en": "daily"},
    "dq_rhythm_weekly": {"vi": "hằng tuần", "en": "weekly"},
    "dq_rhythm_days": {"vi": "{n} ngày một lần", "en": "{n}-day"},
    "dq_rhythm_hours": {"vi": "{n} giờ một lần", "en": "{n}-hour"},
    "dq_docs_none": {"vi": "Chưa có Data Docs: chưa lần kiểm tra nào chạy.", "en": "No Data Docs yet: no validation has run."},
    "catalogue_title": {"vi": "Danh mục dữ liệu", "en": "Data catalogue"},
}


def t(key: str, lang: str) -> str:
    return TEXT[key][lang]
