"""The user store: local accounts (argon2id hashes), grants (user, tenant, role) and saved console queries.

One SQLite file, `$TONGHOP_HOME/access/users.sqlite`, created mode 0600 in a 0700 folder. Nothing here ever
returns or prints a hash. Tenants are checked against `tenants/*.yaml`, roles against `roles.ROLES`.

`authenticate()` is the only way a password is checked: failed attempts are written to the audit log and
counted there — 5 failures of one account in 15 minutes lock it until the oldest of them is 15 minutes old,
50 failures overall pause every password sign-in the same way (a message says when to retry); an unknown
name costs the same hash verification as a known one.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pipelines.access import audit as _audit
from pipelines.access.audit import AuditLog, access_dir, secure_connect
from pipelines.access.roles import check_role
from pipelines.errors import TonghopError

# argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~40 ms here, so a sign-in stays far
# under the 1 s budget on a loaded 2-core server while a stolen hash still costs 19 MiB per guess.
HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
USER_LIMIT = 5
GLOBAL_LIMIT = 50
WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 10
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
_DUMMY_HASH: str | None = None

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, display_name TEXT, email TEXT UNIQUE, subject TEXT UNIQUE, password_hash TEXT,
    created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS grants (
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE, tenant TEXT NOT NULL, role TEXT NOT NULL,
    granted_at TEXT NOT NULL, PRIMARY KEY (user, tenant));
CREATE TABLE IF NOT EXISTS saved_queries (
    user TEXT NOT NULL, tenant TEXT NOT NULL, name TEXT NOT NULL, sql TEXT NOT NULL, saved_at TEXT NOT NULL,
    PRIMARY KEY (user, tenant, name));
"""


class AccessError(TonghopError):
    """A user-store command that cannot be done (unknown user or tenant, bad role, weak password…)."""


@dataclass(frozen=True)
class AuthResult:
    status: str  # ok | failed | locked | refused
    user: str | None = None
    display_name: str | None = None
    grants: dict[str, str] | None = None
    retry_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def known_tenants() -> list[str]:
    from pipelines.config import tenant_files

    return [p.stem for p in tenant_files()]


def generate_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, ~96 bits


def _now_text() -> str:
    return _audit.utcnow().isoformat(timespec="seconds")


