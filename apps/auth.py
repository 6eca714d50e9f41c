"""Sign-in, roles and tenant isolation for the app: the contract every page codes against.

API (pipelines/access holds the store, sessions, audit; docs/access.md explains the whole):

- `gate() -> Session` — at the top of apps/main.py (and inside `require`): returns the signed-in session,
  or shows the Vietnamese sign-in form (English toggle) and `st.stop()`s. With OIDC configured in the
  secrets (`[auth]`), it also offers `st.login(...)` and maps `st.user` (subject, then verified e-mail) to the
  user store's grants; an identity with no grant is refused. Every run re-reads the grants (a revoke takes
  effect at the next click) and checks expiry (idle + absolute).
- `Session` — user, display_name, grants {tenant: role}, tenant (chosen), role.
- `choose_tenant(session) -> str` — a sidebar chooser only when the user has more than one tenant (kept in
  the URL as `?tenant=`). The gate checks the URL's tenant against the grants every run: an ungranted one
  is refused with a sentence, never served; the session `gate()` returns already carries the chosen tenant.
- `current_session() -> Session | None` — the signed-in session of this run (after `gate()`).
- `account_box(session)` — the sidebar line "name · role" with the sign-out button (call once per run).
- `allowed(capability, session=None) -> bool` and `require(capability) -> Session` — server-side check of
  the chosen tenant's role; `require` shows a Vietnamese refusal and `st.stop()`s. Capabilities: the page
  URL paths of apps/layout.py PAGES, "truy-van-sql", "export", "data-docs", "quality-details", "report",
  "audit" (pipelines/access/roles.py).
- `current_tenant() -> str` — the tenant of the signed-in session for the data-access layer; raises
  `AccessDenied` when there is no signed-in session or no grant for it.

There is no test backdoor: tests sign in through this form (tests/security/signin.py).
"""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import streamlit as st

from pipelines.access.roles import ROLE_NAMES
from pipelines.access.session import Session, expiry, new_session, refresh
from pipelines.access.store import UserStore

__all__ = ["AccessDenied", "Session", "account_box", "allowed", "choose_tenant", "current_session", "current_tenant",
           "gate",
           "require"]

SESSION_KEY = "_auth_session"
NOTICE_KEY = "_auth_notice"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")

TEXT = {
    "signin_title": {"vi": "Đăng nhập Tổng Hợp", "en": "Sign in to Tổng Hợp"},
    "user": {"vi": "Tên đăng nhập", "en": "User name"},
    "password": {"vi": "Mật khẩu", "en": "Password"},
    "submit": {"vi": "Đăng nhập", "en": "Sign in"},
    "failed": {"vi": "Tên đăng nhập hoặc mật khẩu không đúng.", "en": "Wrong user name or password."},
    "locked": {"vi": "Đăng nhập tạm bị khóa vì nhập sai quá nhiều lần. Vui lòng thử lại sau {at}.",
               "en": "Sign-in is locked after too many failed attempts. Please try again after {at}."},
    "no_grant": {"vi": "Tài khoản này chưa được cấp quyền vào đơn vị nào. Vui lòng liên hệ quản trị hệ thống.",
                 "en": "This account has no access to any tenant yet. Please contact the administrator."},
    "oidc_no_grant": {"vi": "Danh tính {who} chưa được cấp quyền trong Tổng Hợp. Vui lòng liên hệ quản trị hệ thống.",
                      "en": "The identity {who} has no access to Tổng Hợp. Please contact the administrator."},
    "oidc": {"vi": "Đăng nhập bằng {name}", "en": "Sign in with {name}"},
    "oidc_default": {"vi": "tài khoản định danh", "en": "single sign-on"},
    "or": {"vi": "hoặc dùng tài khoản cục bộ:", "en": "or use a local account:"},
    "expired_idle": {"vi": "Phiên làm việc đã hết hạn do không hoạt động. Vui lòng đăng nhập lại.",
                     "en": "Your session expired after a period of inactivity. Please sign in again."},
    "expired_absolute": {"vi": "Phiên làm việc đã hết thời hạn tối đa. Vui lòng đăng nhập lại.",
                         "en": "Your session reached its maximum length. Please sign in again."},
    "revoked": {"vi": "Quyền truy cập của tài khoản đã bị thu hồi. Vui lòng liên hệ quản trị hệ thống.",
                "en": "This account's access was revoked. Please contact the administrator."},
    "signed_out": {"vi": "Bạn đã đăng xuất.", "en": "You are signed out."},
    "refused_page": {"vi": "Vai trò «{role}» của bạn tại đơn vị {tenant} không được dùng chức năng này ({what}). "
                           "Nếu cần, hãy đề nghị quản trị hệ thống cấp quyền.",
                     "en": "Your role '{role}' in {tenant} does not give access to this ({what}). Ask the "
                           "administrator if you need it."},
    "refused_tenant": {"vi": "Bạn không có quyền truy cập đơn vị «{tenant}». Chỉ các đơn vị đã được cấp quyền mới "
                             "được hiển thị.",
                       "en": "You have no access to the tenant '{tenant}'. Only tenants granted to you are shown."},
    "tenant": {"vi": "Đơn vị", "en": "Tenant"},
    "signed_in_as": {"vi": "Đăng nhập: **{name}** · {role}", "en": "Signed in: **{name}** · {role}"},
    "sign_out": {"vi": "Đăng xuất", "en": "Sign out"},
}


