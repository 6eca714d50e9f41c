"""A signed-in session, without Streamlit: who, their grants, the chosen tenant, and when it expires.

Idle expiry (`TONGHOP_SESSION_IDLE_MINUTES`, default 30) and absolute expiry (`TONGHOP_SESSION_MAX_HOURS`,
default 8). Grants are re-read from the user store on every run (`refresh`), so a revoke or a disabled
account takes effect at the user's next click.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from pipelines.access import audit as _audit
from pipelines.access.roles import role_allows


def idle_limit() -> timedelta:
    return timedelta(minutes=float(os.environ.get("TONGHOP_SESSION_IDLE_MINUTES") or 30))


def absolute_limit() -> timedelta:
    return timedelta(hours=float(os.environ.get("TONGHOP_SESSION_MAX_HOURS") or 8))


@dataclass(frozen=True)
class Session:
    user: str
    display_name: str
    grants: dict[str, str] = field(default_factory=dict)  # {tenant: role}
    tenant: str | None = None  # the chosen tenant (always one of `grants`)
    via: str = "password"  # password | oidc
    signed_in_at: datetime | None = None
    last_seen: datetime | None = None

    @property
    def role(self) -> str | None:
        return self.grants.get(self.tenant) if self.tenant else None

    def allows(self, capability: str) -> bool:
        return role_allows(self.role, capability)


def new_session(user: str, display_name: str, grants: dict[str, str], via: str = "password") -> Session:
    now = _audit.utcnow()
    tenant = sorted(grants)[0] if grants else None
    return Session(user, display_name, dict(grants), tenant, via, now, now)


def expiry(session: Session, now: datetime | None = None) -> str | None:
    """'idle' or 'absolute' when the session has expired, else None."""
    now = now or _audit.utcnow()
    if session.signed_in_at is None or now - session.signed_in_at > absolute_limit():
        return "absolute"
    if session.last_seen is None or now - session.last_seen > idle_limit():
        return "idle"
    return None


def refresh(session: Session, store) -> Session | None:
    """The session with grants re-read from the store and `last_seen` now; None when the account is gone,
    disabled or has no grant left. A chosen tenant no longer granted falls back to the first granted one."""
    user = store.user(session.user)
    if user is None or user["disabled"]:
        return None
    grants = store.grants(session.user)
    if not grants:
        return None
    tenant = session.tenant if session.tenant in grants else sorted(grants)[0]
    return replace(session, grants=grants, tenant=tenant, last_seen=_audit.utcnow(),
                   display_name=user["display_name"] or session.display_name)
