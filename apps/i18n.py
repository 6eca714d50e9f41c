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
}


def t(key: str, lang: str) -> str:
    return TEXT[key][lang]