class AccessDenied(Exception):
    """No signed-in session, or no grant for the tenant asked for (the data layer must not answer)."""


def _t(key: str, lang: str | None = None) -> str:
    lang = lang or _lang()
    return TEXT[key]["en" if lang == "en" else "vi"]


def _lang() -> str:
    return "en" if st.session_state.get("lang") == "en" else "vi"


_STORES: dict[str, UserStore] = {}
_STORES_LOCK = threading.Lock()


def store() -> UserStore:
    """The user store of this server's TONGHOP_HOME (opened once per home)."""
    from pipelines.access.audit import access_dir

    key = str(access_dir())
    with _STORES_LOCK:
        if key not in _STORES:
            _STORES[key] = UserStore()
        return _STORES[key]


def _when(at: datetime, lang: str) -> str:
    local = at.astimezone(TZ)
    return f"{local:%H:%M} ngày {local:%d/%m/%Y}" if lang == "vi" else f"{local:%H:%M} on {local:%Y-%m-%d} (ICT)"


# --- the gate -----------------------------------------------------------------------------------------------------

def gate() -> Session:
    """The signed-in session (re-checked: expiry, account, grants), or the sign-in screen and a stop."""
    current = st.session_state.get(SESSION_KEY)
    if current is not None:
        why = expiry(current)
        fresh = None if why else refresh(current, store())
        if fresh is not None:
            fresh = _url_tenant(fresh)
            st.session_state[SESSION_KEY] = fresh
            return fresh
        _end_session(notice=f"expired_{why}" if why else "revoked")
        if current.via == "oidc":  # st.logout() ends the identity cookie: never renew it in this same run
            _sign_in_screen(_oidc_providers())
            st.stop()
    oidc = _oidc_providers()
    if oidc and _oidc_logged_in():
        session = _oidc_session()
        if session is not None:
            session = _url_tenant(session)
            st.session_state[SESSION_KEY] = session
            return session
    _sign_in_screen(oidc)
    st.stop()
    raise AssertionError("unreachable")  # st.stop() ends the run


def _end_session(notice: str | None = None) -> None:
    session = st.session_state.pop(SESSION_KEY, None)
    if notice:
        st.session_state[NOTICE_KEY] = notice
    if session is not None and session.via == "oidc" and _oidc_logged_in():
        st.logout()


def _sign_in_screen(oidc: list[str | None]) -> None:
    from apps.layout import language_picker

    lang = language_picker()
    st.title(_t("signin_title", lang))
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(_t(notice, lang))
    if oidc:
        for provider in oidc:
            name = provider or _t("oidc_default", lang)
            st.button(_t("oidc", lang).format(name=name), key=f"auth_oidc_{provider or 'default'}",
                      on_click=st.login, args=(provider,) if provider else (), icon=":material/login:")
        st.caption(_t("or", lang))
    with st.form("auth_signin", clear_on_submit=True):
        name = st.text_input(_t("user", lang), key="auth_user", autocomplete="username")
        password = st.text_input(_t("password", lang), type="password", key="auth_password",
                                 autocomplete="current-password")
        submitted = st.form_submit_button(_t("submit", lang), type="primary")
    if not submitted:
        return
    result = store().authenticate(name, password)
    if result.ok:
        st.session_state[SESSION_KEY] = new_session(result.user, result.display_name, result.grants)
        st.rerun()
    if result.status == "locked":
        st.error(_t("locked", lang).format(at=_when(result.retry_at, lang)))
    elif result.status == "refused":
        st.error(_t("no_grant", lang))
    else:
        st.error(_t("failed", lang))


# --- OIDC (st.login): configured only through secrets ------------------------------------------------------------

