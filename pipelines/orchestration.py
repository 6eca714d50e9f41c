"""What every tenant DAG shares: default task arguments, start date, and the Assets it announces.

Airflow identifies an Asset by its URI and name, so the pipeline DAG (producer) and the retraining DAG
(consumer) must build them identically. `tonghop://<tenant>/<layer>` also names the product for the
national data map and, later, for DAGs on other machines.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import Asset

# Retries absorb transient failures (a source briefly down); `validate` overrides with 0 (a failed
# expectation does not fix itself).
DEFAULT_ARGS = {"owner": "tonghop", "retries": 2, "retry_delay": timedelta(minutes=2)}
START = datetime(2025, 7, 1)


def asset_uri(tenant_id: str, product: str) -> str:
    return f"tonghop://{tenant_id}/{product}"


def tenant_asset(tenant_id: str, product: str) -> Asset:
    """`product` is `marts` (updated by transform) or `serving` (the published snapshot)."""
    from airflow.sdk import Asset

    return Asset(uri=asset_uri(tenant_id, product), name=f"tonghop_{tenant_id}_{product}")
