"""Tổng Hợp app: the main script (`make app` runs `streamlit run apps/main.py`). It only wires the pages.

One server serves every tenant a user is granted (issue 14). Each run: the sign-in gate (apps/auth.py:
`gate()` shows the sign-in form and stops until someone is signed in, re-checks expiry and grants), the tenant
(`choose_tenant`: a sidebar chooser only for a user granted more than one, kept in `?tenant=`), the account
line with sign-out. Every data query then reads the chosen tenant's snapshot (`apps.data` takes the tenant from
`auth.current_tenant()`). The menu lists only the pages the user's role in that tenant allows; each page also
calls `require(<its URL path>)` itself, so a page opened by URL or query parameters is checked as well.

Pages register through `st.navigation` with their Vietnamese titles; a page is listed only when its file
exists (pages are added by different people). Before the chosen page runs, `restore_state` takes language and
filters from the URL at a session's first run and writes them back on every run. After it, the sidebar offers
the one-click meeting report (apps/report.py) to roles with "report".

Nothing is served as a static file: the Data Docs are drawn in the quality page after a grant check
(apps/data_docs_view.py). `apps/.streamlit/config.toml` (read next to the main script, whatever the working
folder) hides the developer menu and "Deploy" (`client.toolbarMode = "viewer"`).
"""

from __future__ import annotations

import streamlit as st

from apps.auth import account_box, allowed, choose_tenant, gate
from apps.layout import registered_pages, restore_state

st.set_page_config(page_title="Tổng Hợp", page_icon="📊", layout="wide")
session = gate()  # the sign-in form and a stop until someone is signed in
choose_tenant(session)
account_box(session)
restore_state()
shown = [(path, title, icon, url) for path, title, icon, url in registered_pages() if allowed(url)]
pages = [st.Page(str(path), title=title, icon=icon, url_path=url, default=i == 0)
         for i, (path, title, icon, url) in enumerate(shown)]
current = st.navigation(pages)
current.run()

from apps.report import report_sidebar  # noqa: E402  (after the page: the report reads its filters)

if allowed("report"):
    report_sidebar([(url, title) for _, title, _, url in shown])
