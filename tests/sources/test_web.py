"""`api`, `ckan` and `json` sources against a local HTTP server: pagination, auth, retries, rate limit."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest

from pipelines.config import SourceConfig
from pipelines.errors import SourceError
from pipelines.load import load_sources
from pipelines.warehouse import connect
from tests.fixtures.http import Reply
from tests.fixtures.tenants import tenant_of

FAST = {"retries": 2, "backoff": 0.01, "timeout": 2, "rate_limit": 0}


def _records(n: int, start: int = 1) -> list[dict]:
    """Dossiers HS00001...; dossier i was last updated i minutes after 2025-07-01 00:00."""
    t0 = datetime(2025, 7, 1)
    return [{"ma_ho_so": f"HS{i:05d}", "ten_thu_tuc": "Cấp giấy phép xây dựng", "so_ngay": i % 15,
             "ngay_cap_nhat": (t0 + timedelta(minutes=i)).isoformat()} for i in range(start, start + n)]


def _paged_service(server, data: list[dict], token: str = "tok-123"):
    """An LGSP-style endpoint: bearer token, ?page=&page_size=, records under data.items."""
    def handler(req):
        if req.headers.get("authorization") != f"Bearer {token}":
            return Reply(401, {"error": "invalid token"})
        since = req.query.get("updated_since")
        rows = [r for r in data if since is None or r["ngay_cap_nhat"] >= since.replace(" ", "T")]
        page, size = int(req.query.get("page", 1)), int(req.query.get("page_size", 10))
        return Reply(200, {"status": "ok", "data": {"items": rows[(page - 1) * size: page * size],
                                                    "total": len(rows)}})
    server.route("/api/v1/ho-so", handler)


def _api_source(server, **options) -> SourceConfig:
    opts = {"records_path": "data.items", "pagination": {"type": "page", "page_size": 100},
            "incremental_param": "updated_since", "types": {"ngay_cap_nhat": "TIMESTAMP"}, **FAST, **options}
    return SourceConfig(name="ho_so_lgsp", kind="api", location=f"{server.url}/api/v1/ho-so",
                        connection={"env": "TEST_LGSP_TOKEN"}, options=opts, primary_key=["ma_ho_so"],
                        incremental_column="ngay_cap_nhat")


def test_api_paginated_incremental(http_server, paths, monkeypatch):
    monkeypatch.setenv("TEST_LGSP_TOKEN", "tok-123")
    data = _records(250)
    _paged_service(http_server, data)
    src = _api_source(http_server)
    with connect(paths.warehouse) as con:
        [first] = load_sources(con, tenant_of(src), paths, "r1")
        # 250 records in pages of 100: pages 1, 2 (full) and 3 (50, short → last).
        assert (first.status, first.n_rows_loaded) == ("loaded", 250)
        assert [r.query["page"] for r in http_server.hits("/api/v1/ho-so")] == ["1", "2", "3"]
        # The newest is dossier 250: 250 minutes after midnight = 04:10.
        assert first.watermark == "2025-07-01 04:10:00"
        # What `validate` does for a passing batch: watermarks advance only with promoted batches.
        con.execute("UPDATE meta.loads SET status = 'passed' WHERE batch_id = 'r1'")

        # The service's `updated_since` is inclusive: it sends record 250 again; the reader drops it.
        [again] = load_sources(con, tenant_of(src), paths, "r2")
        assert http_server.requests[-1].query["updated_since"] == "2025-07-01 04:10:00"
        assert (again.status, again.n_rows_loaded) == ("unchanged", 0)

        data += _records(5, start=251)  # five new dossiers (251..255), all later than the watermark
        [third] = load_sources(con, tenant_of(src), paths, "r3")
        assert (third.status, third.n_rows_loaded) == ("loaded", 5)


def test_api_401_names_the_variable_and_does_not_retry(http_server, paths, monkeypatch):
    monkeypatch.setenv("TEST_LGSP_TOKEN", "expired")
    _paged_service(http_server, _records(3))
    with connect(paths.warehouse) as con, pytest.raises(SourceError) as err:
        load_sources(con, tenant_of(_api_source(http_server)), paths, "r1")
    assert "HTTP 401" in str(err.value) and "TEST_LGSP_TOKEN" in str(err.value)
    assert len(http_server.requests) == 1  # a retry cannot fix a token
    with connect(paths.warehouse) as con:
        assert con.execute("SELECT count(*) FROM meta.loads").fetchone()[0] == 0


def test_api_retries_5xx_then_succeeds(http_server, paths, monkeypatch):
    monkeypatch.delenv("TEST_LGSP_TOKEN", raising=False)
    calls = []

    def flaky(req):
        calls.append(req)
        return Reply(503, {"error": "busy"}) if len(calls) <= 2 else Reply(200, _records(4))
    http_server.route("/flaky", flaky)
    src = SourceConfig(name="flaky", kind="api", location=f"{http_server.url}/flaky", options=FAST,
                       primary_key=["ma_ho_so"])
    with connect(paths.warehouse) as con:
        [res] = load_sources(con, tenant_of(src), paths, "r1")
    # Two 503s, then the answer: three requests with retries = 2.
    assert (res.n_rows_loaded, len(calls)) == (4, 3)


def test_api_failing_and_slow_services_end_with_a_source_error(http_server, paths):
    http_server.route("/down", Reply(500, {"error": "boom"}))
    http_server.route("/slow", Reply(200, _records(1), delay=1.5))
    for path, problem in (("/down", "HTTP 500 after 3 attempt"), ("/slow", "timed out after 3 attempt")):
        src = SourceConfig(name="svc", kind="api", location=f"{http_server.url}{path}",
                           options={**FAST, "timeout": 0.3}, primary_key=["ma_ho_so"])
        with connect(paths.warehouse) as con, pytest.raises(SourceError) as err:
            load_sources(con, tenant_of(src), paths, "r1")
        assert problem in str(err.value) and "source 'svc'" in str(err.value)
        assert len(http_server.hits(path)) == 3


def test_api_cursor_and_offset_pagination_and_rate_limit(http_server, paths, monkeypatch):
    data = _records(30)

    def by_cursor(req):
        start = int(req.query.get("cursor", 0))
        nxt = start + 10 if start + 10 < len(data) else None
        return Reply(200, {"result": data[start:start + 10], "meta": {"next_cursor": nxt}})

    def by_offset(req):
        off, lim = int(req.query["offset"]), int(req.query["limit"])
        return Reply(200, {"rows": data[off:off + lim], "total": len(data)})

    http_server.route("/cursor", by_cursor)
    http_server.route("/offset", by_offset)
    cursor = SourceConfig(name="c", kind="api", location=f"{http_server.url}/cursor", primary_key=["ma_ho_so"],
                          options={**FAST, "rate_limit": 20, "records_path": "result",
                                   "pagination": {"type": "cursor", "next_cursor_path": "meta.next_cursor"}})
    offset = SourceConfig(name="o", kind="api", location=f"{http_server.url}/offset", primary_key=["ma_ho_so"],
                          options={**FAST, "records_path": "rows",
                                   "pagination": {"type": "offset", "page_size": 12, "total_path": "total"}})
    # The limiter governs when the client STARTS a request: record those instants (server arrival times add
    # the machine's scheduling jitter, which a loaded CI machine made larger than a gap).
    import time

    from pipelines.sources import web

    starts: dict[str, list[float]] = {"c": [], "o": []}
    wait_turn = web.Client._wait_turn

    def recorded(self) -> None:
        wait_turn(self)
        starts[self.source.name].append(time.monotonic())

    monkeypatch.setattr(web.Client, "_wait_turn", recorded)
    with connect(paths.warehouse) as con:
        res = {r.source: r for r in load_sources(con, tenant_of(cursor, offset), paths, "r1")}
    assert (res["c"].n_rows_loaded, res["o"].n_rows_loaded) == (30, 30)
    # Offsets 0, 12, 24: the third page reaches total = 30 and paging stops.
    assert [r.query["offset"] for r in http_server.hits("/offset")] == ["0", "12", "24"]
    # 3 cursor pages at 20 requests/second: every gap between request starts >= 50 ms.
    c = starts["c"]
    assert len(c) == 3 and len(http_server.hits("/cursor")) == 3
    assert all(b - a >= 0.05 - 1e-3 for a, b in zip(c, c[1:], strict=False)), c


def test_api_wrong_records_path(http_server, paths):
    http_server.route("/x", Reply(200, {"data": {"items": _records(2)}}))
    src = SourceConfig(name="x", kind="api", location=f"{http_server.url}/x", primary_key=["ma_ho_so"],
                       options={**FAST, "records_path": "data.rows"})
    with connect(paths.warehouse) as con, pytest.raises(SourceError, match="no list of records at 'data.rows'"):
        load_sources(con, tenant_of(src), paths, "r1")


# --- CKAN -----------------------------------------------------------------------------------------------

def _ok(result) -> Reply:
    return Reply(200, {"help": "http://portal/api/3/action/help_show?name=x", "success": True, "result": result})


def _ckan_portal(server, rows: list[dict]):
    """A CKAN portal with one dataset, a DataStore resource of `rows` and a CSV resource to download."""
    fields = [{"id": "_id", "type": "int"}, {"id": "ma_xa", "type": "text"}, {"id": "nam", "type": "int4"},
              {"id": "ty_le", "type": "numeric"}]
    package = {"name": "chi-so-xa-hoi-so", "title": "Chỉ số xã hội số", "license_id": "cc-by",
               "metadata_modified": "2025-08-01T00:00:00", "organization": {"name": "so-khcn", "title": "Sở KH&CN"},
               "resources": [
                   {"id": "res-ds", "name": "Bảng chỉ số", "format": "", "url": f"{server.url}/datastore/dump/res-ds"},
                   {"id": "res-csv", "name": "Tải CSV", "format": "CSV", "url": f"{server.url}/files/xhs.csv"}]}

    def datastore_search(req):
        if req.query.get("resource_id") != "res-ds":
            return Reply(404, {"help": "", "success": False,
                               "error": {"__type": "Not Found Error", "message": "Không tìm thấy tài nguyên"}})
        off, lim = int(req.query.get("offset", 0)), int(req.query.get("limit", 100))
        return _ok({"resource_id": "res-ds", "fields": fields, "records": rows[off:off + lim],
                    "total": len(rows), "limit": lim, "offset": off,
                    "_links": {"start": "/api/3/action/datastore_search", "next": f"...offset={off + lim}"}})

    def package_search(req):
        start = int(req.query.get("start", 0))
        return _ok({"count": 1, "results": [package][start:], "facets": {}, "search_facets": {}})

    server.route("/api/3/action/datastore_search", datastore_search)
    server.route("/api/3/action/package_search", package_search)
    server.route("/api/3/action/package_show", lambda req: _ok(package))
    server.route("/files/xhs.csv", Reply(200, "ma_xa,nam,ty_le\n00004,2025,80.5\n00007,2025,60\n"))


def _ckan(server, **options) -> SourceConfig:
    return SourceConfig(name="du_lieu_mo", kind="ckan", location=server.url + "/", options={**FAST, **options},
                        primary_key=["ma_xa"])


def test_ckan_datastore_paginated_and_typed(http_server, paths):
    rows = [{"_id": i, "ma_xa": f"{i:05d}", "nam": 2025, "ty_le": str(i / 2)} for i in range(1, 26)]
    _ckan_portal(http_server, rows)
    with connect(paths.warehouse) as con:
        [res] = load_sources(con, tenant_of(_ckan(http_server, resource_id="res-ds", page_size=10)), paths, "r1")
        # 25 records in pages of 10: offsets 0, 10, 20 (the last reaches total = 25).
        assert res.n_rows_loaded == 25
        assert [r.query["offset"] for r in http_server.hits("/api/3/action/datastore_search")] == ["0", "10", "20"]
        # DataStore field types become column types: numeric "12.5" (text in JSON) → DOUBLE 12.5.
        assert con.execute("SELECT typeof(nam), ty_le FROM raw.du_lieu_mo WHERE ma_xa = '00025'"
                           ).fetchone() == ("INTEGER", 12.5)


def test_ckan_catalog_and_download(http_server, paths):
    _ckan_portal(http_server, [])
    catalog = _ckan(http_server, mode="catalog", q="xã hội số").model_copy(
        update={"name": "danh_muc", "primary_key": ["resource_id"]})
    download = _ckan(http_server, mode="download", dataset="chi-so-xa-hoi-so", resource_format="CSV",
                     types={"ma_xa": "VARCHAR"})
    with connect(paths.warehouse) as con:
        res = {r.source: r for r in load_sources(con, tenant_of(catalog, download), paths, "r1")}
        # The one dataset has two resources: two catalogue rows. The CSV resource has two data rows.
        assert (res["danh_muc"].n_rows_loaded, res["du_lieu_mo"].n_rows_loaded) == (2, 2)
        assert http_server.hits("/api/3/action/package_search")[0].query["q"] == "xã hội số"
        assert con.execute("SELECT ma_xa, ty_le, _dataset, _resource FROM raw.du_lieu_mo ORDER BY ma_xa"
                           ).fetchall() == [("00004", 80.5, "chi-so-xa-hoi-so", "res-csv"),
                                            ("00007", 60.0, "chi-so-xa-hoi-so", "res-csv")]


def test_ckan_error_message_from_portal(http_server, paths):
    _ckan_portal(http_server, [])
    with connect(paths.warehouse) as con, pytest.raises(SourceError) as err:
        load_sources(con, tenant_of(_ckan(http_server, resource_id="khong-co")), paths, "r1")
    # A 404 from CKAN is not retried; the message keeps the HTTP status and names the source.
    assert "HTTP 404" in str(err.value) and "du_lieu_mo" in str(err.value)


def test_unset_variable_in_a_url_is_named_and_skip_source_holds(paths, monkeypatch):
    # The demo's services live at http://127.0.0.1:${TONGHOP_DEMO_PORT}/…: outside `make demo` the variable
    # is unset. That is a SourceError naming it (not a crash on the URL), so `skip_source` skips only it.
    monkeypatch.delenv("TONGHOP_DEMO_PORT", raising=False)
    portal = SourceConfig(name="du_lieu_mo", kind="ckan", location="http://127.0.0.1:${TONGHOP_DEMO_PORT}/ckan",
                          options={"mode": "datastore", "resource_id": "r", **FAST}, primary_key=["id"],
                          on_error="skip_source")
    (paths.root / "x.json").write_text('[{"a": 1}]', encoding="utf-8")
    local = SourceConfig(name="tep", kind="json", location="x.json", primary_key=["a"])
    with connect(paths.warehouse) as con:
        skipped, loaded = load_sources(con, tenant_of(portal, local), paths, "r1")
        assert loaded.status == "loaded" and loaded.n_rows_loaded == 1
    assert skipped.status == "skipped"
    assert "source 'du_lieu_mo'" in skipped.error and "TONGHOP_DEMO_PORT not set" in skipped.error


# --- JSON files -----------------------------------------------------------------------------------------

def test_json_files_nested_and_plain(paths):
    (paths.sources / "a.json").write_text(json.dumps({"data": {"items": _records(3)}}), encoding="utf-8")
    (paths.sources / "b.json").write_text(json.dumps({"data": {"items": _records(2, start=4)}}), encoding="utf-8")
    (paths.sources / "plain.json").write_text(json.dumps(_records(4)), encoding="utf-8")
    nested = SourceConfig(name="nested", kind="json", location="sources/[ab].json", primary_key=["ma_ho_so"],
                          options={"records_path": "data.items", "types": {"ngay_cap_nhat": "TIMESTAMP"}})
    plain = SourceConfig(name="plain", kind="json", location="sources/plain.json", primary_key=["ma_ho_so"])
    with connect(paths.warehouse) as con:
        res = {r.source: r for r in load_sources(con, tenant_of(nested, plain), paths, "r1")}
        # a.json has 3 records and b.json 2: one batch of 5.
        assert (res["nested"].n_rows_loaded, res["plain"].n_rows_loaded) == (5, 4)
        assert con.execute("SELECT typeof(ngay_cap_nhat) FROM raw.nested LIMIT 1").fetchone()[0] == "TIMESTAMP"


def test_json_truncated_file(paths):
    (paths.sources / "t.json").write_text(json.dumps(_records(3))[:-20], encoding="utf-8")
    src = SourceConfig(name="t", kind="json", location="sources/t.json", primary_key=["ma_ho_so"])
    with connect(paths.warehouse) as con, pytest.raises(SourceError, match="t.json"):
        load_sources(con, tenant_of(src), paths, "r1")


def test_rate_limit_is_a_real_pause():
    from pipelines.sources.web import Client

    src = SourceConfig(name="x", kind="api", location="http://127.0.0.1:1/", primary_key=["a"])
    with Client(src, {"rate_limit": 10}) as client:
        started = time.monotonic()
        for _ in range(3):
            client._wait_turn()
        # Three turns at 10/s: the 2nd and 3rd each wait 0.1 s after the previous one.
        assert time.monotonic() - started >= 0.19


@pytest.mark.parametrize("path", ['a") AS q, [1] AS r FROM read_json($files) j) --', 'data."x', "data\nitems",
                                  "x" * 201])
def test_json_records_path_cannot_leave_its_quoted_keys(path):
    """`records_path` becomes quoted identifiers in the reading SQL: a quote or control character would end
    them and run the tenant file's own SQL (a file read) on the pipeline's connection."""
    from pydantic import ValidationError

    from pipelines.sources.json import Options

    with pytest.raises(ValidationError):
        Options(records_path=path)
    assert Options(records_path="dữ liệu.các mục").records_path == "dữ liệu.các mục"


@pytest.mark.parametrize("auth, header", [("api_key", "x-agency-key"), ("bearer", "authorization")])
def test_credentials_never_follow_a_redirect_to_another_origin(http_server, paths, monkeypatch, auth, header):
    """A service redirecting elsewhere (a moved endpoint, a file store, a hostile proxy) must not receive the
    token: httpx drops `Authorization` across origins but forwarded a custom API-key header as it was."""
    from tests.fixtures.http import LocalServer

    monkeypatch.setenv("TEST_LGSP_TOKEN", "key-s3cr3t-0042")
    other = LocalServer()
    other.start()
    try:
        other.route("/moved", Reply(200, _records(3)))
        http_server.route("/same", Reply(302, headers={"Location": "/api"}))
        http_server.route("/api", Reply(302, headers={"Location": f"{other.url}/moved"}))
        src = SourceConfig(name="lgsp", kind="api", location=f"{http_server.url}/same",
                           connection={"env": "TEST_LGSP_TOKEN"}, primary_key=["ma_ho_so"],
                           options={**FAST, "auth": auth, "api_key_header": "X-Agency-Key"})
        with connect(paths.warehouse) as con:
            [res] = load_sources(con, tenant_of(src), paths, "r1")
        assert res.n_rows_loaded == 3
        expected = "key-s3cr3t-0042" if auth == "api_key" else "Bearer key-s3cr3t-0042"
        # The source's own origin gets the credential, through a same-origin redirect too ...
        assert [r.headers.get(header) for r in http_server.requests] == [expected, expected]
        # ... the other origin never does, under either header.
        [moved] = other.requests
        assert header not in moved.headers and "authorization" not in moved.headers
        assert not any("s3cr3t" in v for v in moved.headers.values())
    finally:
        other.stop()


def test_retry_waits_double_but_never_exceed_five_minutes(http_server, paths, monkeypatch):
    import pipelines.sources.web as web

    waits: list[float] = []
    monkeypatch.setattr(web.time, "sleep", waits.append)
    http_server.route("/down", Reply(503, {"error": "maintenance"}))
    src = SourceConfig(name="down", kind="api", location=f"{http_server.url}/down", primary_key=["ma_ho_so"],
                       options={"retries": 10, "backoff": 60, "timeout": 2, "rate_limit": 0})
    with connect(paths.warehouse) as con, pytest.raises(SourceError) as err:
        load_sources(con, tenant_of(src), paths, "r1")
    assert "HTTP 503" in str(err.value)
    # 60, 120, 240, then capped at 300 s: ten retries wait 39 min at most, not 60 s × 2⁹ = 8.5 h for the last.
    assert waits == [60, 120, 240] + [web.MAX_RETRY_WAIT_S] * 7
