"""Deterministic, realistic source data for the demo tenants: Tỉnh Ninh Bình (see `generate`) and Bộ Khoa học
và Công nghệ (`pipelines.demo.ministry`); `generate_for` picks a tenant's generator."""

from __future__ import annotations

from pathlib import Path

from pipelines.demo.faults import FAULTS, planted_faults
from pipelines.demo.generate import generate


def generate_for(tenant_id: str, out_dir: Path, *, rows: int, seed: int,
                 postgres_dsn: str | None = None) -> dict[str, Path]:
    """The demo files of `tenant_id`: the ministry's own systems for the ministry, the province's for any other
    (a new province tenant copied from ninh-binh gets the province's files)."""
    from pipelines.demo.ministry import TENANT_ID as MINISTRY
    from pipelines.demo.ministry import generate_ministry

    if tenant_id == MINISTRY:
        return generate_ministry(out_dir, rows=rows, seed=seed)
    return generate(out_dir, rows=rows, seed=seed, postgres_dsn=postgres_dsn)


__all__ = ["FAULTS", "generate", "generate_for", "planted_faults"]
