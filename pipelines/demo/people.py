"""Applicants' personal data, synthetic but shaped like the real thing: CCCD numbers, mobile phones, names."""

from __future__ import annotations

import unicodedata
from datetime import date

import numpy as np
import polars as pl

from pipelines.demo.places import birth_province_codes

# Family names with rough national frequencies (Nguyễn ~38 %); Đinh, Vũ and Bùi are common in Ninh Bình.
FAMILY_NAMES = {
    "Nguyễn": 36, "Trần": 11, "Lê": 9, "Phạm": 7, "Hoàng": 4.5, "Vũ": 4.5, "Đinh": 3, "Bùi": 3, "Đỗ": 2.5,
    "Phan": 2.5, "Ngô": 1.5, "Đặng": 2, "Dương": 1.2, "Trịnh": 1.5, "Đoàn": 1.2, "Mai": 1.2, "Lương": 0.8,
    "Tạ": 0.6, "Cao": 0.8, "Hà": 0.8, "Lại": 0.5, "Tống": 0.5, "Lưu": 0.6, "Phí": 0.3, "Quách": 0.3,
}
MIDDLE_MALE = ("Văn", "Văn", "Văn", "Đức", "Minh", "Quang", "Hữu", "Thanh", "Ngọc", "Xuân", "Công", "Tiến",
               "Anh", "Mạnh", "Trọng", "Duy")
MIDDLE_FEMALE = ("Thị", "Thị", "Thị", "Thị", "Thu", "Thanh", "Ngọc", "Minh", "Hồng", "Phương", "Kim", "Thùy",
                 "Bảo", "Mai", "Diệu", "Khánh")
GIVEN_MALE = ("Anh", "Bình", "Cường", "Dũng", "Đức", "Hải", "Hùng", "Huy", "Khánh", "Long", "Minh", "Nam",
              "Phong", "Quang", "Sơn", "Thắng", "Thành", "Tuấn", "Trung", "Việt", "Hiếu", "Hoàng", "Khoa",
              "Lâm", "Tài", "Toàn", "Tùng", "Vinh", "Quân", "Đạt")
GIVEN_FEMALE = ("Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hương", "Huyền", "Lan",
                "Linh", "Loan", "Mai", "Ngọc", "Nhung", "Phương", "Quỳnh", "Thảo", "Trang", "Tuyết", "Vân",
                "Yến", "Nga", "Thủy", "Oanh", "Hồng", "Liên", "Nhàn")
SECOND_MIDDLE = ("Thu", "Minh", "Ngọc", "Bảo", "Hoài", "Phương", "Thanh", "Diệu")
# Mobile prefixes in use since the 2018 renumbering: Viettel 03x/086/096-098, VinaPhone 08x/091/094,
# MobiFone 07x/089/090/093, Vietnamobile 052/056/058/092, Gmobile 059/099.
MOBILE_PREFIXES = (32, 33, 34, 35, 36, 37, 38, 39, 86, 96, 97, 98, 81, 82, 83, 84, 85, 88, 91, 94,
                   70, 76, 77, 78, 79, 89, 90, 93, 52, 56, 58, 92, 59, 99)
# How often each written form of the same number appears in a real export.
PHONE_FORMS = (0.62, 0.14, 0.08, 0.10, 0.06)  # 0912345678, +84912345678, 84 912 345 678, 091.234.5678, 0912 345 678
# Where applicants were born: mostly the three provinces that now form Ninh Bình.
BIRTH_PROVINCE_SHARE = {"037": 0.50, "036": 0.20, "035": 0.12}


def _nfc(names) -> list[str]:
    return [unicodedata.normalize("NFC", n) for n in names]


def applicants(n: int, as_of: date, rng: np.random.Generator) -> pl.DataFrame:
    """`n` applicants: so_cccd (12 digits), so_dien_thoai (mixed forms), ho_ten (NFC)."""
    age = np.clip(18 + rng.gamma(3.0, 9.0, n), 18, 90).astype(np.int64)
    birth_year = as_of.year - age
    female = rng.random(n) < 0.52
    century_sex = np.where(birth_year >= 2000, 2, 0) + female  # 0/1: 1900s male/female, 2/3: 2000s
    return pl.DataFrame({
        "so_cccd": _cccd(birth_year, century_sex, rng),
        "so_dien_thoai": _phones(n, rng),
        "ho_ten": _names(female, rng),
    })


