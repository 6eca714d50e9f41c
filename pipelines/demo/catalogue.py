"""The demo province's procedure catalogue: fields (lĩnh vực), procedures (thủ tục) and receiving agencies.

Agency names follow the July-2025 reorganisation: Planning & Investment merged into Finance, Natural
Resources & Environment into Agriculture ("Nông nghiệp và Môi trường"), Transport into Construction,
Labour into Home Affairs, social protection into Health, and driving licences moved to the police.
District-level procedures went to the communes, so `XA` procedures are received by the applicant's
commune People's Committee ("UBND xã ...", "UBND phường ...").
"""

from __future__ import annotations

from dataclasses import dataclass

XA = "UBND xã/phường"  # received by the applicant's commune People's Committee

# Receiving departments, with how much slower (+) or faster (-) than average each one returns dossiers,
# on the log-odds scale of "returned after the due date". The effects make overdue risk learnable.
DEPARTMENTS: dict[str, float] = {
    "Sở Nông nghiệp và Môi trường": 0.7,
    "Sở Xây dựng": 0.4,
    "Sở Tài chính": -0.6,
    "Sở Tư pháp": 0.2,
    "Sở Y tế": 0.3,
    "Sở Giáo dục và Đào tạo": -0.8,
    "Sở Nội vụ": 0.0,
    "Sở Khoa học và Công nghệ": -0.4,
    "Công an tỉnh": -1.0,
}

# Field effect on the same log-odds scale: land and construction dossiers are the classic late ones,
# civil status and certification are usually returned the same day.
FIELDS: dict[str, float] = {
    "Đất đai": 1.3,
    "Xây dựng": 0.8,
    "Môi trường": 0.6,
    "Tư pháp": 0.5,
    "Bảo trợ xã hội": 0.4,
    "Y tế": 0.3,
    "Lao động - Việc làm": 0.1,
    "Phòng cháy, chữa cháy": 0.0,
    "Giao thông vận tải": -0.3,
    "Khoa học và Công nghệ": -0.3,
    "Đăng ký kinh doanh": -0.6,
    "Giáo dục": -0.7,
    "Hộ tịch": -1.2,
    "Chứng thực": -1.6,
}

# Month multipliers of arrivals per field (others are flat): school transfers in summer, weddings and
# Tết allowances at year end, new businesses after Tết, land transactions before the year closes.
FIELD_SEASON: dict[str, dict[int, float]] = {
    "Giáo dục": {6: 2.0, 7: 2.4, 8: 2.2, 9: 1.3},
    "Hộ tịch": {10: 1.2, 11: 1.3, 12: 1.4, 1: 1.3},
    "Bảo trợ xã hội": {12: 1.3, 1: 1.5},
    "Đăng ký kinh doanh": {2: 1.2, 3: 1.4, 4: 1.2},
    "Đất đai": {11: 1.2, 12: 1.35},
    "Xây dựng": {3: 1.2, 4: 1.2, 10: 1.15, 11: 1.15},
}


@dataclass(frozen=True)
class Procedure:
    """One administrative procedure: national code, name, field, receiver and legal time in working days."""

    code: str
    name: str
    field: str
    agency: str
    legal_days: int
    volume: float  # relative share of all dossiers


