"""The demo province's generated sources: deterministic, well-formed, realistic, and faulty only on purpose."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from pathlib import Path

import holidays
import openpyxl
import polars as pl
import pytest

from pipelines.demo import FAULTS, generate, planted_faults

ROWS = 6_000  # large enough for stable shares (overdue, weekdays), small enough to generate in ~1 s
AS_OF = date(2025, 11, 1)
COLUMNS = ["ma_ho_so", "ma_thu_tuc", "linh_vuc", "co_quan", "ma_xa", "ngay_nhan", "ngay_hen_tra", "ngay_tra",
           "trang_thai", "so_cccd", "so_dien_thoai", "ho_ten", "ngay_cap_nhat"]
VIETNAM_HOLIDAYS = set(holidays.Vietnam(years=range(2024, 2028)))
CCCD = r"^\d{12}$"


def _read(path: Path) -> pl.DataFrame:
    """The CSV as the pipeline sees it: codes stay text, dates parsed with the export's formats."""
    return pl.read_csv(path, infer_schema=False).with_columns(
        pl.col("ngay_nhan", "ngay_hen_tra", "ngay_tra").str.to_date("%d/%m/%Y"),
        pl.col("ngay_cap_nhat").str.to_datetime("%d/%m/%Y %H:%M:%S"),
    )


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    generate(out, rows=ROWS, seed=37, as_of=AS_OF, faults=False)
    return out


@pytest.fixture(scope="module")
def faulty_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faulty")
    generate(out, rows=ROWS, seed=37, as_of=AS_OF, faults=True)
    return out


@pytest.fixture(scope="module")
def clean(clean_dir: Path) -> pl.DataFrame:
    return _read(clean_dir / "ho_so_mot_cua.csv")


@pytest.fixture(scope="module")
def faulty(faulty_dir: Path) -> pl.DataFrame:
    return _read(faulty_dir / "ho_so_mot_cua.csv")


@pytest.fixture(scope="module")
def returned(clean: pl.DataFrame) -> pl.DataFrame:
    return clean.filter(pl.col("trang_thai") == "da_tra").with_columns(
        (pl.col("ngay_tra") > pl.col("ngay_hen_tra")).alias("is_overdue"))


# --- determinism ------------------------------------------------------------------------------------------

def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path, faulty_dir: Path):
    again = generate(tmp_path / "again", rows=ROWS, seed=37, as_of=AS_OF, faults=True)
    other = generate(tmp_path / "other", rows=ROWS, seed=38, as_of=AS_OF, faults=True)
    assert set(again) == {"ho_so", "chi_so_xa_hoi_so", "can_bo", "chi_so_cds_tinh", "mot_cua", "dang_ky_kinh_doanh",
                          "dang_ky_kinh_doanh_cu"}
    fixed_by_design = {"chi_so_cds_tinh"}  # the yearly report's figures are illustrative constants
    for key, path in again.items():
        first = (faulty_dir / path.name).read_bytes()
        assert path.read_bytes() == first, f"{path.name} changed between two runs with seed 37"
        if key in fixed_by_design:
            assert other[key].read_bytes() == first, f"{path.name} should not depend on the seed"
        else:
            assert other[key].read_bytes() != first, f"{path.name} is the same for seeds 37 and 38"


def test_faults_only_touch_the_planted_rows(clean: pl.DataFrame, faulty: pl.DataFrame):
    counts = planted_faults(ROWS)
    base = faulty.head(ROWS)  # duplicates are appended after the dossiers, which keep their order
    differs = pl.any_horizontal(base[c].ne_missing(clean[c]) for c in COLUMNS)
    changed = int(base.select(differs).to_series().sum())
    # Each fault has rows of its own, so the rows differing from the clean file are exactly the non-duplicates.
    assert changed == counts["so_cccd_invalid"] + counts["ngay_tra_before_ngay_nhan"] + counts["ma_xa_unknown"]


# --- schema -----------------------------------------------------------------------------------------------

