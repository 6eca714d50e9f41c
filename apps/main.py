"""Tổng Hợp app: the main script (`make app` runs `streamlit run apps/main.py`). It only wires the pages.

Pages register through `st.navigation` with their Vietnamese titles; a page is listed only when its file
exists (pages are added by different people). Before the chosen page runs, `restore_state` takes language and
filters from the URL at a session's first run and writes them back on every run (a page change clears the
URL). After it, the sidebar offers the one-click meeting report (apps/report.py).

Static files (Data Docs) are served from `apps/static` (`<main script folder>/static`) with
`--server.enableStaticServing true`; `apps/.streamlit/config.toml` (read next to the main script, whatever
the working folder) hides the developer menu and "Deploy" (`client.toolbarMode = "viewer"`).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from apps.layout import restore_state

HERE = Path(__file__).resolve().parent

# (file pattern under apps/, menu title, icon, URL path) — in menu order.
PAGES = [
    ("tong_quan.py", "Tổng quan", ":material/dashboard:", "tong-quan"),
    ("pages/*Thu_tuc_hanh_chinh*.py", "Thủ tục hành chính", ":material/description:", "thu-tuc-hanh-chinh"),
    ("pages/*Ban_do*.py", "Bản đồ", ":material/map:", "ban-do"),
    ("pages/*Chat_luong_du_lieu*.py", "Chất lượng dữ liệu", ":material/fact_check:", "chat-luong-du-lieu"),
    ("pages/*Danh_muc_du_lieu*.py", "Danh mục dữ liệu", ":material/menu_book:", "danh-muc-du-lieu"),
    ("pages/*Van_hanh*.py", "Vận hành", ":material/settings:", "van-hanh"),
]


def registered_pages() -> list[tuple[Path, str, str, str]]:
    """(file, title, icon, url path) of every page whose file exists, in menu order."""
    found = []
    for pattern, title, icon, url in PAGES:
        files = sorted(HERE.glob(pattern))
        if files:
            found.append((files[0], title, icon, url))
    return found


st.set_page_config(page_title="Tổng Hợp", page_icon="📊", layout="wide")
restore_state()
pages = [st.Page(str(path), title=title, icon=icon, url_path=url, default=i == 0)
         for i, (path, title, icon, url) in enumerate(registered_pages())]
current = st.navigation(pages)
current.run()

from apps.report import report_sidebar  # noqa: E402  (after the page: the report reads its filters)

report_sidebar([(url, title) for _, title, _, url in registered_pages()])
