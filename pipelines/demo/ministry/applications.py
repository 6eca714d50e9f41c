"""The ministry's administrative-procedure dossiers, as its own online-service system exports them (JSON records).

Nothing like the province's one-stop-shop: English camelCase fields; `receivedDate`/`dueDate` as `dd/mm/yyyy`
text; `completedAt` and `lastModified` as epoch milliseconds (UTC); `status` an integer code
(`STATUS_CODES`); applicants mostly organisations identified by a tax code (`applicantTaxCode`), a CCCD
(`applicantIdNo`) only for individuals; the applicant's province (`provinceCode`, 2 digits) instead of a
commune. Procedures are ministry-level ones (telecoms, frequencies, postal services, industrial property,
standards and measurement, radiation safety); their codes are illustrative, in the national database's format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np

from pipelines.demo.business_registry import tax_codes
from pipelines.demo.ministry.provinces import provinces
from pipelines.demo.people import applicants
from pipelines.demo.workdays import add_working_days
from pipelines.reference.calendar import WEEKMASK, holiday_days

FIRST_DAY = date(2024, 1, 1)
VN = timezone(timedelta(hours=7))
STATUS_CODES = {1: "RECEIVED", 2: "PROCESSING", 3: "WAITING_SUPPLEMENT", 4: "DONE", 5: "REJECTED"}
CHANNELS = {"ONLINE": 0.78, "POSTAL": 0.12, "COUNTER": 0.10}


@dataclass(frozen=True)
class Procedure:
    code: str
    name: str
    sector: str  # the system's sector code (SECTORS)
    working_days: int  # legal processing time
    volume: float  # relative number of applications
    individuals: float  # share filed by individuals (CCCD) rather than organisations (tax code)
    fee_vnd: int


SECTORS = {  # sector code → (field, handling agency, dossier number prefix)
    "TELECOM": ("Viễn thông", "Cục Viễn thông", "VT"),
    "RADIO_FREQ": ("Tần số vô tuyến điện", "Cục Tần số vô tuyến điện", "TS"),
    "POSTAL": ("Bưu chính", "Vụ Bưu chính", "BC"),
    "IP": ("Sở hữu trí tuệ", "Cục Sở hữu trí tuệ", "SHTT"),
    "STD_METRO": ("Tiêu chuẩn, đo lường, chất lượng", "Ủy ban Tiêu chuẩn Đo lường Chất lượng quốc gia", "TDC"),
    "RADIATION": ("An toàn bức xạ và hạt nhân", "Cục An toàn bức xạ và hạt nhân", "ATBX"),
}
PROCEDURES = (
    Procedure("1.004850", "Cấp giấy phép thiết lập mạng viễn thông công cộng", "TELECOM", 45, 0.6, 0.0, 0),
    Procedure("1.004871", "Cấp giấy phép cung cấp dịch vụ viễn thông", "TELECOM", 30, 1.4, 0.0, 0),
    Procedure("1.004889", "Cấp giấy phép lắp đặt cáp viễn thông trên biển", "TELECOM", 30, 0.1, 0.0, 0),
    Procedure("1.004903", "Cấp giấy phép sử dụng tần số và thiết bị vô tuyến điện đối với đài tàu", "RADIO_FREQ",
              20, 4.0, 0.55, 500_000),
    Procedure("1.004915", "Cấp giấy phép sử dụng tần số vô tuyến điện cho mạng viễn thông dùng riêng", "RADIO_FREQ",
              20, 2.2, 0.0, 1_000_000),
    Procedure("1.004926", "Gia hạn giấy phép sử dụng tần số và thiết bị vô tuyến điện", "RADIO_FREQ", 10, 3.0, 0.3,
              300_000),
    Procedure("1.004942", "Cấp chứng chỉ vô tuyến điện viên hàng hải", "RADIO_FREQ", 15, 0.8, 1.0, 200_000),
    Procedure("1.005012", "Cấp giấy phép bưu chính", "POSTAL", 30, 0.9, 0.0, 0),
    Procedure("1.005027", "Cấp văn bản xác nhận thông báo hoạt động bưu chính", "POSTAL", 7, 1.2, 0.0, 0),
    Procedure("1.005211", "Đăng ký nhãn hiệu", "IP", 180, 9.0, 0.35, 1_000_000),
    Procedure("1.005224", "Đăng ký sáng chế", "IP", 240, 1.6, 0.1, 2_500_000),
    Procedure("1.005238", "Đăng ký kiểu dáng công nghiệp", "IP", 150, 1.8, 0.2, 1_200_000),
    Procedure("1.005301", "Chỉ định tổ chức đánh giá sự phù hợp", "STD_METRO", 15, 0.5, 0.0, 0),
    Procedure("1.005316", "Phê duyệt mẫu phương tiện đo", "STD_METRO", 15, 0.7, 0.0, 3_500_000),
    Procedure("1.005402", "Cấp giấy phép xuất khẩu, nhập khẩu nguồn phóng xạ", "RADIATION", 15, 0.4, 0.0, 1_500_000),
)
COMPANY_FORMS = ("Công ty TNHH", "Công ty TNHH", "Công ty Cổ phần", "Công ty Cổ phần", "Tổng công ty",
                 "Chi nhánh Công ty TNHH", "Hợp tác xã")
COMPANY_TRADES = ("Viễn thông", "Công nghệ", "Thủy sản", "Vận tải biển", "Dược phẩm", "Điện tử", "Bưu chính",
                  "Truyền thông", "Cơ khí chính xác", "Thiết bị y tế", "Phần mềm", "Nông sản", "Đo lường",
                  "Logistics", "Thực phẩm")
COMPANY_BRANDS = ("Hưng Thịnh", "Minh Phát", "Sao Việt", "Đại Dương", "Phương Nam", "Trường An", "Hoàng Long",
                  "Tân Tiến", "Việt Á", "Bình Minh", "Thành Công", "An Phú", "Hải Âu", "Kim Long", "Đông Á",
                  "Toàn Cầu", "Nam Việt", "Thiên Ân", "Quốc Tế", "Hồng Hà")


def applications(n: int, seed: int, as_of: date) -> list[dict]:
    """`n` dossiers received from 2024-01-01 to the day before `as_of`, ordered by (lastModified, applicationNo)."""
    rng = np.random.default_rng([seed, 100])
    holidays = holiday_days(FIRST_DAY.year, as_of.year + 2)
    days = np.arange(np.datetime64(FIRST_DAY, "D"), np.datetime64(as_of, "D"))
    workday = np.is_busday(days, weekmask=WEEKMASK, holidays=holidays)
    grow = 1 + 0.15 * (days - days[0]).astype(float) / 365.25  # online filing grows
    p_day = np.where(workday, grow, 0.0)
    received = np.sort(rng.choice(days, n, p=p_day / p_day.sum()))

    volume = np.array([p.volume for p in PROCEDURES])
    proc = rng.choice(len(PROCEDURES), n, p=volume / volume.sum())
    allowed = np.array([p.working_days for p in PROCEDURES])[proc]
    due = add_working_days(received, allowed, holidays)
    # Processing time as a share of the legal time: most on time, IP and telecoms licences often late.
    late_bias = np.array([0.35 if PROCEDURES[i].sector in ("IP", "TELECOM") else 0.1 for i in range(len(PROCEDURES))])
    share = rng.beta(4.0, 4.0, n) * 1.2 + np.where(rng.random(n) < late_bias[proc], rng.gamma(2.0, 0.25, n), 0.0)
    done_on = add_working_days(received, np.maximum(1, np.round(allowed * share)).astype(int), holidays)
    today = np.datetime64(as_of, "D")
    finished = done_on < today
    supplement = ~finished & (rng.random(n) < 0.12)
    rejected = finished & (rng.random(n) < 0.04)
    status = np.where(finished, np.where(rejected, 5, 4), np.where(supplement, 3, np.where(
        received >= today - 2, 1, 2)))

    weights = np.array([p.weight for p in provinces()])
    province = rng.choice(len(provinces()), n, p=weights / weights.sum())
    individual = rng.random(n) < np.array([p.individuals for p in PROCEDURES])[proc]
    people = applicants(n, as_of, rng)
    taxes = tax_codes(n, rng)
    company = [f"{COMPANY_FORMS[a]} {COMPANY_TRADES[b]} {COMPANY_BRANDS[c]}" for a, b, c in zip(
        rng.integers(0, len(COMPANY_FORMS), n), rng.integers(0, len(COMPANY_TRADES), n),
        rng.integers(0, len(COMPANY_BRANDS), n), strict=True)]
    channel = rng.choice(list(CHANNELS), n, p=list(CHANNELS.values()))
    # Times of day (seconds after 07:30, within 9.5 office hours) for the completion and the last change.
    done_s = rng.integers(0, 34_200, n)
    modified_s = rng.integers(0, 34_200, n)
    last_touch = np.where(finished, done_on, np.minimum(today - 1, received + rng.integers(0, 20, n)))

    out = []
    serial: dict[tuple[str, int], int] = {}
    for i in range(n):
        p = PROCEDURES[proc[i]]
        r_day = received[i].astype(date)
        key = (p.sector, r_day.year)
        serial[key] = serial.get(key, 0) + 1
        completed = _millis(done_on[i].astype(date), int(done_s[i])) if finished[i] else None
        modified = completed if finished[i] else _millis(last_touch[i].astype(date), int(modified_s[i]))
        out.append({
            "applicationNo": f"{SECTORS[p.sector][2]}-{r_day.year}-{serial[key]:06d}",
            "procedureCode": p.code,
            "procedureName": p.name,
            "sectorCode": p.sector,
            "agencyName": SECTORS[p.sector][1],
            "applicantType": "CITIZEN" if individual[i] else "ORGANIZATION",
            "applicantTaxCode": None if individual[i] else taxes[i],
            "applicantIdNo": people["so_cccd"][i] if individual[i] else None,
            "applicantName": people["ho_ten"][i] if individual[i] else company[i],
            "contactPhone": people["so_dien_thoai"][i],
            "provinceCode": provinces()[province[i]].code,
            "submitChannel": str(channel[i]),
            "receivedDate": r_day.strftime("%d/%m/%Y"),
            "dueDate": due[i].astype(date).strftime("%d/%m/%Y"),
            "completedAt": completed,
            "status": int(status[i]),
            "feeVnd": p.fee_vnd,
            "lastModified": modified,
        })
    out.sort(key=lambda r: (r["lastModified"], r["applicationNo"]))
    return out


def _millis(day: date, seconds_after_open: int) -> int:
    """Epoch milliseconds of `day` at 07:30 + `seconds_after_open`, Vietnam time."""
    moment = datetime(day.year, day.month, day.day, 7, 30, tzinfo=VN) + timedelta(seconds=seconds_after_open)
    return int(moment.timestamp() * 1000)