def _oidc_providers() -> list[str | None]:
    """Providers in the secrets' [auth] section: None for a single unnamed one ([auth] with client_id), else
    the names of [auth.<name>] sub-sections. Empty when OIDC is not configured."""
    try:
        auth = st.secrets.get("auth")
    except Exception:  # noqa: BLE001 — no secrets file: OIDC is simply not configured
        return []
    if not auth:
        return []
    found: list[str | None] = [None] if "client_id" in auth else []
    found += [name for name, value in auth.items() if hasattr(value, "get") and "client_id" in value]
    return found


def _oidc_logged_in() -> bool:
    try:
        return bool(st.user.is_logged_in)
    except Exception:  # noqa: BLE001 — st.user unavailable (not configured)
        return False


def _oidc_session() -> Session | None:
    """Map the OIDC identity to an account (subject, then a verified e-mail); refuse one with no grant."""
    user = st.user
    subject = user.get("sub")
    # Only an e-mail the provider vouches for: a missing `email_verified` claim is not a yes (some providers
    # let a user type any address into a profile — binding accounts by it would let them take another's).
    # Providers that never send the claim map by subject (`tonghop users add … --subject`).
    email = user.get("email") if user.get("email_verified") in (True, "true") else None
    # With several providers a bare `sub` is ambiguous (unique only per issuer): only `<iss>#<sub>` binds.
    account = store().user_by_identity(email, subject, user.get("iss"), qualified_only=len(_oidc_providers()) > 1)
    grants = store().grants(account["name"]) if account and not account["disabled"] else {}
    who = email or subject or "?"
    if not grants:
        store().audit.append("signin", "refused", user=(account or {}).get("name") or who[:64],
                             reason="oidc identity without grant", detail={"via": "oidc"})
        lang = _lang()
        st.error(_t("oidc_no_grant", lang).format(who=who))
        st.button(_t("sign_out", lang), on_click=st.logout, key="auth_oidc_logout")
        st.stop()
    store().audit.append("signin", "ok", user=account["name"], detail={"via": "oidc"})
    return new_session(account["name"], account["display_name"] or user.get("name") or account["name"], grants,
                       via="oidc")


# --- tenant and capability checks ---------------------------------------------------------------------------------

def _refuse(key: str, lang: str, session: Session | None, reason: str, **fmt) -> None:
    store().audit.append("access", "refused", user=session.user if session else None,
                         tenant=session.tenant if session else None, reason=reason)
    st.error(_t(key, lang).format(**fmt))
    st.stop()


def _url_tenant(session: Session) -> Session:
    """The session with the tenant the URL asks for (`?tenant=`, a shared link or the chooser) when it is
    granted; an ungranted one is refused with a sentence and the run stops — whatever page it opens."""
    asked = st.query_params.get("tenant")
    if asked is None or asked == session.tenant:
        return session
    if asked not in session.grants:
        _refuse("refused_tenant", _lang(), session, f"tenant not granted: {asked[:60]}", tenant=asked[:60])
    from dataclasses import replace

    return replace(session, tenant=asked)


def choose_tenant(session: Session) -> str:
    """The tenant this run serves (the session's, already checked by the gate): a sidebar chooser when more
    than one is granted, kept in the URL (`?tenant=`) so a link opens the same tenant."""
    granted = sorted(session.grants)
    if len(granted) > 1:
        st.session_state["w_auth_tenant"] = session.tenant  # the widget starts from the kept choice
        st.sidebar.selectbox(_t("tenant"), granted, key="w_auth_tenant", format_func=_tenant_name,
                             on_change=_on_tenant_change)
        if st.query_params.get("tenant") != session.tenant:
            st.query_params["tenant"] = session.tenant
    elif "tenant" in st.query_params:
        del st.query_params["tenant"]
    return session.tenant


def _on_tenant_change() -> None:
    """The chooser changed: the URL carries the new tenant, which the next run checks against the grants."""
    chosen = st.session_state.get("w_auth_tenant")
    session = st.session_state.get(SESSION_KEY)
    if session is not None and chosen in session.grants:
        from dataclasses import replace

        st.session_state[SESSION_KEY] = replace(session, tenant=chosen)
        st.query_params["tenant"] = chosen


def _tenant_name(tenant: str) -> str:
    try:
        from pipelines.config import load_tenant

        cfg = load_tenant(tenant)
        return cfg.display_name_en if _lang() == "en" and cfg.display_name_en else cfg.display_name
    except Exception:  # noqa: BLE001 — a broken tenant file still shows its id
        return tenant


