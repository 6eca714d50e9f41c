"""Roles and what each one may open: page URL paths of apps/layout.py PAGES plus a few capabilities.

Cumulative: an analyst has everything a leader has, an engineer everything an analyst has."""

from __future__ import annotations

ROLES = ("lanh_dao", "phan_tich", "ky_thuat")

ROLE_NAMES = {
    "lanh_dao": {"vi": "Lãnh đạo", "en": "Leader"},
    "phan_tich": {"vi": "Phân tích", "en": "Analyst"},
    "ky_thuat": {"vi": "Kỹ thuật", "en": "Engineer"},
}

# Pages (URL paths of apps/layout.py PAGES and the console) and capabilities inside pages.
_LEADER = frozenset({"tong-quan", "thu-tuc-hanh-chinh", "phan-anh-kien-nghi", "ban-do", "chat-luong-du-lieu",
                     "danh-muc-du-lieu", "report"})
_ANALYST = _LEADER | {"truy-van-sql", "export"}
_ENGINEER = _ANALYST | {"van-hanh", "quality-details", "data-docs", "audit"}

CAPABILITIES: dict[str, frozenset[str]] = {"lanh_dao": _LEADER, "phan_tich": _ANALYST, "ky_thuat": _ENGINEER}
KNOWN = frozenset(_ENGINEER)


def role_allows(role: str | None, capability: str) -> bool:
    """True when `role` grants `capability`. An unknown capability is refused for everyone (a typo in a page
    must not open it), as is an unknown role."""
    return role in CAPABILITIES and capability in CAPABILITIES[role]


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role '{role}' — use one of {', '.join(ROLES)} "
                         "(lanh_dao: dashboards and reports; phan_tich: + SQL console and exports; "
                         "ky_thuat: + operations, data-quality details, Data Docs)")
    return role
