"""Citizen feedback (phản ánh, kiến nghị) as the province's LGSP service returns it: one record per submission.

The sender's name, phone and address come with each record, as they do in the real service (personal data:
staging keeps the phone as a pseudonym only, and neither the name nor the address). Records are text/number
JSON values; timestamps are `YYYY-MM-DD HH:MM:SS`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np

from pipelines.demo.people import applicants
from pipelines.demo.places import communes

FIRST_DAY = datetime(2024, 1, 1, 7, 0, 0)
# (field, subject): what citizens write about most, roughly by frequency.
TOPICS = (
    ("Đất đai", "Chậm cấp giấy chứng nhận quyền sử dụng đất"),
    ("Đất đai", "Tranh chấp ranh giới đất giữa các hộ"),
    ("Môi trường", "Ô nhiễm khói bụi từ lò đốt rác"),
    ("Môi trường", "Rác thải tồn đọng ven đường liên xã"),
    ("Giao thông vận tải", "Đường liên xã xuống cấp, nhiều ổ gà"),
    ("Xây dựng", "Công trình xây dựng không phép"),
    ("Trật tự đô thị", "Lấn chiếm vỉa hè để kinh doanh"),
    ("Hộ tịch", "Thái độ tiếp công dân tại bộ phận một cửa"),
    ("Dịch vụ công trực tuyến", "Lỗi khi nộp hồ sơ trên Cổng dịch vụ công"),
    ("Y tế", "Trạm y tế xã thiếu thuốc thiết yếu"),
    ("Giáo dục", "Thu các khoản ngoài quy định đầu năm học"),
    ("Điện", "Mất điện kéo dài không thông báo"),
)
TOPIC_WEIGHTS = np.array([9, 4, 6, 5, 7, 4, 5, 3, 6, 2, 2, 3], dtype=float)
CHANNELS = {"Cổng dịch vụ công": 0.35, "Ứng dụng Ninh Bình Smart": 0.3, "Tổng đài 1022": 0.2, "Trực tiếp": 0.15}
STATUSES = ("moi_tiep_nhan", "dang_xu_ly", "da_tra_loi")


def feedback(n: int, as_of: date, rng: np.random.Generator) -> list[dict]:
    """`n` feedback records submitted from 2024-01-01 to `as_of`, ordered by their id."""
    units = communes()
    span_s = int((datetime.combine(as_of, datetime.min.time()) - FIRST_DAY).total_seconds())
    sent_s = np.sort(rng.integers(0, span_s, n))
    topic = rng.choice(len(TOPICS), n, p=TOPIC_WEIGHTS / TOPIC_WEIGHTS.sum())
    commune = rng.integers(0, len(units), n)
    channel = rng.choice(len(CHANNELS), n, p=np.array(list(CHANNELS.values())))
    days = np.ceil(rng.gamma(2.0, 6.0, n)).astype(int)  # days to an answer (the legal limit is 10-30)
    people = applicants(n, as_of, rng)
    # drawn last, so every value above stays what it was before addresses were added
    house, hamlet = rng.integers(1, 250, n), rng.integers(1, 16, n)
    channels = list(CHANNELS)
    now = datetime.combine(as_of, datetime.min.time())
    out = []
    for i in range(n):
        sent = FIRST_DAY + timedelta(seconds=int(sent_s[i]))
        answered = sent + timedelta(days=int(days[i]))
        status = "da_tra_loi" if answered < now else ("dang_xu_ly" if days[i] > 3 else "moi_tiep_nhan")
        updated = answered if status == "da_tra_loi" else sent + (now - sent) / 2
        field, subject = TOPICS[topic[i]]
        out.append({
            "ma_phan_anh": f"PAKN-{sent.year}-{i + 1:06d}",
            "tieu_de": subject,
            "linh_vuc": field,
            "ma_xa": units[commune[i]].code,
            "kenh_tiep_nhan": channels[channel[i]],
            "ngay_gui": sent.strftime("%Y-%m-%d %H:%M:%S"),
            "trang_thai": status,
            "so_ngay_xu_ly": int(days[i]) if status == "da_tra_loi" else None,
            "ngay_cap_nhat": updated.replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S"),
            "ho_ten": people["ho_ten"][i],
            "so_dien_thoai": people["so_dien_thoai"][i],
            "dia_chi": f"Số {house[i]}, xóm {hamlet[i]}, {units[commune[i]].name}",
        })
    return out


def feedback_changes(records: list[dict], *, n_new: int, n_late: int, when: datetime,
                     tag: str = "n1") -> tuple[list[dict], dict[str, int]]:
    """The LGSP service a day later: `n_new` items sent on `when` and `n_late` late updates of old ones.

    The late updates spread over the whole history, so old rows leave their old groups: an open item is
    answered (its days to answer filled in), an answered one has its days corrected (moving its answer to
    another week), every third one is re-filed under another field, and the first one's subject quotes the
    sender's phone number (free text with personal data in it). Every changed record gets `ngay_cap_nhat`
    after `when`, so the next incremental pull (`updated_since`) returns exactly these. Deterministic; the
    input list is not modified. Used by tests/warehouse/test_feedback.py.
    """
    out = [dict(r) for r in records]
    stamp = when.replace(microsecond=0)
    people = applicants(n_new, when.date(), np.random.default_rng([len(records), n_new, 13]))
    step = max(1, len(out) // max(n_new, 1))
    for i in range(n_new):
        base = out[(i * step) % len(out)]
        sent = stamp + timedelta(seconds=37 * i)
        out.append({**base, "ma_phan_anh": f"PAKN-{sent.year}-{tag}-{i + 1:04d}",
                    "ngay_gui": sent.strftime("%Y-%m-%d %H:%M:%S"), "trang_thai": "moi_tiep_nhan",
                    "so_ngay_xu_ly": None, "ngay_cap_nhat": (sent + timedelta(seconds=5)).strftime("%Y-%m-%d %H:%M:%S"),
                    "ho_ten": people["ho_ten"][i], "so_dien_thoai": people["so_dien_thoai"][i],
                    "dia_chi": f"Số {100 + i}, xóm {1 + i % 9}, {base.get('dia_chi', '').rsplit(', ', 1)[-1]}"})
    fields = sorted({t[0] for t in TOPICS})
    step_late = max(1, len(records) // max(n_late, 1))
    n_changed = 0
    for j in range(min(n_late, len(records))):
        r = out[(j * step_late + 3) % len(records)]
        sent = datetime.strptime(r["ngay_gui"], "%Y-%m-%d %H:%M:%S")
        room = max(0, (stamp - sent).days)
        if r["trang_thai"] == "da_tra_loi":
            days = r["so_ngay_xu_ly"] + 8 if j % 2 else max(0, r["so_ngay_xu_ly"] - 6)
        else:
            days = 5 + j % 20
        r["trang_thai"], r["so_ngay_xu_ly"] = "da_tra_loi", min(days, room)
        if j % 3 == 0:
            r["linh_vuc"] = fields[(fields.index(r["linh_vuc"]) + 1) % len(fields)]
        if j == 0:
            r["tieu_de"] = f"{r['tieu_de']} - đề nghị gọi lại số {r['so_dien_thoai']}"
        r["ngay_cap_nhat"] = (stamp + timedelta(hours=1, seconds=j)).strftime("%Y-%m-%d %H:%M:%S")
        n_changed += 1
    return out, {"n_new": n_new, "n_late": n_changed}
