"""The publication gate: each refusal class, its reason naming dataset and column, and what stays online."""

from __future__ import annotations

import json

import duckdb
import pytest

from tests.publish.conftest import open_folder, publish, with_plan


def _alter(cfg, *sql: str) -> None:
    with duckdb.connect(str(open_folder(cfg).parent / "serving.duckdb")) as con:
        for statement in sql:
            con.execute(statement)


def _refused(result, ds_id: str) -> str:
    assert ds_id in result.refused, result.summary()
    return " | ".join(result.refused[ds_id])


@pytest.mark.parametrize(("column", "why"), [
    ("dien_thoai_lien_he", "named like personal data"),
    ("so_dien_thoai", "declared personal"),  # the tenant's personal_columns
    ("nguoi_nop_token", "a pseudonym token"),
    ("so_cccd_nguoi_nop", "declared personal"),  # a personal column of the ho_so contract
    ("dia_chi_nguoi_nop", "named like personal data"),
    ("email", "named like personal data"),
])
def test_personal_columns_are_refused(province, column, why):
    _alter(province, f"ALTER TABLE marts.xa_hoi_so_tinh ADD COLUMN {column} VARCHAR DEFAULT 'x'")
    result = publish(province)
    reason = _refused(result, "xa_hoi_so_toan_tinh")
    assert f"dataset 'xa_hoi_so_toan_tinh': column '{column}' is {why}" in reason
    assert "xa_hoi_so_toan_tinh" not in result.written and not (open_folder(province) / "xa_hoi_so_toan_tinh").exists()
    # dropping it publishes the rest
    fixed = publish(with_plan(province, xa_hoi_so_toan_tinh={"drop_columns": [column]}))
    assert "xa_hoi_so_toan_tinh" in fixed.written and "xa_hoi_so_toan_tinh" not in fixed.refused


@pytest.mark.parametrize(("value", "label"), [
    ("012345678901", "CCCD-shaped (12 digits)"),
    ("Gọi 0912 345 678 để hỏi", "Vietnamese phone-shaped"),
    ("+84912345678", "Vietnamese phone-shaped"),
    ("lien.he@example.vn", "e-mail-shaped"),
])
def test_personal_values_in_text_columns_are_refused(province, value, label):
    _alter(province, "UPDATE marts.ho_so_tuan SET linh_vuc = ? WHERE rowid IN (SELECT rowid FROM marts.ho_so_tuan "
           "LIMIT 2)".replace("?", "'" + value + "'"))
    result = publish(province)
    reason = _refused(result, "ho_so_theo_tuan")
    assert f"dataset 'ho_so_theo_tuan': column 'linh_vuc' holds 2 {label} value(s)" in reason
    report = (open_folder(province) / "publish_report.json").read_text(encoding="utf-8")
    assert value not in report  # the reason never copies the value


def test_plain_figures_are_not_mistaken_for_personal_data(province):
    """Dates, agency names and counts of the shipped plan pass the value scan (no false refusal)."""
    result = publish(province)
    assert set(result.refused) == {"ho_so_theo_xa_tuan"}  # small cells only, see below


def test_small_cells_are_refused(province):
    result = publish(province)
    reason = _refused(result, "ho_so_theo_xa_tuan")
    assert reason.startswith("dataset 'ho_so_theo_xa_tuan': column 'n_tiep_nhan' — ")
    assert "cell(s) of (tuan_bat_dau, ma_xa) count fewer than 5 records" in reason
    # the minimum is per dataset: the same cells pass with a minimum of 1 (no cell has 0 < n < 1)
    lenient = with_plan(province, ho_so_theo_xa_tuan={"min_rows_per_cell": 1})
    assert "ho_so_theo_xa_tuan" in publish(lenient).written
    # counted rows (no count column) against the minimum: 8 rows (components) per (nam, quy) in xa_hoi_so_tinh
    rows = with_plan(province, xa_hoi_so_toan_tinh={"cell_columns": ["nam", "quy"], "min_rows_per_cell": 9})
    reason = _refused(publish(rows), "xa_hoi_so_toan_tinh")
    assert "column 'quy' (rows)" in reason and "count fewer than 9 records" in reason


def test_a_failed_blocking_check_of_a_feeding_source_refuses_its_datasets(province):
    _alter(province, """INSERT INTO meta.validations (run_id, batch_id, source, suite, expectation, column_name,
        severity, is_success, description, validated_at) VALUES ('later', 'later', 'ho_so', 'ho_so',
        'expect_column_values_to_not_be_null', 'ngay_nhan', 'block', false, 'ngày nhận không được trống',
        now() + INTERVAL 1 DAY)""")
    result = publish(province)
    reason = _refused(result, "ho_so_theo_tuan")
    assert ("dataset 'ho_so_theo_tuan': column 'ngay_nhan' of source 'ho_so' failed the blocking check "
            "'ngày nhận không được trống' in run later") in reason
    assert "thoi_gian_xu_ly_ho_so" in result.refused  # also fed by ho_so
    assert "xa_hoi_so_toan_tinh" in result.written  # fed by chi_so_xa_hoi_so only


def test_a_refused_dataset_keeps_its_previous_version_online(province):
    publish(province)
    folder = open_folder(province)
    _alter(province, """INSERT INTO meta.validations (run_id, batch_id, source, suite, expectation, column_name,
        severity, is_success, description, validated_at) VALUES ('later', 'later', 'ho_so', 'ho_so', 'x',
        'ma_ho_so', 'block', false, 'mã hồ sơ duy nhất', now() + INTERVAL 1 DAY)""")
    result = publish(province)
    assert "ho_so_theo_tuan" in result.refused
    assert (folder / "ho_so_theo_tuan" / "ho_so_theo_tuan.csv").exists()
    row = {d["id"]: d for d in json.loads((folder / "publish_report.json").read_text())["datasets"]}["ho_so_theo_tuan"]
    assert row["status"] == "refused" and row["online_version"] == "1.0.0" and not row["withdrawn"]
    assert "ho_so_theo_tuan/ho_so_theo_tuan.csv" in (folder / "catalog.ttl").read_text(encoding="utf-8")


def test_a_personal_data_refusal_withdraws_the_previous_version(province):
    publish(province)
    folder = open_folder(province)
    _alter(province, "UPDATE marts.ho_so_tuan SET co_quan = 'lien.he@example.vn' WHERE rowid = 0")
    result = publish(province)
    assert "ho_so_theo_tuan" in result.refused
    assert not (folder / "ho_so_theo_tuan").exists()
    assert "ho_so_theo_tuan" not in (folder / "catalog.ttl").read_text(encoding="utf-8")


def test_a_table_missing_from_the_snapshot_is_refused(province):
    _alter(province, "DROP TABLE marts.xa_hoi_so_tinh")
    reason = _refused(publish(province), "xa_hoi_so_toan_tinh")
    assert "dataset 'xa_hoi_so_toan_tinh': table 'marts.xa_hoi_so_tinh' is not in the serving snapshot" in reason
