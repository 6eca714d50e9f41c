"""What every tenant DAG shares: default task arguments, start date, schedules, and the Assets it announces.

Schedules are the tenant's local time: `schedule: "0 2 * * *"` with `timezone: Asia/Ho_Chi_Minh` fires at
02:00 in Vietnam (19:00 UTC the day before), not 02:00 UTC — `tenant_schedule` builds Airflow's
`CronTriggerTimetable` with the tenant's time zone, and `tenant_start` a start date in that zone.

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


def tenant_start(timezone: str):
    """START in the tenant's time zone (so the DAG's own time zone is the tenant's, as shown in the UI)."""
    import pendulum

    return pendulum.datetime(START.year, START.month, START.day, tz=timezone)


def tenant_schedule(cron: str | None, timezone: str):
    """A cron expression (or @daily-style preset) fired at the tenant's local time; None (manual) and the
    @once / @continuous presets pass through, as Airflow has its own timetables for them."""
    if cron is None or cron.strip() in ("@once", "@continuous"):
        return cron
    from airflow.sdk import CronTriggerTimetable

    return CronTriggerTimetable(cron, timezone=timezone)


def asset_uri(tenant_id: str, product: str) -> str:
    return f"tonghop://{tenant_id}/{product}"


def tenant_asset(tenant_id: str, product: str) -> Asset:
    """`product` is `marts` (updated by transform) or `serving` (the published snapshot)."""
    from airflow.sdk import Asset

    return Asset(uri=asset_uri(tenant_id, product), name=f"tonghop_{tenant_id}_{product}")