def _cccd(birth_year: np.ndarray, century_sex: np.ndarray, rng: np.random.Generator) -> pl.Series:
    codes = birth_province_codes()
    p = np.array([BIRTH_PROVINCE_SHARE.get(c, 0.0) for c in codes])
    rest = p == 0
    p[rest] = (1 - p.sum()) / rest.sum()
    province = np.array([int(c) for c in codes])[rng.choice(len(codes), birth_year.size, p=p)]
    number = (province * 10**9 + century_sex * 10**8 + (birth_year % 100) * 10**6
              + rng.integers(0, 10**6, birth_year.size))
    return pl.Series(number).cast(pl.String).str.zfill(12)


def _phones(n: int, rng: np.random.Generator) -> pl.Series:
    prefix = np.array(MOBILE_PREFIXES)[rng.integers(0, len(MOBILE_PREFIXES), n)]
    digits = pl.Series(prefix * 10**7 + rng.integers(0, 10**7, n)).cast(pl.String)  # 9 digits after the 0
    form = rng.choice(len(PHONE_FORMS), n, p=PHONE_FORMS)
    d = pl.col("d")
    return pl.DataFrame({"d": digits, "form": form}).select(
        pl.when(pl.col("form") == 1).then(pl.concat_str(pl.lit("+84"), d))
        .when(pl.col("form") == 2).then(pl.concat_str(pl.lit("84 "), d.str.slice(0, 3), pl.lit(" "),
                                                      d.str.slice(3, 3), pl.lit(" "), d.str.slice(6, 3)))
        .when(pl.col("form") == 3).then(pl.concat_str(pl.lit("0"), d.str.slice(0, 2), pl.lit("."),
                                                      d.str.slice(2, 3), pl.lit("."), d.str.slice(5, 4)))
        .when(pl.col("form") == 4).then(pl.concat_str(pl.lit("0"), d.str.slice(0, 3), pl.lit(" "),
                                                      d.str.slice(3, 3), pl.lit(" "), d.str.slice(6, 3)))
        .otherwise(pl.concat_str(pl.lit("0"), d))
        .alias("so_dien_thoai")
    ).to_series()


def _names(female: np.ndarray, rng: np.random.Generator) -> pl.Series:
    n = female.size
    family_p = np.array(list(FAMILY_NAMES.values()), dtype=float)
    cols = {"family": _pick(FAMILY_NAMES, rng.choice(len(FAMILY_NAMES), n, p=family_p / family_p.sum()))}
    for part, male_pool, female_pool in (("middle", MIDDLE_MALE, MIDDLE_FEMALE),
                                         ("given", GIVEN_MALE, GIVEN_FEMALE)):
        male = _pick(male_pool, rng.integers(0, len(male_pool), n))
        fem = _pick(female_pool, rng.integers(0, len(female_pool), n))
        cols[part] = pl.select(pl.when(pl.lit(pl.Series(female))).then(pl.lit(fem)).otherwise(pl.lit(male))
                               ).to_series()
    # About one woman in four carries a second middle name ("Nguyễn Thị Thu Hà"), never repeating the first.
    cols["second"] = _pick(SECOND_MIDDLE, rng.integers(0, len(SECOND_MIDDLE), n))
    cols["has_second"] = female & (rng.random(n) < 0.25)
    return pl.DataFrame(cols).select(
        pl.when(pl.col("has_second") & (pl.col("second") != pl.col("middle")))
        .then(pl.concat_str("family", "middle", "second", "given", separator=" "))
        .otherwise(pl.concat_str("family", "middle", "given", separator=" "))
        .alias("ho_ten")
    ).to_series()


def _pick(pool, index: np.ndarray) -> pl.Series:
    """pool[index] for many rows at once (a gather, not a Python loop)."""
    return pl.Series(_nfc(pool), dtype=pl.String).gather(index)
