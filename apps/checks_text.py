"""Great Expectations checks in words, Vietnamese or English, from the expectation type and its column(s):
'expect_column_values_to_not_be_null' on `ma_ho_so` → "ma_ho_so không được trống". Generated rather than
taken from the suite's English description, so every check reads the same in both languages."""

from __future__ import annotations

# {type: (vi, en)}: {col} is the column (or "a, b" for a pair/compound check), {a}/{b} the pair's columns.
CHECKS: dict[str, tuple[str, str]] = {
    "expect_column_values_to_not_be_null": ("{col} không được trống", "{col} must not be empty"),
    "expect_column_values_to_be_null": ("{col} phải để trống", "{col} must be empty"),
    "expect_column_values_to_be_unique": ("{col} không được trùng lặp", "{col} must be unique"),
    "expect_compound_columns_to_be_unique": ("bộ ({col}) không được trùng lặp", "({col}) must be unique together"),
    "expect_select_column_values_to_be_unique_within_record": ("({col}) không được trùng nhau trong một dòng",
                                                               "({col}) must differ within a row"),
    "expect_column_values_to_be_in_set": ("{col} phải thuộc danh sách giá trị cho phép",
                                          "{col} must be one of the allowed values"),
    "expect_column_values_to_not_be_in_set": ("{col} không được mang giá trị bị cấm",
                                              "{col} must not take a forbidden value"),
    "expect_column_values_to_be_between": ("{col} phải nằm trong khoảng cho phép", "{col} must be within its range"),
    "expect_column_values_to_match_regex": ("{col} phải đúng định dạng", "{col} must match its format"),
    "expect_column_values_to_not_match_regex": ("{col} không được có dạng bị cấm",
                                                "{col} must not match the forbidden format"),
    "expect_column_values_to_be_of_type": ("{col} phải đúng kiểu dữ liệu", "{col} must have the right type"),
    "expect_column_value_lengths_to_be_between": ("độ dài {col} phải nằm trong khoảng cho phép",
                                                  "the length of {col} must be within its range"),
    "expect_column_pair_values_a_to_be_greater_than_b": ("{a} phải không nhỏ hơn {b}", "{a} must be at least {b}"),
    "expect_column_pair_values_to_be_equal": ("{a} phải bằng {b}", "{a} must equal {b}"),
    "expect_column_to_exist": ("bảng phải có cột {col}", "the table must have the column {col}"),
    "expect_table_row_count_to_be_between": ("số dòng của bảng phải nằm trong khoảng cho phép",
                                             "the table's row count must be within its range"),
    "expect_table_row_count_to_equal": ("số dòng của bảng phải đúng bằng mức quy định",
                                        "the table must have the expected number of rows"),
    "expect_table_columns_to_match_set": ("bảng phải có đúng các cột theo hợp đồng",
                                          "the table must have exactly the contract's columns"),
    "expect_column_mean_to_be_between": ("trung bình của {col} phải nằm trong khoảng cho phép",
                                         "the mean of {col} must be within its range"),
    "expect_column_max_to_be_between": ("giá trị lớn nhất của {col} phải nằm trong khoảng cho phép",
                                        "the maximum of {col} must be within its range"),
    "expect_column_min_to_be_between": ("giá trị nhỏ nhất của {col} phải nằm trong khoảng cho phép",
                                        "the minimum of {col} must be within its range"),
}
GENERIC = ("{col}: kiểm tra «{kind}»", "{col}: check '{kind}'")
SEVERITY = {"block": ("chặn", "blocking"), "warn": ("cảnh báo", "warning")}


def check_text(expectation: str, column: str | None, lang: str) -> str:
    """The check in words. `column` as stored in meta.validations: one name, "a,b" for a pair, or None."""
    column = column if isinstance(column, str) else ""  # None or a pandas NaN: a table-level check
    columns = [c.strip() for c in column.split(",") if c.strip()]
    col = ", ".join(columns) or ("bảng" if lang == "vi" else "table")
    a, b = (columns + ["?", "?"])[:2]
    vi, en = CHECKS.get(expectation, GENERIC)
    kind = expectation.removeprefix("expect_").replace("_", " ")
    return (vi if lang == "vi" else en).format(col=col, a=a, b=b, kind=kind)


def severity_text(severity: str | None, lang: str) -> str:
    vi, en = SEVERITY.get(severity or "", (severity or "—", severity or "—"))
    return vi if lang == "vi" else en
