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


def has_data(version, lang: str, needed: list[str], what_key: str, *, stop: bool = False) -> bool:
    """True when the snapshot holds every table in `needed`; otherwise explain, in the user's language, which
    data this part of the page needs and how a tenant gets it (a source mapped to the shared contract, or
    the model listed in the tenant file) — never a stack trace. `stop` ends the page there."""
    missing = [name for name in needed if name not in data.tables(version)]
    if not missing:
        return True
    st.info(t("needs_data", lang).format(what=t(what_key, lang), tables=", ".join(missing)))
    if stop:
        st.stop()
    return False