def test_csv_header_is_exactly_the_export_columns(clean_dir: Path):
    header = (clean_dir / "ho_so_mot_cua.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == COLUMNS


def test_dates_and_timestamps_use_vietnamese_formats(clean_dir: Path):
    first_row = (clean_dir / "ho_so_mot_cua.csv").read_text(encoding="utf-8").splitlines()[1].split(",")
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", first_row[5])  # ngay_nhan: dd/mm/yyyy
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}", first_row[12])  # ngay_cap_nhat


# --- invariants of fault-free data ------------------------------------------------------------------------

def test_keys_are_present_unique_and_statuses_known(clean: pl.DataFrame):
    assert clean.height == ROWS  # without faults, one line per dossier
    assert clean.select(pl.sum_horizontal(pl.col("ma_ho_so", "ngay_nhan", "trang_thai").null_count())).item() == 0
    assert clean["ma_ho_so"].n_unique() == ROWS
    assert set(clean["trang_thai"]) == {"da_tra", "dang_xu_ly"}
    assert clean["ma_ho_so"].str.contains(r"^000\.\d{2}\.\d{2,5}\.H37-\d{6}-\d{4,}$").all()


def test_dates_are_ordered(clean: pl.DataFrame):
    assert clean["ngay_nhan"].min() >= date(2024, 1, 1)
    assert clean["ngay_nhan"].max() < AS_OF  # the export is taken on as_of
    assert (clean["ngay_hen_tra"] >= clean["ngay_nhan"]).all()
    assert (clean["ngay_cap_nhat"].dt.date() >= clean["ngay_nhan"]).all()
    assert (clean["ngay_cap_nhat"].dt.date() < AS_OF).all()
    done = clean.filter(pl.col("trang_thai") == "da_tra")
    assert (done["ngay_tra"] >= done["ngay_nhan"]).all()
    assert (done["ngay_cap_nhat"].dt.date() == done["ngay_tra"]).all()  # the return is the last update
    assert clean.filter(pl.col("trang_thai") == "dang_xu_ly")["ngay_tra"].is_null().all()


def test_no_arrivals_on_sundays_or_public_holidays(clean: pl.DataFrame):
    received = clean["ngay_nhan"]
    assert not (received.dt.weekday() == 7).any()  # ISO weekday 7 = Sunday
    assert not received.is_in(list(VIETNAM_HOLIDAYS)).any()
    # Due dates are working days too: offices count only Monday-Friday outside holidays.
    assert (clean["ngay_hen_tra"].dt.weekday() <= 5).all()
    assert not clean["ngay_hen_tra"].is_in(list(VIETNAM_HOLIDAYS)).any()


def test_arrivals_follow_the_weekly_cycle_and_dip_at_tet(clean: pl.DataFrame):
    per_weekday = clean["ngay_nhan"].dt.weekday().value_counts().sort("ngay_nhan")["count"].to_list()
    assert per_weekday[0] == max(per_weekday)  # Monday carries the weekend's backlog
    assert per_weekday[5] < 0.05 * ROWS  # Saturdays: only a few morning counters
    tet_2025 = clean.filter(pl.col("ngay_nhan").is_between(date(2025, 1, 20), date(2025, 2, 9))).height
    other_3_weeks = clean.filter(pl.col("ngay_nhan").is_between(date(2025, 3, 3), date(2025, 3, 23))).height
    assert tet_2025 < 0.7 * other_3_weeks  # the week before and the fortnight after Tết are quiet


def test_communes_are_the_current_units_of_province_37(clean: pl.DataFrame):
    from vietnam_provinces import Ward

    current = {f"{w.code.value:05d}" for w in Ward.iter_all() if w.province_code.value == 37}
    assert len(current) == 129  # Ninh Bình after 1 July 2025
    assert set(clean["ma_xa"]) <= current
    assert clean["ma_xa"].n_unique() > 120  # nearly every commune files something in 6,000 dossiers


