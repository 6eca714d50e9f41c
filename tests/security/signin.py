"""Signing in from tests, through the real gate (apps/auth.py): no backdoor exists in the app.

    from tests.security.signin import make_user, sign_in, signed_in

    at = signed_in("apps/main.py", role="phan_tich", tenant="ninh-binh")  # a new user, signed in
    name, password = make_user("lanh_dao", "ninh-binh")                  # or by hand:
    at = AppTest.from_file(MAIN, default_timeout=60).run()               #   the sign-in form shows,
    sign_in(at, name, password)                                          #   filled and submitted

`make_user` writes to the user store of the current TONGHOP_HOME (each test has its own, tests/conftest.py),
with a real argon2 hash; `sign_in` types into the form's two text inputs and clicks its submit button, as a
browser user does, and checks that the form is gone (or returns the AppTest showing the error when
`expect_ok=False`). `choose(at, tenant)` picks a tenant in the sidebar chooser (users with several tenants).
"""

from __future__ import annotations

import itertools
import secrets

from streamlit.testing.v1 import AppTest

from pipelines.access.store import UserStore

_counter = itertools.count(1)


def make_user(role: str | None, tenant: str = "ninh-binh", *, name: str | None = None,
              grants: dict[str, str] | None = None, email: str | None = None) -> tuple[str, str]:
    """A new account with `role` on `tenant` (or the given `grants`, or none when role is None): (name, password)."""
    store = UserStore()
    name = name or f"test-{role or 'nogrant'}-{next(_counter)}"
    password = "pw-" + secrets.token_urlsafe(12)
    store.add_user(name, password, email=email)
    for t, r in (grants if grants is not None else ({tenant: role} if role else {})).items():
        store.grant(name, t, r)
    return name, password


def sign_in(at: AppTest, name: str, password: str, *, expect_ok: bool = True) -> AppTest:
    """Fill and submit the sign-in form of an AppTest that shows it; return the AppTest after the run."""
    if not at._tree:  # never run yet
        at.run()
    at.text_input(key="auth_user").input(name)
    at.text_input(key="auth_password").input(password)
    next(b for b in at.button if b.proto.is_form_submitter).click()
    at.run()
    if expect_ok:
        assert not at.exception, [e.message for e in at.exception]
        assert not _form_shown(at), [e.value for e in at.error]
    return at


def _form_shown(at: AppTest) -> bool:
    return any(w.key == "auth_password" for w in at.text_input)


def choose(at: AppTest, tenant: str) -> AppTest:
    """Pick `tenant` in the sidebar tenant chooser and rerun."""
    at.selectbox(key="w_auth_tenant").set_value(tenant).run()
    return at


def signed_in(script: str, role: str, tenant: str = "ninh-binh", *, timeout: float = 90,
              grants: dict[str, str] | None = None) -> AppTest:
    """AppTest of `script` (a file path) after a new user with `role` on `tenant` signed in."""
    name, password = make_user(role, tenant, grants=grants)
    at = AppTest.from_file(script, default_timeout=timeout).run()
    return sign_in(at, name, password)
