"""CKAN push against a fake portal on 127.0.0.1 (tests/fixtures/ckan_portal.py) that checks payloads.

The local publication is written the way the `opendata` publisher writes it (publish_report.json + files);
the tests check: first push creates, a second push makes no write call, a changed dataset updates only it,
a 500 leaves local files intact and the next run retries, the key never appears in output.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date
from pathlib import Path

import pytest

from pipelines.config import CkanTarget, ConnectionRef, OpenDataPhase, OpenDataPlan, OpenDataset, load_tenant
from pipelines.publish import ckan
from pipelines.publish.base import PublishContext
from tests.fixtures.ckan_portal import serve_fake_ckan

KEY_ENV = "TEST_CKAN_API_KEY"
KEY = "ckan-secret-token-7f3a9c2e11"
ORG = "so-khcn-ninh-binh"
DATASETS = ("ho_so_theo_tuan", "chi_tieu_cds", "xa_hoi_so_theo_xa")


@pytest.fixture
def portal(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    p = serve_fake_ckan(KEY, {ORG})
    yield p
    p.server.shutdown()
    p.server.server_close()


def _plan(url: str, upload: bool = True, base_url: str | None = None) -> OpenDataPlan:
    return OpenDataPlan(
        publisher="Sở Khoa học và Công nghệ tỉnh Ninh Bình", contact_email="dulieumo@ninhbinh.gov.vn",
        base_url=base_url,
        phases=[OpenDataPhase(id="dot_1", name="Đợt 1", due=date(2026, 8, 31))],
        datasets=[OpenDataset(id=d, table=f"marts.{d}", title=f"Tiêu đề {d}", title_en=f"Title {d}",
                              description=f"Mô tả {d}", description_en=f"Description {d}",
                              keywords=["thủ tục hành chính", "một cửa"], keywords_en=["dossiers"],
                              themes=["GOVE"], frequency="WEEKLY", phase="dot_1") for d in DATASETS],
        ckan=CkanTarget(url=url, organization=ORG, api_key=ConnectionRef(env=KEY_ENV), upload=upload, timeout=5))


def _ctx(url: str, **kw) -> PublishContext:
    cfg = load_tenant("ninh-binh")
    cfg = cfg.model_copy(update={"open_data": _plan(url, **kw)})
    ctx = PublishContext.for_tenant(cfg, "test")
    ctx.paths.root.mkdir(parents=True, exist_ok=True)
    return ctx


def _write_publication(ctx: PublishContext, contents: dict[str, str], versions: dict[str, int] | None = None,
                       refused: dict[str, bool] | None = None) -> None:
    """open_data/ as the opendata publisher leaves it: files per dataset and publish_report.json."""
    folder = ctx.output_root / "open_data"
    entries = []
    for ds, text in contents.items():
        (folder / ds).mkdir(parents=True, exist_ok=True)
        dists = []
        for fmt, data in (("csv", "\ufeffa,b\r\n" + text), ("json", json.dumps({"rows": text}))):
            path = folder / ds / f"{ds}.{fmt}"
            path.write_text(data, encoding="utf-8")
            dists.append({"format": fmt, "path": f"{ds}/{path.name}", "byte_size": path.stat().st_size,
                          "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
        v = (versions or {}).get(ds, 1)
        entries.append({"id": ds, "table": f"marts.{ds}", "row_count": 2, "status": "published", "reasons": [],
                        "version": f"1.{v - 1}.0", "issued": "2026-01-01T00:00:00Z",
                        "modified": f"2026-01-0{v}T00:00:00Z", "distributions": dists})
    for ds, withdrawn in (refused or {}).items():
        entries.append({"id": ds, "table": f"marts.{ds}", "row_count": 2, "status": "refused",
                        "reasons": [f"dataset '{ds}': column 'so_cccd' holds personal data"], "withdrawn": withdrawn})
    (folder / "publish_report.json").write_text(json.dumps({"tenant": "ninh-binh", "datasets": entries}),
                                                encoding="utf-8")


BASE = {d: f"1,{i}\r\n" for i, d in enumerate(DATASETS)}


def test_first_push_creates_then_second_push_writes_nothing(portal, capsys, caplog):
    ctx = _ctx(portal.url)
    _write_publication(ctx, BASE)
    first = ckan.publish(ctx)
    assert first.status == "ok", first.message
    assert sorted(first.written) == sorted(DATASETS)
    assert sorted(portal.packages) == sorted(f"ninh-binh-{d.replace('_', '-')}" for d in DATASETS)
    pkg = portal.packages["ninh-binh-ho-so-theo-tuan"]
    assert pkg["owner_org"] == ORG and pkg["license_id"] == "cc-by" and pkg["title"] == "Tiêu đề ho_so_theo_tuan"
    assert {t["name"] for t in pkg["tags"]} == {"thủ tục hành chính", "một cửa", "dossiers"}
    assert sorted(r["format"] for r in pkg["resources"]) == ["CSV", "JSON"]
    # the uploaded bytes are the local files, and every write carried the key
    folder = ctx.output_root / "open_data"
    for r in pkg["resources"]:
        assert portal.uploads[r["id"]] == (folder / "ho_so_theo_tuan" / r["name"]).read_bytes()
        assert r["hash"] == hashlib.sha256(portal.uploads[r["id"]]).hexdigest()
    assert all(c.authorised for c in portal.writes())
    assert len(portal.writes()) == 3 * (1 + 2 + 1)  # per dataset: create, 2 resources, fingerprint patch

    n_calls = len(portal.calls)
    second = ckan.publish(ctx)
    assert second.status == "ok", second.message
    assert sorted(second.unchanged) == sorted(DATASETS) and second.written == []
    new_calls = portal.calls[n_calls:]
    assert {c.action for c in new_calls} == {"organization_show", "package_show"}  # reads only: zero writes
    assert not ckan.pending(ctx.paths.root)

    # the scheduled run with nothing changed does not even call the portal
    skipped = ckan.publish(PublishContext(ctx.tenant, ctx.paths, ctx.snapshot, ctx.output_root, "t2", True))
    assert skipped.status == "skipped" and len(portal.calls) == n_calls + len(new_calls)
    out = capsys.readouterr()
    assert KEY not in out.out + out.err + caplog.text + json.dumps(ckan.read_state(ctx.paths.root))


def test_changed_dataset_updates_only_it(portal):
    ctx = _ctx(portal.url)
    _write_publication(ctx, BASE)
    assert ckan.publish(ctx).status == "ok"
    before = {name: json.dumps(pkg, sort_keys=True) for name, pkg in portal.packages.items()}
    n = len(portal.calls)
    _write_publication(ctx, BASE | {"chi_tieu_cds": "2,99\r\n"}, versions={"chi_tieu_cds": 2})
    result = ckan.publish(ctx)
    assert result.status == "ok", result.message
    assert result.written == ["chi_tieu_cds"] and sorted(result.unchanged) == ["ho_so_theo_tuan", "xa_hoi_so_theo_xa"]
    writes = [c for c in portal.calls[n:] if c.action in ("resource_update", "resource_create", "package_patch",
                                                          "package_create")]
    assert [c.action for c in writes] == ["resource_update", "resource_update", "package_patch"]
    target = portal.packages["ninh-binh-chi-tieu-cds"]
    assert all(c.payload.get("id") in {target["id"], *(r["id"] for r in target["resources"])} for c in writes)
    assert target["version"] == "1.1.0"
    assert {e["key"]: e["value"] for e in target["extras"]}["modified"] == "2026-01-02T00:00:00Z"
    after = {name: json.dumps(pkg, sort_keys=True) for name, pkg in portal.packages.items()}
    assert {n for n in after if after[n] != before[n]} == {"ninh-binh-chi-tieu-cds"}


def test_portal_500_leaves_local_files_and_is_retried(portal, caplog, capsys):
    ctx = _ctx(portal.url)
    _write_publication(ctx, BASE)
    folder = ctx.output_root / "open_data"
    files_before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    portal.fail_status = 500
    with caplog.at_level(logging.INFO):
        failed = ckan.publish(ctx)
    assert failed.status == "failed"
    assert "\n" not in failed.message and "HTTP 500" in failed.message and "retried" in failed.message
    assert "organization_show" in failed.message and "intact" in failed.message
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == files_before
    assert ckan.pending(ctx.paths.root) and not portal.packages
    # a scheduled run with nothing new still pushes: the failure is pending
    portal.fail_status = None
    retried = ckan.publish(PublishContext(ctx.tenant, ctx.paths, ctx.snapshot, ctx.output_root, "t2", True))
    assert retried.status == "ok", retried.message
    assert sorted(retried.written) == sorted(DATASETS) and len(portal.packages) == 3
    assert not ckan.pending(ctx.paths.root)
    out = capsys.readouterr()
    text = out.out + out.err + caplog.text + failed.message + (ctx.paths.root / "publish_state/ckan.json").read_text()
    assert KEY not in text


def test_failure_midway_is_completed_next_run(portal):
    """A 500 after the first dataset's package was created: the next push finishes it (no duplicate)."""
    ctx = _ctx(portal.url)
    _write_publication(ctx, BASE)
    original = portal.handle

    def flaky(action, data, upload, authorised):
        if action == "resource_create" and len(portal.packages) == 1 and sum(
                c.action == "resource_create" for c in portal.calls) == 2:
            raise RuntimeError("boom")  # the handler thread dies: the client sees a broken answer
        return original(action, data, upload, authorised)

    portal.handle = flaky
    first = ckan.publish(ctx)
    assert first.status == "failed" and ckan.pending(ctx.paths.root)
    portal.handle = original
    second = ckan.publish(ctx)
    assert second.status == "ok", second.message
    pkg = portal.packages["ninh-binh-ho-so-theo-tuan"]
    assert sorted(r["name"] for r in pkg["resources"]) == ["ho_so_theo_tuan.csv", "ho_so_theo_tuan.json"]
    n = len(portal.writes())
    assert ckan.publish(ctx).status == "ok" and len(portal.writes()) == n


