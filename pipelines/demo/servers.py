"""The demo province's web services on one local port (stdlib only), shaped like the real ones.

- `/lgsp/api/v1/phan-anh-kien-nghi`: an LGSP-style REST service of citizen feedback — bearer token,
  `page`/`page_size` pages, `updated_since` for incremental pulls, `{"data": {"items", "total"}}` bodies;
  401 without the token.
- `/ckan/api/3/action/{package_search, package_show, datastore_search}` and resource downloads: the
  provincial open-data portal in CKAN's action-API shape, with two datasets (digital-society indicators
  per commune, public service points), each a DataStore resource and a CSV download.
- `/bkhcn/dvc/api/v2/applications`: the second demo tenant's (Bộ Khoa học và Công nghệ) dossier system —
  API key in `X-Api-Key` (`$BKHCN_API_TOKEN`), cursor pages with a `next` link (`pipelines.demo.ministry.api`).

Data is generated from the seed (the same numbers as `tonghop demo`'s files). `serve_demo_portals(port)`
starts it in a thread (tests); `tonghop demo-serve` runs it in the foreground.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from pipelines.demo.feedback import feedback
from pipelines.demo.ministry import api as ministry_api
from pipelines.demo.places import PROVINCE_NAME, communes
from pipelines.demo.workbooks import COMPONENTS, indicator_values, quarter_labels

PORT_ENV, TOKEN_ENV = "TONGHOP_DEMO_PORT", "NB_LGSP_TOKEN"
DEFAULT_PORT = 8765
DEMO_TOKEN = "demo-lgsp-token-ninh-binh"  # used when NB_LGSP_TOKEN is unset: a demo, not a secret
FEEDBACK_PATH = "/lgsp/api/v1/phan-anh-kien-nghi"
CKAN_ROOT = "/ckan"
MAX_PAGE_SIZE = 1000
ORGANIZATION = {"name": "so-khoa-hoc-va-cong-nghe", "title": "Sở Khoa học và Công nghệ tỉnh Ninh Bình"}


def resource_id(dataset: str) -> str:
    """A stable resource id (UUID5), so the tenant file can name it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ninh-binh/ckan/{dataset}"))