class UserStore:
    def __init__(self, path: Path | None = None, audit: AuditLog | None = None):
        self.path = path or access_dir() / "users.sqlite"
        self.audit = audit or AuditLog(self.path.parent / "audit.sqlite")
        con = self._con()
        try:
            con.executescript(_SCHEMA)
        finally:
            con.close()

    def _con(self) -> sqlite3.Connection:
        con = secure_connect(self.path)
        con.execute("PRAGMA foreign_keys = ON")
        return con

    # --- accounts ---------------------------------------------------------------------------------------------
    def add_user(self, name: str, password: str | None = None, *, email: str | None = None,
                 display_name: str | None = None, subject: str | None = None) -> str | None:
        """Create an account; returns the generated password when none was given (shown once, never stored)."""
        if not NAME.match(name or ""):
            raise AccessError(f"user name '{(name or '')[:40]}' is not allowed — use 2-40 lowercase letters, digits, "
                              "'.', '_' or '-', starting with a letter or digit (e.g. nguyen.van.a)")
        if email is not None and not EMAIL.match(email):
            raise AccessError(f"'{email[:80]}' is not an e-mail address — give --email name@domain.vn")
        generated = None
        if password is None:
            password = generated = generate_password()
        self._check_password(password)
        con = self._con()
        try:
            con.execute("INSERT INTO users (name, display_name, email, subject, password_hash, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)", [name, display_name or name, email and email.lower(), subject,
                                                      HASHER.hash(password), _now_text()])
        except sqlite3.IntegrityError:
            raise AccessError(f"user '{name}' (or the e-mail {email}) already exists — "
                              "`tonghop users list` shows the accounts") from None
        finally:
            con.close()
        return generated

    @staticmethod
    def _check_password(password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AccessError(f"the password is shorter than {MIN_PASSWORD} characters — give a longer one, or "
                              "leave --password-stdin out to have one generated")

    def set_password(self, name: str, password: str | None = None) -> str | None:
        generated = None
        if password is None:
            password = generated = generate_password()
        self._check_password(password)
        self._update(name, "password_hash = ?", [HASHER.hash(password)])
        return generated

    def set_disabled(self, name: str, disabled: bool) -> None:
        self._update(name, "disabled = ?", [int(disabled)])

    def _update(self, name: str, assignment: str, params: list) -> None:
        con = self._con()
        try:
            if con.execute(f"UPDATE users SET {assignment} WHERE name = ?", [*params, name]).rowcount == 0:
                raise AccessError(f"no user '{name[:40]}' — `tonghop users list` shows the accounts")
        finally:
            con.close()

    def user(self, name: str) -> dict | None:
        con = self._con()
        try:
            row = con.execute("SELECT name, display_name, email, subject, disabled FROM users WHERE name = ?",
                              [name]).fetchone()
        finally:
            con.close()
        return None if row is None else dict(zip(("name", "display_name", "email", "subject", "disabled"), row,
                                                 strict=True))

    def user_by_identity(self, email: str | None, subject: str | None, issuer: str | None = None,
                         qualified_only: bool = False) -> dict | None:
        """The account an OIDC identity maps to: by subject first — `<issuer>#<sub>` as bound, then the bare
        `sub` unless `qualified_only` — then by (case-insensitive) e-mail.

        A `sub` is unique only within its issuer: with several providers configured, two people can carry the
        same one, so the app asks for the issuer-qualified binding then (`qualified_only`)."""
        con = self._con()
        try:
            row = None
            if subject and issuer:
                row = con.execute("SELECT name FROM users WHERE subject = ?", [f"{issuer}#{subject}"]).fetchone()
            if row is None and subject and not qualified_only:
                row = con.execute("SELECT name FROM users WHERE subject = ?", [subject]).fetchone()
            if row is None and email:
                row = con.execute("SELECT name FROM users WHERE email = ?", [email.lower()]).fetchone()
        finally:
            con.close()
        return None if row is None else self.user(row[0])

    def list_users(self) -> list[dict]:
        """Every account with its grants — never a hash."""
        con = self._con()
        try:
            users = con.execute("SELECT name, display_name, email, subject, disabled, created_at FROM users "
                                "ORDER BY name").fetchall()
            grants = con.execute("SELECT user, tenant, role FROM grants ORDER BY user, tenant").fetchall()
        finally:
            con.close()
        out = []
        for name, display, email, subject, disabled, created in users:
            out.append({"name": name, "display_name": display, "email": email, "subject": subject,
                        "disabled": bool(disabled), "created_at": created,
                        "grants": {t: r for u, t, r in grants if u == name}})
        return out

    # --- grants -----------------------------------------------------------------------------------------------
    def grant(self, name: str, tenant: str, role: str) -> None:
        try:
            check_role(role)
        except ValueError as exc:
            raise AccessError(str(exc)) from None
        tenants = known_tenants()
        if tenant not in tenants:
            raise AccessError(f"unknown tenant '{tenant[:40]}' — no tenants/{tenant[:40]}.yaml; known: "
                              f"{', '.join(tenants) or 'none'}")
        if self.user(name) is None:
            raise AccessError(f"no user '{name[:40]}' — create it first with `tonghop users add {name[:40]}`")
        con = self._con()
        try:
            con.execute("INSERT INTO grants (user, tenant, role, granted_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (user, tenant) DO UPDATE SET role = excluded.role, granted_at = excluded.granted_at",
                        [name, tenant, role, _now_text()])
        finally:
            con.close()

    def revoke(self, name: str, tenant: str) -> bool:
        con = self._con()
        try:
            return con.execute("DELETE FROM grants WHERE user = ? AND tenant = ?", [name, tenant]).rowcount > 0
        finally:
            con.close()

    def grants(self, name: str) -> dict[str, str]:
        """{tenant: role} of an enabled account, only tenants that still have a tenant file."""
        con = self._con()
        try:
            rows = con.execute("SELECT g.tenant, g.role FROM grants g JOIN users u ON u.name = g.user "
                               "WHERE g.user = ? AND u.disabled = 0 ORDER BY g.tenant", [name]).fetchall()
        finally:
            con.close()
        tenants = set(known_tenants())
        return {t: r for t, r in rows if t in tenants}

    # --- sign-in ----------------------------------------------------------------------------------------------
    def lockout(self, name: str) -> datetime | None:
        """When sign-ins for `name` may be tried again, or None when they may now."""
        now = _audit.utcnow()
        overall = self.audit.failures_since(now - WINDOW)
        if len(overall) >= GLOBAL_LIMIT:
            return overall[-GLOBAL_LIMIT] + WINDOW
        mine = self.audit.failures_since(now - WINDOW, user=name)
        if len(mine) >= USER_LIMIT:
            return mine[-USER_LIMIT] + WINDOW
        return None

    def authenticate(self, name: str, password: str) -> AuthResult:
        """Check a password sign-in, rate-limited and audited (see the module docstring)."""
        name = (name or "").strip().lower()[:64]
        retry = self.lockout(name)
        if retry is not None:
            self.audit.append("signin", "locked", user=name, reason="too many failed sign-ins",
                              detail={"retry_at": retry.isoformat(timespec="seconds")})
            return AuthResult("locked", user=name, retry_at=retry)
        con = self._con()
        try:
            row = con.execute("SELECT password_hash, display_name, disabled FROM users WHERE name = ?",
                              [name]).fetchone()
        finally:
            con.close()
        stored = row[0] if row and row[0] and not row[2] else None
        if not _verify(stored, password or ""):
            reason = "unknown user" if row is None else ("account disabled" if row[2] else "wrong password")
            self.audit.append("signin", "failed", user=name, reason=reason)
            retry = self.lockout(name)
            return AuthResult("locked" if retry else "failed", user=name, retry_at=retry)
        if HASHER.check_needs_rehash(stored):
            self._update(name, "password_hash = ?", [HASHER.hash(password)])
        grants = self.grants(name)
        if not grants:
            self.audit.append("signin", "refused", user=name, reason="no grant")
            return AuthResult("refused", user=name)
        self.audit.append("signin", "ok", user=name, detail={"via": "password"})
        return AuthResult("ok", user=name, display_name=row[1] or name, grants=grants)

    # --- saved queries ----------------------------------------------------------------------------------------
    def save_query(self, user: str, tenant: str, name: str, sql: str) -> None:
        name = (name or "").strip()[:80]
        if not name:
            raise AccessError("a saved query needs a name")
        con = self._con()
        try:
            con.execute("INSERT INTO saved_queries VALUES (?, ?, ?, ?, ?) ON CONFLICT (user, tenant, name) "
                        "DO UPDATE SET sql = excluded.sql, saved_at = excluded.saved_at",
                        [user, tenant, name, sql[:20_000], _now_text()])
        finally:
            con.close()

    def saved_queries(self, user: str, tenant: str) -> dict[str, str]:
        con = self._con()
        try:
            rows = con.execute("SELECT name, sql FROM saved_queries WHERE user = ? AND tenant = ? ORDER BY name",
                               [user, tenant]).fetchall()
        finally:
            con.close()
        return dict(rows)

    def delete_query(self, user: str, tenant: str, name: str) -> bool:
        con = self._con()
        try:
            return con.execute("DELETE FROM saved_queries WHERE user = ? AND tenant = ? AND name = ?",
                               [user, tenant, name]).rowcount > 0
        finally:
            con.close()


def _verify(stored: str | None, password: str) -> bool:
    """argon2 verification; with no stored hash, a dummy one is verified so timing does not tell."""
    global _DUMMY_HASH
    if stored is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = HASHER.hash(generate_password())
        stored, password = _DUMMY_HASH, password + "\x00never"
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


DEMO_USERS = {"lanh_dao": "demo-lanh-dao", "phan_tich": "demo-phan-tich", "ky_thuat": "demo-ky-thuat"}


def create_demo_users(store: UserStore, tenant: str) -> dict[str, tuple[str, str]]:
    """One demo account per role on `tenant` with a new generated password each call: {role: (name, password)}."""
    out = {}
    for role, name in DEMO_USERS.items():
        if store.user(name) is None:
            password = store.add_user(name, display_name=f"Demo {role}")
        else:
            password = store.set_password(name)
        store.grant(name, tenant, role)
        out[role] = (name, password)
    return out
