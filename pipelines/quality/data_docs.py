"""A tenant's Great Expectations Data Docs, as the app serves them: a static copy and a zip.

`validate` builds the site into the tenant's folder (`TenantPaths.data_docs`, see
`suites.build_data_docs(site_dir=...)`). The app cannot link to that folder (a browser must not read the
server's disk), so the quality page copies the site into Streamlit's static folder, served as real files
at `/app/static/...` when `server.enableStaticServing` is on: relative links, styles and images of GX's
pages keep working, i.e. the site can be clicked through like GX's own `open_data_docs`. The copy is
refreshed only when the tenant's site was rebuilt since. A zip of the site is the offline alternative.

Nothing here imports GX: the app pays no GX import for these pages.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

__all__ = ["newest_validation_pages", "publish", "site_zip", "suite_pages"]

_STAMP = ".built"  # in the published copy: the source index.html's mtime (ns) it was copied from


def _index(site: Path) -> Path | None:
    index = Path(site) / "index.html"
    return index if index.is_file() else None


def publish(site: Path, target: Path) -> Path | None:
    """Make ``target`` a copy of the Data Docs ``site``; return ``target`` (None if nothing is built yet).

    Cheap when the copy is current (one stat). Otherwise the site is copied next to ``target`` and
    swapped in by renames, so a reader sees the old copy or the new one; two app sessions refreshing at
    the same moment both end with a full copy.
    """
    index = _index(site)
    if index is None:
        return None
    target = Path(target)
    stamp = str(index.stat().st_mtime_ns)
    if (target / _STAMP).is_file() and (target / _STAMP).read_text(encoding="utf-8") == stamp:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        shutil.copytree(site, fresh, dirs_exist_ok=True)
        (fresh / _STAMP).write_text(stamp, encoding="utf-8")
        swap_in(fresh, target)
    except OSError:
        if not (target / "index.html").is_file():  # lost a race and have nothing to show: say so
            raise
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return target


def swap_in(fresh: Path, target: Path) -> None:
    """Replace the folder ``target`` by ``fresh`` (same parent) with two renames, so a reader sees the old
    folder or the new one, never half of each; the old one is then deleted."""
    old = None
    try:
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.rmdir(old)
            target.rename(old)
        fresh.rename(target)
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def suite_pages(site: Path) -> dict[str, str]:
    """Per expectation suite, its page (``expectations/<suite>.html``, relative to ``site``)."""
    return {page.stem: page.relative_to(site).as_posix()
            for page in sorted((Path(site) / "expectations").glob("*.html"))}


def newest_validation_pages(site: Path) -> dict[str, str]:
    """Per expectation suite, the page of its newest validation result (path relative to ``site``, ``/``).

    GX writes ``validations/<suite>/<run name>/<run time>/<batch>.html``, the run time a sortable UTC
    stamp (``20261129T004631.419401Z``). GX's own index lists suites and results in tables its JavaScript
    draws (libraries from public CDNs): offline the index shows neither, so the app links these pages and
    :func:`suite_pages` directly.
    """
    newest: dict[str, Path] = {}
    for page in (Path(site) / "validations").glob("*/*/*/*.html"):
        suite = page.parents[2].name
        if suite not in newest or (page.parent.name, page.as_posix()) > (newest[suite].parent.name,
                                                                           newest[suite].as_posix()):
            newest[suite] = page
    return {suite: newest[suite].relative_to(site).as_posix() for suite in sorted(newest)}


def site_zip(site: Path) -> bytes:
    """The whole site as a zip (``data_docs/index.html`` opens it offline in any browser)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(Path(site).rglob("*")):
            if path.is_file() and path.name != _STAMP:
                zf.write(path, f"data_docs/{path.relative_to(site).as_posix()}")
    return buffer.getvalue()
