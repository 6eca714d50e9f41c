"""Chất lượng dữ liệu uses the shared building blocks: every table through components.table (human labels,
counts kept as numbers and shown 1.234, .xlsx + CSV downloads), the trend chart through components.vn_chart
(the Vietnamese number locale in its spec). Figures come from the snapshot itself."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.apps.test_pages_b import english, ok, page, sql

pytestmark = pytest.mark.integration


def test_quality_tables_are_labelled_numeric_and_downloadable(province_app):
    at = ok(page("2_Chat_luong_du_lieu.py"))
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["config"]["locale"]["number"] == {"decimal": ",", "thousands": ".", "grouping": [3],
                                                  "currency": ["", " ₫"]}
    promotion = at.dataframe[0].value
    assert list(promotion.columns) == ["Nguồn dữ liệu", "Đọc vào", "Đưa vào sử dụng", "Cách ly"]
    expected = dict(sql(province_app, """SELECT source, n_rows_read FROM meta.loads WHERE status = 'passed'
                                         QUALIFY loaded_at = max(loaded_at) OVER (PARTITION BY source)"""))
    assert dict(zip(promotion["Nguồn dữ liệu"], promotion["Đọc vào"], strict=True)) == expected
    assert pd.api.types.is_integer_dtype(promotion["Đọc vào"])  # a number (sortable, #,##0 in the .xlsx)
    sources = sorted({s for s, in sql(province_app, """
        WITH latest AS (SELECT source, batch_id FROM meta.loads WHERE status IN ('passed', 'blocked')
                        QUALIFY row_number() OVER (PARTITION BY source ORDER BY loaded_at DESC) = 1)
        SELECT source FROM meta.validations JOIN latest USING (source, batch_id)""")})
    checks = [d.value for d in at.dataframe if "Dòng kiểm tra" in d.value.columns]
    assert len(checks) == len(sources)
    assert all(pd.api.types.is_integer_dtype(c["Dòng không đạt"]) for c in checks)
    labels = [b.proto.label for b in at.get("download_button")]
    # Two buttons under every table (the Data Docs zip, when built, is one more button of its own).
    assert labels.count("Tải Excel (.xlsx)") == labels.count("Tải CSV") == len(at.dataframe)
    english(at)
    assert list(at.dataframe[0].value.columns) == ["Source", "Read", "Promoted", "Quarantined"]
