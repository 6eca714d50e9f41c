"""HTTP for the `api` and `ckan` kinds: auth from the environment, retries with backoff, a rate limit.

Timeouts, connection errors, 429 and 5xx are retried (`retries`, first wait `backoff` seconds, doubled
each time); 401/403 fail at once (a retry cannot fix a token); requests start at most `rate_limit` per
second. Every response body feeds one sha256, the fetched content's fingerprint.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import SourceError
from pipelines.sources.base import secret

if TYPE_CHECKING:
    from pipelines.config import SourceConfig

_RETRY_STATUS = {429, 500, 502, 503, 504}
MAX_RETRY_WAIT_S = 300.0  # one wait between retries at most (backoff doubles: 60 s × 2⁴ would already be 16 min)


@functools.lru_cache(maxsize=4)
def _tls_context(cert_file: str | None, cert_dir: str | None):
    """One verifying TLS context per process and CA setting, shared by every source's client — httpx's own
    default (certifi, or SSL_CERT_FILE / SSL_CERT_DIR): building one loads the CA bundle (0.7 s at load 15),
    and every API/CKAN source built its own on each run."""
    import httpx

    return httpx.create_ssl_context()


class Client:
    def __init__(self, source: SourceConfig, opts: dict[str, Any]):
        import httpx

        self.source = source
        self.rate = float(opts.get("rate_limit", 10))
        self.retries = int(opts.get("retries", 3))
        self.backoff = float(opts.get("backoff", 0.5))
        headers = {"Accept": "application/json", **(opts.get("headers") or {})}
        token = secret(source, "API token")
        auth = opts.get("auth", "bearer" if token else "none")
        if auth not in ("bearer", "api_key", "none"):
            raise SourceError(source.name, source.location or "", f"unknown auth '{auth}'",
                              "use auth: bearer | api_key | none")
        if auth != "none" and not token:
            raise SourceError(source.name, source.location or "", f"auth '{auth}' needs a token",
                              "set 'connection: {env: VAR}' with VAR holding the token")
        self._credential_headers: tuple[str, ...] = ()
        if auth == "bearer":
            headers["Authorization"] = f"Bearer {token}"
            self._credential_headers = ("Authorization",)
        elif auth == "api_key":
            name = opts.get("api_key_header", "X-API-Key")
            headers[name] = token
            self._credential_headers = (name, "Authorization")
        self._origin: tuple[str, str, int | None] | None = None
        self.http = httpx.Client(headers=headers, timeout=float(opts.get("timeout", 30)), follow_redirects=True,
                                 verify=_tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
                                 event_hooks={"request": [self._keep_credentials_home]})
        self.digest = hashlib.sha256()
        self.n_requests = 0
        self._last = 0.0

    def _keep_credentials_home(self, request: Any) -> None:
        """The token goes only to the origin (scheme, host, port) of the source's first request.

        httpx drops `Authorization` when a redirect leaves the origin, but not a custom API-key header
        (`api_key_header`): a service redirecting to another host would receive the key. Every request,
        redirects included, passes here; one to another origin is sent without the credential headers.
        """
        origin = (request.url.scheme, request.url.host, request.url.port)
        if self._origin is None:
            self._origin = origin
        elif origin != self._origin:
            for name in self._credential_headers:
                request.headers.pop(name, None)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _wait_turn(self) -> None:
        if self.rate > 0:
            pause = self._last + 1.0 / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        self._last = time.monotonic()

    def _send(self, url: str, params: dict[str, Any] | None, sink: Path | None) -> bytes:
        """One GET with retries; the body (or, with `sink`, the file it was streamed to)."""
        import httpx

        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), MAX_RETRY_WAIT_S))
            self._wait_turn()
            self.n_requests += 1
            try:
                with self.http.stream("GET", url, params=params) as resp:
                    if resp.status_code in (401, 403):
                        raise SourceError(self.source.name, url, f"HTTP {resp.status_code}: the service refused "
                                          "the credentials", "renew the token/key in the environment variable "
                                          f"named in 'connection' ({self._env()}) or check 'auth'")
                    if resp.status_code in _RETRY_STATUS:
                        problem = f"HTTP {resp.status_code}"
                        continue
                    if resp.status_code >= 400:
                        raise SourceError(self.source.name, url, f"HTTP {resp.status_code}",
                                          "check the URL, 'params' and 'records_path' in the tenant file")
                    if sink is None:
                        body = resp.read()
                        self.digest.update(body)
                        return body
                    with sink.open("wb") as fh:
                        for chunk in resp.iter_bytes(1 << 20):
                            self.digest.update(chunk)
                            fh.write(chunk)
                    return b""
            except httpx.TimeoutException:
                problem = "timed out"
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__}: {exc})"
        raise SourceError(self.source.name, url, f"{problem} after {self.retries + 1} attempt(s)",
                          "check that the service is up and reachable from this machine; raise 'timeout' "
                          "or 'retries' for a slow service")

    def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        import json

        body = self._send(url, params, None)
        try:
            return json.loads(body)
        except ValueError:
            raise SourceError(self.source.name, url, f"the response is not JSON (starts {body[:60]!r})",
                              "check the URL: it should be the service's JSON endpoint") from None

    def download(self, url: str, sink: Path) -> None:
        self._send(url, None, sink)

    def _env(self) -> str:
        ref = self.source.connection
        return (ref.env or ref.airflow_conn_id) if ref else "none given"


def dig(data: Any, path: str | None) -> Any:
    """`data.items` → data["data"]["items"]; None when a key is missing."""
    for key in (path or "").split("."):
        if not key:
            continue
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return None
    return data


def page_frame(records: list[dict[str, Any]]) -> Any:
    """One page of JSON records as a polars frame (columns built in Rust), so the page's Python dicts can go:
    an API source of 1M records held ~1 GB of them until the last page had arrived."""
    import polars as pl

    return pl.from_dicts(records, infer_schema_length=None) if records else pl.DataFrame()


def records_to_arrow(pages: list[Any]) -> Any:
    """Pages of JSON records (or their `page_frame`s) → one Arrow table (no Python row loop)."""
    import polars as pl

    frames = [p if isinstance(p, pl.DataFrame) else pl.from_dicts(p, infer_schema_length=None)
              for p in pages if len(p)]
    if not frames:
        return None
    return pl.concat(frames, how="diagonal_relaxed").to_arrow()
