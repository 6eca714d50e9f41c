"""Airflow's LocalExecutor, counting the tasks it has handed to its workers as occupying a slot.

Why (the 34-tenant load test, docs/performance.md "Tenants at scale"): Airflow 3.3's LocalExecutor takes a
task off its `queued_tasks` and puts it on the workers' FIFO without adding it to `running`, so its
`slots_occupied` stays 0 and the scheduler queues EVERY ready task at once (one per tenant pool: 34 tasks
for 2 worker processes). Each queued task carries a workload token valid for `[scheduler] task_queued_timeout`
(600 s by default); a task that waits longer than that on the FIFO reaches the execution API with an expired
token ("Invalid auth token") and fails before any pipeline code runs — 14 of 34 `validate` tasks in the load
test, the one task without retries. The scheduler's stuck-in-queued check cannot rescue them either: the
LocalExecutor cannot revoke a task.

Counting dispatched tasks as `running` (what Airflow 2's executors did) restores `[core] parallelism` as the
bound on what the scheduler queues: a task waits for a slot in the `scheduled` state, where it holds no
token, and the scheduler picks the next task by priority weight when a slot frees — so the tenant DAGs'
`weight_rule="upstream"` (dags/tonghop.py) lets a started run finish before another tenant's run starts.
Keys leave `running` when the worker reports the task's end (`change_state`, as before).

Selected with `AIRFLOW__CORE__EXECUTOR=pipelines.airflow_executor.TenantLocalExecutor` (the Makefile's
`make airflow`, the cluster tests, the load benchmark; docs/deployment.md). Celery and Kubernetes executors
count their running tasks themselves and need nothing of this.
"""

from __future__ import annotations

from airflow.executors.local_executor import LocalExecutor

EXECUTOR_PATH = "pipelines.airflow_executor.TenantLocalExecutor"


class TenantLocalExecutor(LocalExecutor):
    """LocalExecutor whose dispatched workloads occupy a slot until their worker reports the end."""

    def _process_workloads(self, workload_list) -> None:
        keys = [workload.key for workload in workload_list]
        super()._process_workloads(workload_list)
        self.running.update(keys)
