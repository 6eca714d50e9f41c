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

import streamlit as st

from apps.layout import registered_pages, restore_state

st.set_page_config(page_title="Tổng Hợp", page_icon="📊", layout="wide")
restore_state()
pages = [st.Page(str(path), title=title, icon=icon, url_path=url, default=i == 0)
         for i, (path, title, icon, url) in enumerate(registered_pages())]
current = st.navigation(pages)
current.run()

from apps.report import report_sidebar  # noqa: E402  (after the page: the report reads its filters)

report_sidebar([(url, title) for _, title, _, url in registered_pages()])