def account_box(session: Session) -> None:
    """Sidebar: who is signed in, with which role, and the sign-out button."""
    lang = _lang()
    role = ROLE_NAMES.get(session.role or "", {}).get(lang, session.role or "—")
    st.sidebar.markdown(_t("signed_in_as", lang).format(name=session.display_name, role=role))
    if st.sidebar.button(_t("sign_out", lang), key="auth_sign_out", icon=":material/logout:"):
        store().audit.append("signin", "signed_out", user=session.user, tenant=session.tenant)
        _end_session(notice="signed_out")
        st.rerun()


def current_session() -> Session | None:
    """The signed-in, unexpired session of this run with a granted tenant, or None."""
    return _session_now()


def _session_now() -> Session | None:
    session = st.session_state.get(SESSION_KEY)
    if session is None or expiry(session) is not None or session.tenant not in session.grants:
        return None
    return session


def allowed(page_or_capability: str, session: Session | None = None) -> bool:
    """True when the (given or current) session's role in its chosen tenant grants the capability."""
    session = session or _session_now()
    return session is not None and expiry(session) is None and session.allows(page_or_capability)


def require(page_or_capability: str) -> Session:
    """The session when it may use `page_or_capability`; otherwise a Vietnamese refusal and a stop. Signs in
    first (the gate) when nobody is — a page opened by URL is checked like one chosen from the menu."""
    session = gate()  # checks a `?tenant=` of the URL too
    if not session.allows(page_or_capability):
        lang = _lang()
        role = ROLE_NAMES.get(session.role or "", {}).get(lang, session.role or "—")
        _refuse("refused_page", lang, session, f"capability refused: {page_or_capability}", role=role,
                tenant=session.tenant, what=page_or_capability)
    return session


def current_tenant() -> str:
    """The signed-in session's chosen tenant, for the data-access layer. Raises AccessDenied otherwise."""
    session = _session_now()
    if session is None:
        raise AccessDenied("no signed-in session: the data layer answers only inside a signed-in run")
    return session.tenant



# --- the audit, for engineers (the operations page) ---------------------------------------------------------------

AUDIT_TEXT = {
    "audit_title": ("Nhật ký truy vấn SQL và truy cập", "SQL console and access log"),
    "audit_help": ("Mọi truy vấn của bảng điều khiển SQL (kể cả bị từ chối) và mọi lần bị từ chối truy cập tại đơn "
                   "vị này, mới nhất trước. Nhật ký chỉ được ghi thêm, không sửa hay xóa được; chuỗi băm: {chain}.",
                   "Every SQL console query (refused ones included) and every access refusal in this tenant, newest "
                   "first. The log is append-only; hash chain: {chain}."),
    "chain_ok": ("nguyên vẹn", "intact"),
    "chain_bad": ("BỊ SỬA từ dòng {id}", "ALTERED from row {id}"),
    "audit_empty": ("Chưa có truy vấn nào.", "No query yet."),
    "at": ("Thời điểm", "When"), "user": ("Người dùng", "User"), "kind": ("Loại", "Kind"),
    "status": ("Kết quả", "Outcome"), "reason": ("Lý do", "Reason"), "rows": ("Số dòng", "Rows"),
    "duration_ms": ("Thời gian (ms)", "Duration (ms)"), "sql": ("Câu lệnh", "Statement"),
}


def audit_panel(lang: str | None = None, limit: int = 300) -> None:
    """The audit of the chosen tenant (console queries and access refusals) for roles with "audit"
    (engineers); nothing for the others. Read-only: the page offers no way to change the log."""
    session = _session_now()
    if session is None or not session.allows("audit"):
        return
    import pandas as pd

    lang = lang or _lang()

    def tx(key: str) -> str:
        vi, en = AUDIT_TEXT[key]
        return en if lang == "en" else vi

    log = store().audit
    ok, bad = log.verify()
    st.subheader(tx("audit_title"))
    st.caption(tx("audit_help").format(chain=tx("chain_ok") if ok else tx("chain_bad").format(id=bad)))
    rows = log.recent(tenant=session.tenant, limit=limit)
    rows = [r for r in rows if r["kind"] in ("console", "access")]
    if not rows:
        st.info(tx("audit_empty"))
        return
    frame = pd.DataFrame(rows)[["at", "user", "kind", "status", "reason", "rows", "duration_ms", "sql"]]
    frame["at"] = frame["at"].map(lambda v: _when(datetime.fromisoformat(v), lang))
    st.dataframe(frame.rename(columns={c: tx(c) for c in frame.columns}), hide_index=True, width="stretch",
                 key="audit_log")