@dataclass
class DemoData:
    """Everything the services answer with, built once from the seed."""

    rows: int = 20_000
    seed: int = 37
    as_of: date = date(2025, 11, 1)

    @cached_property
    def feedback(self) -> list[dict[str, Any]]:
        return feedback(max(200, self.rows // 10), self.as_of, np.random.default_rng([self.seed, 11]))

    @cached_property
    def ministry_applications(self) -> list[dict[str, Any]]:
        """The second demo tenant's dossiers (Bộ Khoa học và Công nghệ), served at ministry_api.APPLICATIONS_PATH."""
        from pipelines.demo.ministry import n_dossiers
        from pipelines.demo.ministry.applications import applications

        return applications(n_dossiers(self.rows), self.seed, self.as_of)

    @cached_property
    def datasets(self) -> dict[str, tuple[dict[str, Any], list[dict[str, str]], list[dict[str, Any]]]]:
        """dataset name → (package metadata without resources, DataStore fields, records)."""
        units = communes()
        values = indicator_values(np.random.default_rng([self.seed, 8]))  # the workbook's numbers
        latest = quarter_labels()[-1]
        xhs = [{"ma_xa": c.code, "ten_xa": c.name, "ky_bao_cao": latest, "thanh_phan": comp,
                "ty_le_phan_tram": float(values[i, -1, k])}
               for i, c in enumerate(units) for k, comp in enumerate(COMPONENTS)]
        rng = np.random.default_rng([self.seed, 12])
        points = [{"ma_diem": f"PVHCC-{c.code}", "ten_diem": f"Bộ phận một cửa {c.name}", "ma_xa": c.code,
                   "so_quay": int(2 + c.is_ward + rng.integers(0, 3)),
                   "gio_mo_cua": "07:30-11:30, 13:30-17:00"} for c in units]
        points.insert(0, {"ma_diem": "PVHCC-TINH", "ten_diem": f"Trung tâm Phục vụ hành chính công tỉnh {PROVINCE_NAME}",
                          "ma_xa": None, "so_quay": 40, "gio_mo_cua": "07:30-11:30, 13:30-17:00"})
        return {
            "chi-so-xa-hoi-so": (
                {"title": f"Chỉ số 8 thành phần xã hội số theo xã, phường ({latest})",
                 "notes": "Tỷ lệ đạt các thành phần xã hội số cơ bản, UBND các xã, phường báo cáo."},
                [{"id": "ma_xa", "type": "text"}, {"id": "ten_xa", "type": "text"},
                 {"id": "ky_bao_cao", "type": "text"}, {"id": "thanh_phan", "type": "text"},
                 {"id": "ty_le_phan_tram", "type": "numeric"}],
                xhs),
            "diem-phuc-vu-hanh-chinh-cong": (
                {"title": "Danh sách điểm phục vụ hành chính công",
                 "notes": "Trung tâm Phục vụ hành chính công tỉnh và bộ phận một cửa các xã, phường."},
                [{"id": "ma_diem", "type": "text"}, {"id": "ten_diem", "type": "text"},
                 {"id": "ma_xa", "type": "text"}, {"id": "so_quay", "type": "int4"},
                 {"id": "gio_mo_cua", "type": "text"}],
                points),
        }


class _Handler(BaseHTTPRequestHandler):
    server: _DemoServer

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if url.path == FEEDBACK_PATH:
                self._feedback(query)
            elif url.path == ministry_api.APPLICATIONS_PATH:
                ministry_api.handle(self, self.server.base_url, query, self.server.data.ministry_applications,
                                    self.server.ministry_token)
            elif url.path.startswith(f"{CKAN_ROOT}/api/3/action/"):
                self._ckan(url.path.rsplit("/", 1)[-1], query)
            elif url.path.startswith(f"{CKAN_ROOT}/dataset/") and url.path.endswith(".csv"):
                self._download(url.path.split("/")[3])
            else:
                self._send(404, {"error": f"no such path {url.path}"})
        except ValueError as exc:
            self._send(400, {"success": False, "error": {"__type": "Validation Error", "message": str(exc)}})

    def log_message(self, *args: object) -> None:  # quiet: the pipeline logs what it fetched
        pass

    def _feedback(self, query: dict[str, str]) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self._send(401, {"success": False, "error_code": "UNAUTHORIZED",
                             "message": "Thiếu hoặc sai mã truy cập (Bearer token)"})
            return
        page, size = _int(query, "page", 1), min(_int(query, "page_size", 100), MAX_PAGE_SIZE)
        if page < 1 or size < 1:
            raise ValueError("page and page_size must be positive")
        records = self.server.data.feedback
        if query.get("updated_since"):
            records = [r for r in records if r["ngay_cap_nhat"] > query["updated_since"]]
        items = records[(page - 1) * size: page * size]
        self._send(200, {"success": True, "error_code": "0",
                         "data": {"items": items, "page": page, "page_size": size, "total": len(records)}})

    def _ckan(self, action: str, query: dict[str, str]) -> None:
        datasets = self.server.data.datasets
        if action == "package_search":
            q = query.get("q", "").lower()
            found = [self._package(n) for n in datasets if not q or q in json.dumps(self._package(n),
                                                                                ensure_ascii=False).lower()]
            start, rows = _int(query, "start", 0), _int(query, "rows", 10)
            self._ok({"count": len(found), "results": found[start: start + rows], "sort": "name asc"})
        elif action == "package_show":
            name = query.get("id", "")
            if name not in datasets:
                self._not_found(f"dataset '{name}'")
            else:
                self._ok(self._package(name))
        elif action == "datastore_search":
            rid = query.get("resource_id", "")
            name = next((n for n in datasets if resource_id(n) == rid), None)
            if name is None:
                self._not_found(f"resource '{rid}'")
                return
            _, fields, records = datasets[name]
            limit, offset = min(_int(query, "limit", 100), 32_000), _int(query, "offset", 0)
            page = [{"_id": offset + i + 1, **r} for i, r in enumerate(records[offset: offset + limit])]
            self._ok({"resource_id": rid, "fields": [{"id": "_id", "type": "int"}, *fields], "records": page,
                      "total": len(records), "limit": limit, "offset": offset,
                      "_links": {"start": f"/api/3/action/datastore_search?resource_id={rid}",
                                 "next": f"/api/3/action/datastore_search?resource_id={rid}&offset={offset + limit}"}})
        else:
            self._send(400, {"success": False, "error": {"__type": "Bad request",
                                                          "message": f"Bad request - Action name not known: {action}"}})

    def _package(self, name: str) -> dict[str, Any]:
        meta, _, _ = self.server.data.datasets[name]
        rid = resource_id(name)
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"ninh-binh/ckan/package/{name}")), "name": name,
                **meta, "organization": ORGANIZATION, "license_id": "cc-by", "metadata_modified": "2026-01-10T08:00:00",
                "num_resources": 1,
                "resources": [{"id": rid, "name": meta["title"], "format": "CSV", "datastore_active": True,
                               "url": f"{self.server.base_url}{CKAN_ROOT}/dataset/{name}/resource/{rid}/download/{name}.csv",
                               "last_modified": "2026-01-10T08:00:00"}]}

    def _download(self, name: str) -> None:
        if name not in self.server.data.datasets:
            self._send(404, {"error": "not found"})
            return
        _, fields, records = self.server.data.datasets[name]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=[f["id"] for f in fields], lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        self._send(200, buf.getvalue().encode(), "text/csv; charset=utf-8")

    def _ok(self, result: Any) -> None:
        self._send(200, {"help": "", "success": True, "result": result})

    def _not_found(self, what: str) -> None:
        self._send(404, {"success": False, "error": {"__type": "Not Found Error", "message": f"Not found: {what}"}})

    def _send(self, status: int, body: Any, ctype: str = "application/json; charset=utf-8") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _int(query: dict[str, str], key: str, default: int) -> int:
    try:
        return int(query.get(key, default))
    except ValueError:
        raise ValueError(f"'{key}' must be an integer, got '{query[key]}'") from None


class _DemoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, data: DemoData, token: str, host: str = "127.0.0.1"):
        super().__init__((host, port), _Handler)
        self.data, self.token = data, token

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def serve_demo_portals(port: int = 0, *, rows: int = 20_000, seed: int = 37,
                       token: str | None = None, ministry_token: str | None = None
                       ) -> tuple[_DemoServer, threading.Thread]:
    """Start the services on 127.0.0.1:`port` (0: any free port) in a daemon thread; `server.shutdown()` stops.

    The data is built before the first request is accepted, so the first pipeline read is not slowed.
    """
    data = DemoData(rows=rows, seed=seed)
    data.feedback, data.datasets, data.ministry_applications  # noqa: B018 - build now
    server = _DemoServer(port, data, token or os.environ.get(TOKEN_ENV) or DEMO_TOKEN)
    server.ministry_token = ministry_token or os.environ.get(ministry_api.TOKEN_ENV) or ministry_api.DEMO_TOKEN
    thread = threading.Thread(target=server.serve_forever, name="tonghop-demo-portals", daemon=True)
    thread.start()
    return server, thread
