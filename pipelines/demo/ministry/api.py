"""The ministry's online-service API as the demo server answers it (`pipelines.demo.servers` routes here).

`GET /bkhcn/dvc/api/v2/applications?limit=N[&cursor=C][&modifiedSince=MILLIS]`, header `X-Api-Key: <token>`:

    {"items": [...], "paging": {"limit": N, "count": n, "nextCursor": "…" | null, "next": "<url>" | null}}

Records are ordered by (lastModified, applicationNo); the cursor is opaque (base64 of the offset into the
filtered list) and `next` is the full link to the following page; `nextCursor` is null on the last page.
`modifiedSince` (epoch milliseconds) keeps records changed strictly after it. Without the key (or with a
wrong one): 401 `{"error": {"code": "UNAUTHENTICATED", …}}`; a bad parameter: 400.
"""

from __future__ import annotations

import base64
from typing import Any, Protocol
from urllib.parse import urlencode

APPLICATIONS_PATH = "/bkhcn/dvc/api/v2/applications"
TOKEN_ENV = "BKHCN_API_TOKEN"
DEMO_TOKEN = "demo-bkhcn-api-key"  # used when BKHCN_API_TOKEN is unset: a demo, not a secret
KEY_HEADER = "X-Api-Key"
MAX_LIMIT = 500


class _Handler(Protocol):
    headers: Any

    def _send(self, status: int, body: Any, ctype: str = ...) -> None: ...


def handle(handler: _Handler, base_url: str, query: dict[str, str], records: list[dict], token: str) -> None:
    """Answer one GET of `APPLICATIONS_PATH` through the demo server's request `handler`."""
    if handler.headers.get(KEY_HEADER) != token:
        handler._send(401, {"error": {"code": "UNAUTHENTICATED",
                                      "message": f"Missing or invalid API key (header {KEY_HEADER})"}})
        return
    try:
        limit = int(query.get("limit", 100))
        offset = _offset(query.get("cursor"))
        since = int(query["modifiedSince"]) if query.get("modifiedSince") else None
    except ValueError as exc:
        handler._send(400, {"error": {"code": "INVALID_ARGUMENT", "message": str(exc)}})
        return
    if not 1 <= limit <= MAX_LIMIT:
        handler._send(400, {"error": {"code": "INVALID_ARGUMENT", "message": f"limit must be 1..{MAX_LIMIT}"}})
        return
    if since is not None:
        records = [r for r in records if r["lastModified"] > since]
    items = records[offset: offset + limit]
    more = offset + limit < len(records)
    cursor = _cursor(offset + limit) if more else None
    link = None
    if more:
        params = {k: v for k, v in query.items() if k != "cursor"} | {"cursor": cursor}
        link = f"{base_url}{APPLICATIONS_PATH}?{urlencode(params)}"
    handler._send(200, {"items": items, "paging": {"limit": limit, "count": len(items), "nextCursor": cursor,
                                                   "next": link}})


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = text.split(":", 1)
        if kind != "o" or int(value) < 0:
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"invalid cursor '{cursor}': pass back the nextCursor of the previous page") from None