def test_unreachable_portal_and_missing_key_are_one_line(monkeypatch, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv(KEY_ENV, KEY)
    ctx = _ctx(f"http://127.0.0.1:{port}")
    _write_publication(ctx, BASE)
    down = ckan.publish(ctx)
    assert down.status == "failed" and "unreachable" in down.message and "\n" not in down.message
    assert KEY not in down.message
    monkeypatch.delenv(KEY_ENV)
    nokey = ckan.publish(ctx)
    assert nokey.status == "failed" and f"${KEY_ENV}" in nokey.message and "not set" in nokey.message


def test_wrong_key_and_unknown_organisation(portal, monkeypatch):
    ctx = _ctx(portal.url)
    _write_publication(ctx, BASE)
    portal.organizations.clear()
    missing = ckan.publish(ctx)
    assert missing.status == "failed" and f"organisation '{ORG}' does not exist" in missing.message
    portal.organizations.add(ORG)
    monkeypatch.setenv(KEY_ENV, "another-token-not-valid-123")
    refused = ckan.publish(ctx)
    assert refused.status == "failed" and "not authorised" in refused.message and f"${KEY_ENV}" in refused.message
    assert "another-token-not-valid-123" not in refused.message and not portal.packages


def test_links_instead_of_uploads_and_withdrawal(portal):
    ctx = _ctx(portal.url, upload=False, base_url="https://dulieu.ninhbinh.gov.vn/open_data/")
    _write_publication(ctx, BASE)
    assert ckan.publish(ctx).status == "ok"
    pkg = portal.packages["ninh-binh-xa-hoi-so-theo-xa"]
    assert {r["url"] for r in pkg["resources"]} == {
        f"https://dulieu.ninhbinh.gov.vn/open_data/xa_hoi_so_theo_xa/xa_hoi_so_theo_xa.{f}" for f in ("csv", "json")}
    assert not portal.uploads
    # the gate withdrew a dataset (personal data found): it leaves the portal too
    _write_publication(ctx, {d: BASE[d] for d in DATASETS[:2]}, refused={"xa_hoi_so_theo_xa": True})
    result = ckan.publish(ctx)
    assert result.status == "ok" and result.written == ["xa_hoi_so_theo_xa"]
    assert portal.packages["ninh-binh-xa-hoi-so-theo-xa"]["state"] == "deleted"


def test_no_portal_configured_is_skipped(tmp_path: Path):
    cfg = load_tenant("ninh-binh")
    result = ckan.publish(PublishContext.for_tenant(cfg.model_copy(update={"open_data": None}), "x"))
    assert result.status == "skipped"
