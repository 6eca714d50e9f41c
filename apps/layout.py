"""What every page starts with: page config, the language toggle (Vietnamese first) and the snapshot check."""

from __future__ import annotations

import streamlit as st

from apps import data
from apps.i18n import t


def page_header(title_key: str) -> tuple[str, str]:
    """Render the common header; return (lang, snapshot version). Stops the page when nothing is published."""
    st.set_page_config(page_title="Tổng Hợp", page_icon="📊", layout="wide")
    choice = st.sidebar.radio("Ngôn ngữ / Language", ["Tiếng Việt", "English"], index=0)
    lang = "en" if choice == "English" else "vi"
    version = data.snapshot_version()
    st.title(t(title_key, lang))
    if version is None:
        st.warning(t("no_snapshot", lang))
        st.stop()
    return lang, version