PROCEDURES: tuple[Procedure, ...] = (
    Procedure("1.001193", "Đăng ký khai sinh", "Hộ tịch", XA, 1, 9.0),
    Procedure("1.000656", "Đăng ký khai tử", "Hộ tịch", XA, 1, 3.5),
    Procedure("1.000894", "Đăng ký kết hôn", "Hộ tịch", XA, 1, 3.5),
    Procedure("1.004873", "Cấp bản sao trích lục hộ tịch", "Hộ tịch", XA, 1, 5.0),
    Procedure("1.004884", "Cấp giấy xác nhận tình trạng hôn nhân", "Hộ tịch", XA, 3, 5.5),
    Procedure("1.001022", "Đăng ký thay đổi, cải chính, bổ sung thông tin hộ tịch", "Hộ tịch", XA, 3, 1.8),
    Procedure("1.001695", "Đăng ký khai sinh có yếu tố nước ngoài", "Hộ tịch", XA, 3, 0.3),
    Procedure("2.000908", "Chứng thực bản sao từ bản chính", "Chứng thực", XA, 1, 13.0),
    Procedure("2.000884", "Chứng thực chữ ký trong giấy tờ, văn bản", "Chứng thực", XA, 1, 4.5),
    Procedure("2.001035", "Chứng thực hợp đồng, giao dịch liên quan đến tài sản", "Chứng thực", XA, 2, 3.0),
    Procedure("1.003003", "Đăng ký biến động quyền sử dụng đất, tài sản gắn liền với đất", "Đất đai",
              "Sở Nông nghiệp và Môi trường", 10, 6.0),
    Procedure("1.004227", "Cấp Giấy chứng nhận quyền sử dụng đất lần đầu", "Đất đai", XA, 20, 2.5),
    Procedure("1.012758", "Đăng ký thế chấp quyền sử dụng đất", "Đất đai", "Sở Nông nghiệp và Môi trường", 3, 4.0),
    Procedure("1.012766", "Cấp đổi Giấy chứng nhận quyền sử dụng đất", "Đất đai",
              "Sở Nông nghiệp và Môi trường", 7, 2.0),
    Procedure("1.012774", "Tách thửa, hợp thửa đất", "Đất đai", "Sở Nông nghiệp và Môi trường", 15, 1.5),
    Procedure("1.012781", "Chuyển mục đích sử dụng đất", "Đất đai", XA, 15, 1.2),
    Procedure("1.012790", "Giao đất, cho thuê đất đối với tổ chức", "Đất đai", "Sở Nông nghiệp và Môi trường",
              30, 0.2),
    Procedure("1.010728", "Đăng ký môi trường", "Môi trường", "Sở Nông nghiệp và Môi trường", 15, 0.4),
    Procedure("2.000720", "Đăng ký thành lập hộ kinh doanh", "Đăng ký kinh doanh", XA, 3, 3.0),
    Procedure("2.001610", "Đăng ký thành lập doanh nghiệp", "Đăng ký kinh doanh", "Sở Tài chính", 3, 1.2),
    Procedure("2.002044", "Đăng ký thay đổi nội dung đăng ký doanh nghiệp", "Đăng ký kinh doanh",
              "Sở Tài chính", 3, 1.5),
    Procedure("1.005144", "Thông báo tạm ngừng kinh doanh", "Đăng ký kinh doanh", "Sở Tài chính", 3, 0.5),
    Procedure("1.009794", "Cấp giấy phép xây dựng nhà ở riêng lẻ", "Xây dựng", XA, 15, 2.0),
    Procedure("1.009793", "Cấp giấy phép xây dựng công trình", "Xây dựng", "Sở Xây dựng", 20, 0.4),
    Procedure("1.009972", "Thẩm định báo cáo nghiên cứu khả thi đầu tư xây dựng", "Xây dựng", "Sở Xây dựng",
              25, 0.2),
    Procedure("1.009986", "Cấp chứng chỉ hành nghề hoạt động xây dựng", "Xây dựng", "Sở Xây dựng", 20, 0.25),
    Procedure("1.002835", "Cấp phù hiệu xe ô tô kinh doanh vận tải", "Giao thông vận tải", "Sở Xây dựng", 2, 0.6),
    Procedure("1.002861", "Cấp giấy phép kinh doanh vận tải bằng xe ô tô", "Giao thông vận tải", "Sở Xây dựng",
              5, 0.3),
    Procedure("1.013145", "Đổi giấy phép lái xe", "Giao thông vận tải", "Công an tỉnh", 5, 2.0),
    Procedure("1.004945", "Thẩm định thiết kế về phòng cháy và chữa cháy", "Phòng cháy, chữa cháy",
              "Công an tỉnh", 15, 0.2),
    Procedure("1.001978", "Giải quyết hưởng trợ cấp thất nghiệp", "Lao động - Việc làm", "Sở Nội vụ", 20, 1.5),
    Procedure("1.000105", "Cấp giấy phép lao động cho người lao động nước ngoài", "Lao động - Việc làm",
              "Sở Nội vụ", 5, 0.3),
    Procedure("1.001776", "Trợ cấp xã hội hằng tháng đối với đối tượng bảo trợ xã hội", "Bảo trợ xã hội", XA,
              12, 1.5),
    Procedure("1.001731", "Hỗ trợ chi phí mai táng", "Bảo trợ xã hội", XA, 5, 0.8),
    Procedure("1.001699", "Xác định, xác định lại mức độ khuyết tật", "Bảo trợ xã hội", XA, 25, 0.6),
    Procedure("1.005098", "Chuyển trường đối với học sinh trung học phổ thông", "Giáo dục",
              "Sở Giáo dục và Đào tạo", 3, 0.6),
    Procedure("2.001914", "Cấp bản sao văn bằng, chứng chỉ từ sổ gốc", "Giáo dục", "Sở Giáo dục và Đào tạo",
              1, 0.8),
    Procedure("1.000181", "Chỉnh sửa nội dung văn bằng, chứng chỉ", "Giáo dục", "Sở Giáo dục và Đào tạo", 5,
              0.2),
    Procedure("1.012270", "Cấp giấy phép hành nghề khám bệnh, chữa bệnh", "Y tế", "Sở Y tế", 20, 0.4),
    Procedure("1.004616", "Cấp Chứng chỉ hành nghề dược", "Y tế", "Sở Y tế", 20, 0.25),
    Procedure("2.000655", "Cấp giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm", "Y tế", "Sở Y tế", 15,
              0.3),
    Procedure("2.000488", "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam", "Tư pháp", "Sở Tư pháp", 10, 3.0),
    Procedure("1.001877", "Đăng ký hành nghề công chứng", "Tư pháp", "Sở Tư pháp", 10, 0.05),
    Procedure("1.003514", "Đăng ký hoạt động khoa học và công nghệ", "Khoa học và Công nghệ",
              "Sở Khoa học và Công nghệ", 10, 0.1),
    Procedure("1.003736", "Cấp giấy phép xuất bản bản tin", "Khoa học và Công nghệ", "Sở Khoa học và Công nghệ",
              10, 0.1),
)


def department_code(index: int) -> str:
    """Agency identifier block of a department in dossier numbers, e.g. '000.00.03.H37'."""
    return f"000.00.{index + 1:02d}.H37"


def commune_agency_code(commune_code: str) -> str:
    """Agency identifier block of a commune People's Committee, e.g. '000.37.14464.H37'."""
    return f"000.37.{commune_code}.H37"


def commune_agency_name(commune_name: str) -> str:
    """'Xã Gia Viễn' -> 'UBND xã Gia Viễn'; 'Phường Hoa Lư' -> 'UBND phường Hoa Lư'."""
    kind, _, rest = commune_name.partition(" ")
    return f"UBND {kind.lower()} {rest}"
