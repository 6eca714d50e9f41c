"""The user store, sign-in rate limits, sessions and the gate (apps/auth.py) — with real argon2 hashes, real
SQLite files under the test's TONGHOP_HOME, and AppTest signing in through the real form. The clock of the
access package (`pipelines.access.audit.utcnow`) is moved forward instead of sleeping."""

from __future__ import annotations

import io
import sqlite3
import stat
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from pipelines.access import audit as audit_mod
from pipelines.access import store as store_mod
from pipelines.access.session import expiry, new_session
from pipelines.access.store import AccessError, UserStore, create_demo_users
from pipelines.cli import main
from tests.fixtures.snapshots import MINISTRY
from tests.security.signin import choose, make_user, sign_in

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


class Clock:
    def __init__(self, monkeypatch):
        self.now = T0
        monkeypatch.setattr(audit_mod, "utcnow", lambda: self.now)

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def test_passwords_are_argon2_hashes_in_private_files_and_never_listed(_isolated_home):
    store = UserStore()
    store.add_user("nguyen.van.a", "a-long-password-1", email="A@NinhBinh.gov.vn")
    store.grant("nguyen.van.a", "ninh-binh", "phan_tich")
    folder = _isolated_home / "access"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("users.sqlite", "audit.sqlite"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    stored, = sqlite3.connect(folder / "users.sqlite").execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$") and "a-long-password-1" not in stored
    listed = store.list_users()
    assert listed[0]["grants"] == {"ninh-binh": "phan_tich"} and listed[0]["email"] == "a@ninhbinh.gov.vn"
    assert "$argon2" not in repr(listed)


def test_sign_in_checks_the_password_and_audits_every_attempt(clock):
    store = UserStore()
    store.add_user("lan.tt", "correct-horse-1")
    store.grant("lan.tt", "ninh-binh", "lanh_dao")
    store.add_user("no.grant", "correct-horse-2")
    assert store.authenticate("lan.tt", "wrong-horse-11").status == "failed"
    assert store.authenticate("ghost", "whatever-123").status == "failed"
    ok = store.authenticate(" LAN.TT ", "correct-horse-1")
    assert ok.ok and ok.grants == {"ninh-binh": "lanh_dao"}
    assert store.authenticate("no.grant", "correct-horse-2").status == "refused"
    events = [(e["user"], e["status"], e["reason"]) for e in reversed(store.audit.recent("signin"))]
    assert events == [("lan.tt", "failed", "wrong password"), ("ghost", "failed", "unknown user"),
                      ("lan.tt", "ok", None), ("no.grant", "refused", "no grant")]
    assert "correct-horse" not in repr(store.audit.recent())


def test_five_failures_lock_the_account_for_fifteen_minutes(clock):
    store = UserStore()
    name, password = make_user("phan_tich")
    statuses = []
    for _ in range(5):
        statuses.append(store.authenticate(name, "wrong-password-x").status)
        clock.advance(minutes=1)
    assert statuses == ["failed"] * 4 + ["locked"]
    locked = store.authenticate(name, password)  # even the right password, while locked
    assert locked.status == "locked" and locked.retry_at == T0 + timedelta(minutes=15)
    assert store.audit.recent("signin", user=name)[0]["status"] == "locked"
    other, other_pw = make_user("phan_tich")
    assert store.authenticate(other, other_pw).ok  # one account's lock is not everyone's
    clock.advance(minutes=11)  # 16 min after the first failure: four failures left in the window
    assert store.authenticate(name, password).ok
    assert store.authenticate(name, "wrong-password-x").status == "failed"  # a success clears the count


def test_many_failures_overall_pause_every_password_sign_in(clock, monkeypatch):
    monkeypatch.setattr(store_mod, "GLOBAL_LIMIT", 6)
    store = UserStore()
    name, password = make_user("lanh_dao")
    for i in range(6):  # a spray over many names, each below the per-account limit
        store.authenticate(f"spray{i}", "guess-password")
    result = store.authenticate(name, password)
    assert result.status == "locked" and result.retry_at == T0 + timedelta(minutes=15)
    clock.advance(minutes=15, seconds=1)
    assert store.authenticate(name, password).ok


def test_grants_are_checked_and_revoked(_isolated_home):
    store = UserStore()
    store.add_user("binh.lv", "binh-password-1")
    with pytest.raises(AccessError, match="unknown tenant 'ha-noi'"):
        store.grant("binh.lv", "ha-noi", "lanh_dao")
    with pytest.raises(AccessError, match="unknown role 'admin'"):
        store.grant("binh.lv", "ninh-binh", "admin")
    with pytest.raises(AccessError, match="no user 'ghost'"):
        store.grant("ghost", "ninh-binh", "lanh_dao")
    with pytest.raises(AccessError, match="shorter than 10"):
        store.add_user("short.pw", "abc")
    with pytest.raises(AccessError, match="not allowed"):
        store.add_user("Bad Name; DROP", "long-enough-1")
    store.grant("binh.lv", "ninh-binh", "lanh_dao")
    store.grant("binh.lv", "ninh-binh", "ky_thuat")  # a second grant on a tenant replaces the role
    store.grant("binh.lv", MINISTRY, "phan_tich")
    assert store.grants("binh.lv") == {MINISTRY: "phan_tich", "ninh-binh": "ky_thuat"}
    assert store.revoke("binh.lv", "ninh-binh") and not store.revoke("binh.lv", "ninh-binh")
    store.set_disabled("binh.lv", True)
    assert store.grants("binh.lv") == {}


def test_cli_users_add_grant_list_revoke_and_demo(_isolated_home, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("stdin-password-1\n"))
    assert main(["users", "add", "chi.nt", "--password-stdin", "--email", "chi@ninhbinh.gov.vn"]) == 0
    assert "password" not in capsys.readouterr().out.split("added user chi.nt")[1]
    assert UserStore().authenticate("chi.nt", "stdin-password-1").status == "refused"  # no grant yet
    assert main(["users", "add", "dung.pv"]) == 0
    generated = capsys.readouterr().out.rsplit(": ", 1)[1].strip()
    assert main(["users", "grant", "dung.pv", "ninh-binh", "ky_thuat"]) == 0
    assert UserStore().authenticate("dung.pv", generated).ok  # the printed password is the one stored
    assert main(["users", "grant", "dung.pv", "tinh-khong-co", "ky_thuat"]) == 2
    assert "unknown tenant 'tinh-khong-co'" in capsys.readouterr().err
    assert main(["users", "list"]) == 0
    out = capsys.readouterr().out
    assert "dung.pv" in out and "ninh-binh:ky_thuat" in out and "argon2" not in out and generated not in out
    assert main(["users", "revoke", "dung.pv", "ninh-binh"]) == 0
    assert main(["users", "revoke", "dung.pv", "ninh-binh"]) == 2
    assert main(["users", "demo", "--tenant", "ninh-binh"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if "password" in line and "user" in line]
    assert {(role, user) for role, _, user, _, _ in lines} == {("lanh_dao", "demo-lanh-dao"),
                                                              ("phan_tich", "demo-phan-tich"),
                                                              ("ky_thuat", "demo-ky-thuat")}
    for _, _, user, _, password in lines:
        assert UserStore().authenticate(user, password).ok
    assert main(["users", "audit", "--kind", "signin", "--user", "dung.pv"]) == 0
    out = capsys.readouterr().out
    assert " signin  ok " in out and "hash chain intact" in out and generated not in out
    again = create_demo_users(UserStore(), "ninh-binh")  # a second `make demo`: new passwords, same accounts
    assert again["lanh_dao"][1] != dict((u, p) for _, _, u, _, p in lines)["demo-lanh-dao"]


def test_session_expiry_idle_and_absolute(clock, monkeypatch):
    monkeypatch.setenv("TONGHOP_SESSION_IDLE_MINUTES", "30")
    monkeypatch.setenv("TONGHOP_SESSION_MAX_HOURS", "8")
    session = new_session("a", "A", {"ninh-binh": "lanh_dao"})
    assert expiry(session, T0 + timedelta(minutes=29)) is None
    assert expiry(session, T0 + timedelta(minutes=31)) == "idle"
    from dataclasses import replace

    busy = replace(session, last_seen=T0 + timedelta(hours=8))
    assert expiry(busy, T0 + timedelta(hours=8, minutes=1)) == "absolute"


# --- the gate in a Streamlit run ------------------------------------------------------------------------------

GATED = """
import streamlit as st
from apps.auth import account_box, allowed, choose_tenant, current_tenant, gate
session = gate()
tenant = choose_tenant(session)
account_box(session)
st.header(f"tenant={current_tenant()} role={session.role} sql={allowed('truy-van-sql')} ops={allowed('van-hanh')}")
"""


def gated() -> AppTest:
    return AppTest.from_string(GATED, default_timeout=60).run()


def header(at: AppTest) -> str:
    return at.header[0].value if at.header else ""


def test_gate_signs_in_and_refuses_the_wrong_password_in_vietnamese(clock):
    name, password = make_user("ky_thuat")
    at = gated()
    assert at.title[0].value == "Đăng nhập Tổng Hợp" and not at.header
    sign_in(at, name, "not-the-password", expect_ok=False)
    assert [e.value for e in at.error] == ["Tên đăng nhập hoặc mật khẩu không đúng."] and not at.header
    sign_in(at, name, password)
    assert header(at) == "tenant=ninh-binh role=ky_thuat sql=True ops=True"
    assert not any(s.key == "w_auth_tenant" for s in at.sidebar.selectbox)  # one tenant: no chooser


def test_locked_sign_in_says_when_to_retry(clock):
    name, password = make_user("lanh_dao")
    at = gated()
    for _ in range(5):
        sign_in(at, name, "wrong-password-x", expect_ok=False)
    assert at.error[0].value == ("Đăng nhập tạm bị khóa vì nhập sai quá nhiều lần. Vui lòng thử lại sau "
                                 "09:15 ngày 01/12/2026.")  # 02:00 UTC + 15 min, in Vietnam's time
    sign_in(at, name, password, expect_ok=False)
    assert "tạm bị khóa" in at.error[0].value and not at.header


def test_sessions_expire_when_idle(clock):
    name, password = make_user("phan_tich")
    at = sign_in(gated(), name, password)
    clock.advance(minutes=29)
    at.run()
    assert header(at).startswith("tenant=ninh-binh")
    clock.advance(minutes=31)
    at.run()
    assert not at.header and at.text_input(key="auth_password")
    assert "hết hạn" in at.info[0].value


def test_sign_out_ends_the_session(clock):
    name, password = make_user("lanh_dao")
    at = sign_in(gated(), name, password)
    at.sidebar.button(key="auth_sign_out").click().run()
    assert not at.header and at.text_input(key="auth_password") and at.info[0].value == "Bạn đã đăng xuất."
    assert UserStore().audit.recent("signin", user=name)[0]["status"] == "signed_out"


def test_revoke_and_role_change_take_effect_at_the_next_run(clock):
    name, password = make_user("ky_thuat")
    at = sign_in(gated(), name, password)
    UserStore().grant(name, "ninh-binh", "lanh_dao")
    at.run()
    assert header(at) == "tenant=ninh-binh role=lanh_dao sql=False ops=False"
    UserStore().revoke(name, "ninh-binh")
    at.run()
    assert not at.header and "thu hồi" in at.info[0].value


def test_tenant_chooser_for_several_grants_and_forged_tenants_refused(clock):
    name, password = make_user(None, grants={"ninh-binh": "lanh_dao", MINISTRY: "phan_tich"})
    at = sign_in(gated(), name, password)
    assert header(at) == f"tenant={MINISTRY} role=phan_tich sql=True ops=False"
    choose(at, "ninh-binh")
    assert header(at) == "tenant=ninh-binh role=lanh_dao sql=False ops=False"
    assert at.query_params["tenant"] == "ninh-binh"
    # Someone with one tenant edits the URL to the other one: refused, and nothing of it is served.
    single, single_pw = make_user("phan_tich", "ninh-binh")
    at = AppTest.from_string(GATED, default_timeout=60)
    at.query_params["tenant"] = MINISTRY
    sign_in(at.run(), single, single_pw)
    assert not at.header and "không có quyền truy cập đơn vị" in at.error[0].value
    assert UserStore().audit.recent("access", user=single)[0]["reason"] == f"tenant not granted: {MINISTRY}"


def test_current_tenant_refuses_outside_a_signed_in_run():
    from apps.auth import AccessDenied, current_tenant

    with pytest.raises(AccessDenied):
        current_tenant()


def test_sign_in_form_in_english(clock):
    at = gated()
    at.sidebar.radio(key="w_lang").set_value("English").run()
    assert at.title[0].value == "Sign in to Tổng Hợp"
    assert [t.label for t in at.text_input] == ["User name", "Password"]


# --- OIDC (st.login): configured only through secrets; identities mapped to the store's grants ------------------

AUTH_SECRETS = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "c" * 32,
                "keycloak": {"client_id": "tonghop", "client_secret": "not-used-in-tests",
                             "server_metadata_url": "https://sso.example.gov.vn/.well-known/openid-configuration"}}


def oidc_app(user: dict, secrets: dict | None = None) -> AppTest:
    at = AppTest.from_string(GATED, default_timeout=60)
    at.secrets["auth"] = secrets or AUTH_SECRETS
    at.user = user
    return at.run()


def test_with_several_providers_a_subject_binds_only_with_its_issuer(clock):
    """`sub` is unique per issuer only: with two providers, the other provider's user with the same `sub` must
    not get the account bound to a bare `sub`; the issuer-qualified binding maps exactly one identity."""
    two = {**AUTH_SECRETS, "vneid": {**AUTH_SECRETS["keycloak"], "server_metadata_url":
                                     "https://vneid.example.gov.vn/.well-known/openid-configuration"}}
    kc, vneid = "https://sso.example.gov.vn/realms/tinh", "https://vneid.example.gov.vn"
    UserStore().add_user("bare-sub", "pw-" + "x" * 16, subject="4711")
    UserStore().grant("bare-sub", "ninh-binh", "ky_thuat")
    # One provider: the bare binding still maps (as before).
    at = oidc_app({"is_logged_in": True, "sub": "4711", "iss": kc})
    assert header(at) == "tenant=ninh-binh role=ky_thuat sql=True ops=True"
    # Two providers: the same bare `sub` from either issuer maps nobody.
    for issuer in (kc, vneid):
        at = oidc_app({"is_logged_in": True, "sub": "4711", "iss": issuer}, two)
        assert not at.header and "chưa được cấp quyền" in at.error[0].value, issuer
    # Bound as <iss>#<sub>: that issuer's user only.
    UserStore().add_user("qualified", "pw-" + "y" * 16, subject=f"{kc}#4711")
    UserStore().grant("qualified", "ninh-binh", "lanh_dao")
    at = oidc_app({"is_logged_in": True, "sub": "4711", "iss": kc}, two)
    assert header(at) == "tenant=ninh-binh role=lanh_dao sql=False ops=False"
    at = oidc_app({"is_logged_in": True, "sub": "4711", "iss": vneid}, two)
    assert not at.header, "another issuer's user with the same sub got the account"


def test_oidc_button_and_identities_mapped_to_grants(clock):
    at = oidc_app({"is_logged_in": False})
    assert [b.label for b in at.button][0] == "Đăng nhập bằng keycloak"  # and the local form below it
    assert at.text_input(key="auth_password")
    name, _ = make_user("phan_tich", email="hoa.nt@ninhbinh.gov.vn")
    at = oidc_app({"is_logged_in": True, "email": "Hoa.NT@ninhbinh.gov.vn", "email_verified": True, "sub": "kc-1"})
    assert header(at) == "tenant=ninh-binh role=phan_tich sql=True ops=False"
    assert UserStore().audit.recent("signin", user=name)[0]["status"] == "ok"
    clock.advance(minutes=31)  # idle: the session ends and the identity cookie is not silently renewed
    at.run()
    assert not at.header and "hết hạn" in at.info[0].value
    # An unverified e-mail maps to nothing; an identity with no account is refused, and audited.
    at = oidc_app({"is_logged_in": True, "email": "hoa.nt@ninhbinh.gov.vn", "email_verified": False, "sub": "x"})
    assert not at.header and "chưa được cấp quyền" in at.error[0].value
    # Nor one the provider says nothing about (no `email_verified` claim): a typed-in profile address.
    at = oidc_app({"is_logged_in": True, "email": "hoa.nt@ninhbinh.gov.vn", "sub": "attacker-1"})
    assert not at.header and "chưa được cấp quyền" in at.error[0].value
    at = oidc_app({"is_logged_in": True, "email": "stranger@example.com", "email_verified": True, "sub": "kc-9"})
    assert not at.header and "stranger@example.com" in at.error[0].value
    assert UserStore().audit.recent("signin", status="refused")[0]["reason"] == "oidc identity without grant"
