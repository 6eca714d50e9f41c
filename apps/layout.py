"""What every page starts with: the language toggle (Vietnamese first), the title and the snapshot check.

API (for page authors; shared building blocks are in apps/components.py):

- `page_header(title_key) -> (lang, version)` — language radio in the sidebar (the choice survives page
  changes: session state + `?lang=` in the URL), the page title, and a stop with a sentence when the tenant
  has no serving snapshot yet.
- `has_data(version, lang, needed, what_key, *, stop=False) -> bool` — True when the snapshot holds every
  table in `needed`; otherwise an explanation of what is missing and which source/model would provide it.
- `current_lang()` — "vi" or "en", the session's choice.
- `PAGES` / `registered_pages()` — the menu (apps/main.py): title, icon, URL path per page file pattern.
- `restore_state()` — called by apps/main.py at the top of every run: a session's first run takes language
  and filters from the URL; every run writes them back (a page change clears the URL's parameters).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from apps import data
from apps.i18n import t

APPS = Path(__file__).resolve().parent

# (file pattern under apps/, menu title, icon, URL path) — in menu order.
PAGES = [
    ("tong_quan.py", "Tổng quan", ":material/dashboard:", "tong-quan"),
    ("pages/*Thu_tuc_hanh_chinh*.py", "Thủ tục hành chính", ":material/description:", "thu-tuc-hanh-chinh"),
    ("pages/*Phan_anh_kien_nghi*.py", "Phản ánh, kiến nghị", ":material/forum:", "phan-anh-kien-nghi"),
    ("pages/*Ban_do*.py", "Bản đồ", ":material/map:", "ban-do"),
    ("pages/*Chat_luong_du_lieu*.py", "Chất lượng dữ liệu", ":material/fact_check:", "chat-luong-du-lieu"),
    ("pages/*Danh_muc_du_lieu*.py", "Danh mục dữ liệu", ":material/menu_book:", "danh-muc-du-lieu"),
    ("pages/*Truy_van_SQL*.py", "Truy vấn SQL", ":material/terminal:", "truy-van-sql"),
    ("pages/*Van_hanh*.py", "Vận hành", ":material/settings:", "van-hanh"),
]


def registered_pages() -> list[tuple[Path, str, str, str]]:
    """(file, title, icon, url path) of every page whose file exists, in menu order."""
    found = []
    for pattern, title, icon, url in PAGES:
        files = sorted(APPS.glob(pattern))
        if files:
            found.append((files[0], title, icon, url))
    return found


LANGS = {"vi": "Tiếng Việt", "en": "English"}


def current_lang() -> str:
    lang = st.session_state.get("lang", "vi")
    return lang if lang in LANGS else "vi"


def restore_state() -> None:
    from apps.components import filters_to_url, restore_filters_from_url

    _lang_from_url_once()
    if not st.session_state.get("_url_restored"):
        restore_filters_from_url()
        st.session_state["_url_restored"] = True
    _lang_to_url()
    filters_to_url()


def _lang_from_url_once() -> None:
    """A session's first run takes the language from the URL (a shared link), whichever screen it opens on
    (the sign-in form too: signing in keeps the link's language)."""
    if not st.session_state.get("_lang_restored"):
        if st.query_params.get("lang") in LANGS:
            st.session_state["lang"] = st.query_params["lang"]
        st.session_state["_lang_restored"] = True


def _lang_to_url() -> None:
    if st.query_params.get("lang") != current_lang():
        st.query_params["lang"] = current_lang()


def _on_lang_change() -> None:
    st.session_state["lang"] = {label: code for code, label in LANGS.items()}[st.session_state["w_lang"]]


def language_picker() -> str:
    """The language radio (sidebar), kept across pages; returns "vi" or "en"."""
    _lang_from_url_once()
    lang = current_lang()
    st.session_state["w_lang"] = LANGS[lang]  # from the kept choice: a widget's state is dropped on a page change
    st.sidebar.radio("Ngôn ngữ / Language", list(LANGS.values()), key="w_lang", on_change=_on_lang_change)
    _lang_to_url()
    return lang


def page_header(title_key: str) -> tuple[str, str]:
    """Render the common header; return (lang, snapshot version). Stops the page when nothing is published."""
    lang = language_picker()
    version = data.snapshot_version()
    st.title(t(title_key, lang))
    if version is None:
        st.warning(t("no_snapshot", lang))
        st.stop()
    return lang, version


# Which shared contract (source) or model fills each mart a page may need: named in the explanation.
PROVIDERS = {
    "marts.ho_so_nguy_co_qua_han": "model overdue_risk (contract ho_so)",
    "marts.do_tin_cay_rui_ro": "model overdue_risk (contract ho_so)",
    "marts.du_bao_ho_so_tuan": "model inflow_forecast (contract ho_so)",
    "marts.du_bao_kiem_dinh": "model inflow_forecast (contract ho_so)",
    "marts.can_bo_de_xuat": "model staffing (contracts ho_so, can_bo)",
    "marts.can_bo_nang_suat": "model staffing (contracts ho_so, can_bo)",
    "marts.can_bo_qua_han_du_kien": "model staffing (contracts ho_so, can_bo)",
    "marts.can_bo_mo_phong": "model staffing (contracts ho_so, can_bo)",
    "marts.bat_thuong": "model anomalies",
    "marts.chuyen_doi_so_chi_tieu": "contract chi_so_cds_tinh",
    "marts.ho_so_thu_tuc_tuan": "contract ho_so (ma_xa)",
    "marts.ho_so_ton_dong_tuan": "contract ho_so",
    "marts.ho_so_ma_thu_tuc_tuan": "contract ho_so (ma_thu_tuc)",
    "marts.phan_anh_tuan": "contract phan_anh",
    "marts.phan_anh_ton_dong_tuan": "contract phan_anh",
}


def has_data(version, lang: str, needed: list[str], what_key: str, *, stop: bool = False) -> bool:
    """True when the snapshot holds every table in `needed`; otherwise explain, in the user's language, which
    data this part of the page needs and how a tenant gets it (a source mapped to the shared contract, or
    the model listed in the tenant file) — never a stack trace. `stop` ends the page there."""
    missing = [name for name in needed if name not in data.tables(version)]
    if not missing:
        return True
    named = ", ".join(f"{m} ← {PROVIDERS[m]}" if m in PROVIDERS else m for m in missing)
    st.info(t("needs_data", lang).format(what=t(what_key, lang), tables=named))
    if stop:
        st.stop()
    return False
