"""Danh mục dữ liệu (data catalogue): the tenant's open data and, beside it, its databases and the data map.

Each section lives in its own module; this page only lays them out, so the open-data and data-map owners
never edit the same lines.
"""

from __future__ import annotations

from apps.layout import page_header
from apps.open_data_view import render_open_data

lang, version = page_header("catalogue_title")

# --- Open data: progress against the plan, refusals (apps/open_data_view.py) ------------------------------
render_open_data(lang)
# --- end of the open-data section ----------------------------------------------------------------------------
