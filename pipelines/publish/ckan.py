"""Push the tenant's published open data to a CKAN portal (the software behind data.gov.vn and many
provincial portals) through CKAN's action API with `ckanapi`.

Reads what the `opendata` publisher wrote (`<tenant data folder>/open_data/publish_report.json` and the files
it lists) and the plan's metadata; never the warehouse. Per open dataset, package `<tenant>-<dataset id>`
in the configured organisation:

- `package_show` → `package_create` when absent; one resource per file (`resource_create` with the file
  uploaded, or linked under `open_data.base_url` with `upload: false`), each carrying its sha256 as `hash`;
- a package whose `tonghop_fingerprint` extra (metadata + file checksums) and resource hashes match the local
  publication gets NO write call: a second push with nothing changed only reads;
- a changed dataset: `resource_update`/`resource_create` for the files that changed, then `package_patch`
  with the new metadata and fingerprint — written last, so a push cut short is redone next time;
- a dataset the gate withdrew (personal data) is deleted from the portal (`package_delete`).

The organisation must exist (`organization_show`): portals let only their administrators create one.
A failure (portal down, HTTP 500, timeout, refused key) leaves the local publication untouched, is reported
in one line (the key is never printed: `pipelines.redact`) and remembered as pending in
`<tenant data folder>/publish_state/ckan.json`, so the next run pushes again even if nothing open changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pipelines.publish.base import PublishContext, PublishResult
from pipelines.redact import redact, register_secret

if TYPE_CHECKING:
    from pipelines.config import CkanTarget, OpenDataPlan, TenantConfig

log = logging.getLogger("tonghop.publish.ckan")

TARGET = "ckan"
OPEN_DATA = "open_data"
REPORT_FILE = "publish_report.json"
FINGERPRINT = "tonghop_fingerprint"
# our licence codes -> CKAN's default licence ids
LICENCE_IDS = {"CC-BY-4.0": "cc-by", "CC0-1.0": "cc-zero", "ODbL-1.0": "odc-odbl"}
FORMATS = {"csv": "CSV", "parquet": "Parquet", "json": "JSON"}
WRITE_ACTIONS = {"package_create", "package_patch", "package_update", "package_delete", "resource_create",
                 "resource_update", "resource_delete", "organization_create"}


class PushFailed(Exception):
    """One CKAN call failed; `reason` is one readable line without the key."""

    def __init__(self, action: str, dataset: str | None, reason: str) -> None:
        super().__init__(reason)
        self.action, self.dataset, self.reason = action, dataset, reason


def state_path(root: Path) -> Path:
    return root / "publish_state" / "ckan.json"


def read_state(root: Path) -> dict[str, Any]:
    try:
        return json.loads(state_path(root).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {"pending": False, "pushed": {}}


def _write_state(root: Path, state: dict[str, Any]) -> None:
    path = state_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def pending(root: Path) -> bool:
    """True when the last push failed (the next run must push even if nothing open changed)."""
    return bool(read_state(root).get("pending"))


def package_name(tenant_id: str, dataset_id: str) -> str:
    """CKAN names: 2-100 characters, lowercase letters, digits, '-' and '_' (here '-': the URL reads better)."""
    return re.sub(r"[^a-z0-9-]", "-", f"{tenant_id}-{dataset_id}".lower())[:100]


def _tag(word: str) -> str | None:
    tag = re.sub(r"[^\w .-]", " ", word, flags=re.UNICODE).strip()[:100]
    return tag if len(tag) >= 2 else None


def package_fields(cfg: TenantConfig, plan: OpenDataPlan, entry: dict[str, Any], target: CkanTarget) -> dict:
    """The package's metadata (without resources) as CKAN takes it, from the plan and the report entry."""
    ds = next(d for d in plan.datasets if d.id == entry["id"])
    tags = sorted({t for t in (_tag(k) for k in [*ds.keywords, *ds.keywords_en]) if t})
    return {
        "name": package_name(cfg.tenant_id, ds.id),
        "title": ds.title,
        "notes": f"{ds.description}\n\n{ds.title_en}: {ds.description_en}",
        "owner_org": target.organization,
        "license_id": LICENCE_IDS[plan.licence],
        "version": str(entry["version"]),
        "maintainer": ds.owner or plan.publisher,
        "maintainer_email": plan.contact_email,
        "tags": [{"name": t} for t in tags],
        "extras": [{"key": "frequency", "value": ds.frequency},
                   {"key": "modified", "value": str(entry["modified"])},
                   {"key": "themes", "value": ",".join(ds.themes)},
                   {"key": "tonghop_dataset", "value": f"{cfg.tenant_id}/{ds.id}"}],
    }


