"""Shared, cheap demo data for the models' tests: the generator's dossiers without the warehouse around them."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

DEMO_ROWS, DEMO_SEED, DEMO_AS_OF = 150_000, 37, date(2025, 11, 1)


@pytest.fixture(scope="session")
def demo_dossiers() -> pl.DataFrame:
    """150k dossiers of the demo province (2024-01-01 to 2025-10-31), as the generator makes them (~3 s)."""
    from pipelines.demo.dossiers import dossiers

    return dossiers(DEMO_ROWS, DEMO_SEED, DEMO_AS_OF).select(
        "ma_ho_so", "co_quan", "linh_vuc", "ngay_nhan", "ngay_hen_tra", "ngay_tra")
