"""A tenant's Great Expectations Data Docs site, as the app offers it: a zip for engineers.

`validate` builds the site into the tenant's folder (`TenantPaths.data_docs`, see
`suites.build_data_docs(site_dir=...)`). The app never serves it as static files (a URL under Streamlit's static
folder reached every tenant's copy, issue 14): the quality page draws the tenant's validation results itself,
after the "data-docs" grant check (apps/data_docs_view.py), and offers GX's own site as this zip.
`swap_in` replaces a folder by a fresh one atomically (the site build uses it).

Nothing here imports GX: the app pays no GX import for these pages.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

__all__ = ["SITE_STATE", "site_zip", "swap_in"]

_STAMP = ".built"  # bookkeeping file of the former static copy: never zipped
SITE_STATE = ".tonghop_site.json"  # what the site was built from (suites.py, incremental build): never zipped


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


def site_zip(site: Path) -> bytes:
    """The whole site as a zip (``data_docs/index.html`` opens it offline in any browser)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(Path(site).rglob("*")):
            if path.is_file() and path.name not in (_STAMP, SITE_STATE):
                zf.write(path, f"data_docs/{path.relative_to(site).as_posix()}")
    return buffer.getvalue()