def fingerprint(fields: dict[str, Any], entry: dict[str, Any]) -> str:
    files = sorted((d["path"], d["format"], d["sha256"]) for d in entry["distributions"])
    return hashlib.sha256(json.dumps([fields, files], sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class _Portal:
    """The calls to one portal, each named and timed out, failures turned into PushFailed lines."""

    def __init__(self, target: CkanTarget, key: str) -> None:
        import ckanapi

        self.target = target
        self.ckan = ckanapi.RemoteCKAN(target.url, apikey=key, user_agent="tonghop-publisher/1")
        self.writes = 0
        self.dataset: str | None = None

    def call(self, action: str, data: dict[str, Any], upload: Path | None = None) -> Any:
        import ckanapi
        import requests

        if action in WRITE_ACTIONS:
            self.writes += 1
        env = self.target.api_key.env
        try:
            if upload is not None:
                with upload.open("rb") as fh:
                    return self.ckan.call_action(action, data, files={"upload": (upload.name, fh)},
                                                 requests_kwargs={"timeout": self.target.timeout})
            return self.ckan.call_action(action, data, requests_kwargs={"timeout": self.target.timeout})
        except ckanapi.NotFound:
            raise
        except ckanapi.NotAuthorized:
            reason = (f"not authorised — check the API key in ${env} and that its user may edit organisation "
                      f"'{self.target.organization}'")
        except ckanapi.ValidationError as exc:
            reason = f"the portal refused the fields: {str(exc)[:300]}"
        except requests.Timeout:
            reason = f"no answer within {self.target.timeout:g} s (open_data.ckan.timeout)"
        except requests.ConnectionError:
            reason = "portal unreachable (connection failed) — is it up, and is the URL right?"
        except ckanapi.CKANAPIError as exc:
            status = re.search(r"\b([45]\d\d)\b", str(exc)[:200])
            reason = f"the portal answered HTTP {status.group(1)}" if status else \
                f"the portal gave an unusable answer ({str(exc)[:120]})"
        except (OSError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        raise PushFailed(action, self.dataset, redact(reason))


def _online(report: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Report entries whose files are online (published now or unchanged), and datasets withdrawn."""
    online = [e for e in report.get("datasets", []) if e.get("status") in ("published", "unchanged")]
    withdrawn = [e["id"] for e in report.get("datasets", []) if e.get("status") == "refused" and e.get("withdrawn")]
    return online, withdrawn


def _push_dataset(portal: _Portal, cfg: TenantConfig, plan: OpenDataPlan, target: CkanTarget, folder: Path,
                  entry: dict[str, Any]) -> bool:
    """Create or bring up to date one package; True when anything was written."""
    import ckanapi

    fields = package_fields(cfg, plan, entry, target)
    fp = fingerprint(fields, entry)
    portal.dataset = entry["id"]
    try:
        pkg = portal.call("package_show", {"id": fields["name"]})
    except ckanapi.NotFound:
        pkg = None
    resources = {r.get("name"): r for r in (pkg or {}).get("resources", [])}
    extras = {e["key"]: e["value"] for e in (pkg or {}).get("extras", [])}
    up_to_date = pkg is not None and pkg.get("state", "active") == "active" and extras.get(FINGERPRINT) == fp \
        and all(resources.get(Path(d["path"]).name, {}).get("hash") == d["sha256"] for d in entry["distributions"])
    if up_to_date:
        return False
    if pkg is None:
        pkg = portal.call("package_create", fields | {"extras": [*fields["extras"], {"key": FINGERPRINT,
                                                                                    "value": "pending"}]})
    for dist in entry["distributions"]:
        path = folder / dist["path"]
        name = path.name
        existing = resources.get(name)
        if existing and existing.get("hash") == dist["sha256"]:
            continue
        data = {"name": name, "format": FORMATS.get(dist["format"], dist["format"].upper()), "hash": dist["sha256"],
                "size": dist["byte_size"], "description": f"{fields['title']} ({dist['format'].upper()})"}
        if target.upload:
            if not path.is_file():
                raise PushFailed("resource_create", entry["id"], f"file {path} listed in {REPORT_FILE} is missing — "
                                 f"run `tonghop publish --tenant {cfg.tenant_id}` to rewrite the open data")
            upload = path
        else:
            data["url"] = f"{plan.base_url}{dist['path']}"
            upload = None
        if existing:
            portal.call("resource_update", data | {"id": existing["id"]}, upload)
        else:
            portal.call("resource_create", data | {"package_id": pkg["id"]}, upload)
    # the fingerprint last: a push cut short above is redone next time
    portal.call("package_patch", fields | {"id": pkg["id"], "state": "active",
                                           "extras": [*fields["extras"], {"key": FINGERPRINT, "value": fp}]})
    return True


def push(ctx: PublishContext, target: CkanTarget) -> PublishResult:
    """Push the tenant's open data to `target` (see the module docstring)."""
    import ckanapi

    cfg, plan = ctx.tenant, ctx.tenant.open_data
    folder = ctx.output_root / OPEN_DATA
    host = urlparse(target.url).netloc or target.url
    state = read_state(ctx.paths.root)
    try:
        report = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return PublishResult(TARGET, "failed", message=f"CKAN push for '{cfg.tenant_id}': no readable "
                             f"{folder / REPORT_FILE} — run the 'opendata' target first (tonghop publish)")
    online, withdrawn = _online(report)
    local = {e["id"]: fingerprint(package_fields(cfg, plan, e, target), e) for e in online}
    if ctx.only_if_changed and not state.get("pending") and state.get("pushed") == local \
            and state.get("portal") == target.url and not withdrawn:
        return PublishResult(TARGET, "skipped", unchanged=sorted(local),
                             message=f"nothing changed since the last push to {host}")
    if not target.upload and not plan.base_url:
        return PublishResult(TARGET, "failed", message="open_data.ckan.upload is false but open_data.base_url is "
                             "not set — give the address where open_data/ is served, or upload the files")
    key = os.environ.get(target.api_key.env or "")
    if not key:
        return _failed(ctx, state, target, f"CKAN push to {host}: environment variable ${target.api_key.env} "
                       "(open_data.ckan.api_key.env) is not set — set it to the portal user's API token; the local "
                       f"publication in {folder} is intact")
    register_secret(key)
    portal = _Portal(target, key)
    result = PublishResult(TARGET, "ok")
    failures: list[PushFailed] = []
    try:
        portal.call("organization_show", {"id": target.organization})
    except ckanapi.NotFound:
        failures.append(PushFailed("organization_show", None, f"organisation '{target.organization}' does not "
                                   "exist on the portal — ask its administrator to create it, or fix "
                                   "open_data.ckan.organization"))
    except PushFailed as exc:
        failures.append(exc)
    if not failures:
        for entry in online:
            try:
                changed = _push_dataset(portal, cfg, plan, target, folder, entry)
                (result.written if changed else result.unchanged).append(entry["id"])
            except PushFailed as exc:
                failures.append(exc)
                if exc.reason.startswith(("portal unreachable", "no answer")):
                    break  # the portal is gone: do not wait on it once per dataset
        for dataset_id in withdrawn:
            portal.dataset = dataset_id
            try:
                portal.call("package_delete", {"id": package_name(cfg.tenant_id, dataset_id)})
                result.written.append(dataset_id)
            except ckanapi.NotFound:
                pass
            except PushFailed as exc:
                failures.append(exc)
    if failures:
        first = failures[0]
        where = f" for dataset '{first.dataset}'" if first.dataset else ""
        more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        failed = _failed(ctx, state, target, f"CKAN push to {host} failed at {first.action}{where}: {first.reason}"
                         f"{more} — the local publication in {folder} is intact; the push is retried on the next "
                         "run", pushed={k: v for k, v in local.items() if k in result.written + result.unchanged})
        failed.written, failed.unchanged = result.written, result.unchanged
        return failed
    _write_state(ctx.paths.root, {"pending": False, "portal": target.url, "pushed": local, "last_error": None,
                                  "last_push": datetime.now(UTC).isoformat(timespec="seconds")})
    result.message = (f"{host}: {len(result.written)} dataset(s) created or updated, {len(result.unchanged)} "
                      f"unchanged, {portal.writes} write call(s)")
    return result


def _failed(ctx: PublishContext, state: dict[str, Any], target: CkanTarget, message: str,
            pushed: dict[str, str] | None = None) -> PublishResult:
    message = redact(message)
    log.error("%s", message)
    _write_state(ctx.paths.root, {"pending": True, "portal": target.url,
                                  "pushed": {**state.get("pushed", {}), **(pushed or {})} if pushed else
                                  state.get("pushed", {}),
                                  "last_error": message, "last_attempt": datetime.now(UTC).isoformat(timespec="seconds")})
    return PublishResult(TARGET, "failed", message=message)


def publish(ctx: PublishContext) -> PublishResult:
    plan = ctx.tenant.open_data
    target = getattr(plan, "ckan", None) if plan else None
    if target is None:
        return PublishResult(TARGET, "skipped", message=f"tenant '{ctx.tenant.tenant_id}' has no open_data.ckan portal")
    return push(ctx, target)
