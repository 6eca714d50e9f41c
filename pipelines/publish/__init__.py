"""Publishers: where results go, one module per target behind one interface (like `pipelines.sources`).

Each module exposes `publish(ctx: PublishContext) -> PublishResult` (`pipelines/publish/base.py`).
Adding a target: write `pipelines/publish/<target>.py` and add one line below; `tonghop publish --target`
offers it, `--target all` runs every target in this order.
"""

from __future__ import annotations

import importlib

from pipelines.publish.base import PublishContext, PublishResult

REGISTRY: dict[str, str] = {
    "opendata": "pipelines.publish.opendata",   # open-data files, DCAT-AP 3, Frictionless (docs/open-data.md)
    "catalogue": "pipelines.publish.catalogue",  # database catalogue (Decision 1437) as CSV + DCAT-AP 3
    "ckan": "pipelines.publish.ckan",            # push the open data to a CKAN portal (after 'opendata')
}


def publisher(target: str):
    """The `publish` function of a target, imported only when it runs."""
    from pipelines.errors import ConfigError

    module = REGISTRY.get(target)
    if module is None:
        raise ConfigError(f"unknown publish target '{target}'; known: {', '.join(REGISTRY)} (or 'all')")
    return importlib.import_module(module).publish


def publish_targets(ctx: PublishContext, targets: list[str]) -> list[PublishResult]:
    return [publisher(t)(ctx) for t in targets]


__all__ = ["REGISTRY", "PublishContext", "PublishResult", "publish_targets", "publisher"]