def test_cccd_numbers_have_the_real_structure(clean: pl.DataFrame):
    cccd = clean["so_cccd"]
    assert cccd.str.contains(CCCD).all()
    province = cccd.str.slice(0, 3).cast(pl.Int32)
    assert province.is_between(1, 96).all()  # the 63 legacy province codes run 001 (Hà Nội) … 096 (Cà Mau)
    assert (cccd.str.slice(0, 3) == "037").mean() > 0.4  # most applicants were born in Ninh Bình
    century_sex = cccd.str.slice(3, 1).cast(pl.Int32)
    assert century_sex.is_in([0, 1, 2, 3]).all()  # 0/1: born 1900s male/female, 2/3: 2000s
    birth_year = pl.Series(century_sex // 2 * 100 + 1900) + cccd.str.slice(4, 2).cast(pl.Int32)
    assert (AS_OF.year - birth_year).is_between(18, 90).all()  # applicants are adults


def test_phone_numbers_are_vietnamese_mobiles_in_mixed_forms(clean: pl.DataFrame):
    phones = clean["so_dien_thoai"]
    national = phones.str.replace_all(r"[ .]", "").str.replace(r"^\+?84", "0")
    assert national.str.contains(r"^0(3[2-9]|5[2689]|7[06-9]|8[1-9]|9[0-46-9])\d{7}$").all()
    assert phones.str.starts_with("+84").any() and phones.str.contains(" ").any()
    assert phones.str.contains(r"^0\d{2}\.\d{3}\.\d{4}$").any()


def test_names_are_nfc_vietnamese_full_names(clean: pl.DataFrame):
    names = clean["ho_ten"].to_list()
    assert all(unicodedata.normalize("NFC", n) == n for n in names)
    assert all(3 <= len(n.split()) <= 4 for n in names)  # family + 1-2 middle + given name
    assert sum(n.startswith("Nguyễn ") for n in names) / len(names) > 0.25  # the commonest family name


def test_overdue_share_is_realistic_and_learnable(returned: pl.DataFrame):
    share = returned["is_overdue"].mean()
    assert 0.08 <= share <= 0.15  # the brief's target: 8-15 % returned after the due date
    by_field = dict(returned.group_by("linh_vuc").agg(pl.col("is_overdue").mean()).iter_rows())
    assert by_field["Đất đai"] > 3 * by_field["Hộ tịch"]  # land dossiers are the classic late ones


def test_recent_dossiers_are_often_pending(clean: pl.DataFrame):
    last_week = clean.filter(pl.col("ngay_nhan") >= date(2025, 10, 25))
    older = clean.filter(pl.col("ngay_nhan") < date(2025, 9, 1))
    assert (last_week["trang_thai"] == "dang_xu_ly").mean() > 0.2
    # Two months on, almost everything is done: only a rare long-overdue land dossier may still be open.
    assert (older["trang_thai"] == "dang_xu_ly").mean() < 0.002


# --- planted faults ---------------------------------------------------------------------------------------

def test_planted_fault_counts_follow_the_documented_rates():
    # rate × rows, rounded half up: 0.2 % of 20,000 = 40, 0.1 % = 20, 0.05 % = 10.
    assert planted_faults(20_000) == {"so_cccd_invalid": 40, "ngay_tra_before_ngay_nhan": 20,
                                      "ma_xa_unknown": 20, "ma_ho_so_duplicate": 10}
    assert planted_faults(3_000)["ma_ho_so_duplicate"] == 2  # 1.5 rounds up
    assert set(FAULTS) == set(planted_faults(1))


def _measured_faults(frame: pl.DataFrame) -> dict[str, int]:
    from vietnam_provinces import Ward

    current = [f"{w.code.value:05d}" for w in Ward.iter_all() if w.province_code.value == 37]
    return {
        "so_cccd_invalid": int((~frame["so_cccd"].str.contains(CCCD)).sum()),
        "ngay_tra_before_ngay_nhan": int((frame["ngay_tra"] < frame["ngay_nhan"]).sum()),
        "ma_xa_unknown": int((~frame["ma_xa"].is_in(current)).sum()),
        "ma_ho_so_duplicate": frame.height - frame["ma_ho_so"].n_unique(),
    }


def test_faulty_file_has_exactly_the_planted_faults(faulty: pl.DataFrame):
    expected = planted_faults(ROWS)
    assert _measured_faults(faulty) == expected
    assert faulty.height == ROWS + expected["ma_ho_so_duplicate"]  # duplicates are extra lines
    assert faulty.is_duplicated().sum() == 2 * expected["ma_ho_so_duplicate"]  # exact copies, original + copy
    assert faulty.select(pl.sum_horizontal(pl.col("ma_ho_so", "ngay_nhan", "trang_thai").null_count())).item() == 0


def test_clean_file_has_no_faults(clean: pl.DataFrame):
    assert _measured_faults(clean) == dict.fromkeys(FAULTS, 0)


# --- the indicator workbook -------------------------------------------------------------------------------

COMPONENTS = ["Cáp quang hộ gia đình", "Điện thoại thông minh", "Tài khoản định danh điện tử", "Chữ ký số cá nhân",
              "Tài khoản thanh toán số", "Tài khoản dịch vụ công trực tuyến", "Kỹ năng số cơ bản",
              "Kỹ năng an toàn thông tin cơ bản"]


@pytest.fixture(scope="module")
def sheet(clean_dir: Path):
    wb = openpyxl.load_workbook(clean_dir / "chi_so_xa_hoi_so.xlsx")
    assert wb.sheetnames == ["XHS"]
    return wb["XHS"]


def test_workbook_header_is_a_two_row_merged_report_header(sheet):
    merged = {str(r) for r in sheet.merged_cells.ranges}
    assert {"A1:K1", "A3:A4", "B3:B4", "C3:C4", "D3:K3"} <= merged  # title, 3 tall labels, the group header
    assert sheet["A1"].value.startswith("BÁO CÁO CHỈ SỐ XÃ HỘI SỐ")
    assert [sheet["A3"].value, sheet["B3"].value, sheet["C3"].value] == ["Mã xã", "Tên xã, phường", "Kỳ báo cáo"]
    assert sheet["D3"].value == "Tỷ lệ đạt các thành phần xã hội số (%)"
    assert [sheet.cell(4, c).value for c in range(4, 12)] == COMPONENTS


def test_workbook_has_one_row_per_commune_and_quarter_then_totals_and_note(sheet):
    rows = list(sheet.iter_rows(min_row=5, values_only=True))
    data = [r for r in rows if r[0] and re.fullmatch(r"\d{5}", str(r[0]))]
    assert len(data) == 129 * 8  # 129 communes × Quý 1/2024 … Quý 4/2025
    assert all(isinstance(r[0], str) for r in data)  # codes are text, keeping leading zeros
    assert {r[2] for r in data} == {f"Quý {q}/{y}" for y in (2024, 2025) for q in (1, 2, 3, 4)}
    totals, note = rows[len(data)], rows[len(data) + 1]
    assert totals[0] == "Tổng cộng / Bình quân" and totals[1] is None and totals[2] is None
    assert note[0].startswith("Ghi chú")
    for k in range(8):
        values = [r[3 + k] for r in data]
        assert all(0 <= v <= 100 and round(v, 1) == v for v in values)
        assert totals[3 + k] == pytest.approx(sum(values) / len(values), abs=0.051)  # the average, 1 decimal


def test_indicators_trend_upward_and_are_plausible_per_component(sheet):
    frame = pl.DataFrame(
        [r[:11] for r in sheet.iter_rows(min_row=5, values_only=True) if r[0] and re.fullmatch(r"\d{5}", str(r[0]))],
        schema=["ma_xa", "ten", "ky", *COMPONENTS], orient="row",
    )
    first, last = (frame.filter(pl.col("ky") == k).select(COMPONENTS).mean().row(0)
                   for k in ("Quý 1/2024", "Quý 4/2025"))
    assert all(b > a for a, b in zip(first, last, strict=True))  # every component improves over two years
    latest = dict(zip(COMPONENTS, last, strict=True))
    assert latest["Tài khoản định danh điện tử"] > 80 > 30 > latest["Chữ ký số cá nhân"]  # e-ID high, signatures low
