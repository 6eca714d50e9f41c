"""Many tenants on few slots (the 34-province load test, docs/performance.md "Tenants at scale"), in seconds:
no Airflow cluster is started here (tests/cluster/test_airflow_cluster.py runs one, with this executor).

The load test's 14 failed runs: Airflow 3.3's LocalExecutor never counts a dispatched task as running, so the
scheduler queued every tenant's ready task at once on the workers' FIFO; a task waiting there longer than its
token's lifetime (`[scheduler] task_queued_timeout`, 600 s) failed with "Invalid auth token" before any of our
code ran — `validate`, without retries, turned that into a failed run.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import sys
from queue import SimpleQueue
from types import SimpleNamespace

import pytest
from airflow.executors.local_executor import LocalExecutor

from pipelines.airflow_executor import TenantLocalExecutor
from tests.conftest import dags_module


def _scheduler_loops(executor, ready: int, loops: int = 30) -> int:
    """What the scheduler does each loop: hand the executor as many ready tasks as it says it has free slots
    (`slots_available`), then the executor's heartbeat dispatches them to its workers. Returns how many tasks
    were put on the workers' queue (where each one's token ticks)."""
    executor.activity_queue, executor.result_queue = SimpleQueue(), SimpleQueue()
    executor._unread_messages, executor.workers = multiprocessing.Value(ctypes.c_uint), {}
    executor._check_workers = lambda: None  # no worker process: only the bookkeeping is under test
    n = 0
    for _ in range(loops):
        for _ in range(max(min(executor.slots_available, ready - n), 0)):
            key = ("tonghop_t", f"task{n}", "run", n)
            executor.queued_tasks[key] = SimpleNamespace(key=key, ti=SimpleNamespace(priority_weight=1))
            n += 1
        executor.trigger_tasks(executor.parallelism - len(executor.running))
    return executor._unread_messages.value


def test_tenant_executor_queues_no_more_tasks_than_slots():
    """34 tenants ready, 2 slots: two tasks reach the workers; the rest wait in the scheduler (no token yet)
    and the next goes when a worker reports a task's end."""
    from airflow.utils.state import TaskInstanceState

    executor = TenantLocalExecutor(parallelism=2)
    assert _scheduler_loops(executor, ready=34) == 2
    assert executor.slots_available == 0 and len(executor.running) == 2
    executor.change_state(next(iter(executor.running)), TaskInstanceState.SUCCESS)  # a worker's report
    assert executor.slots_available == 1


def test_airflows_local_executor_queues_every_ready_task():
    """The cause, stated: the stock LocalExecutor of the locked Airflow hands out all 34 tasks to 2 workers.
    When this fails, Airflow counts its running tasks again and pipelines/airflow_executor.py can go."""
    assert _scheduler_loops(LocalExecutor(parallelism=2), ready=34) == 34


@pytest.fixture(scope="module")
def tonghop_dags():
    return dags_module()


def test_started_runs_go_first_and_every_step_retries(tonghop_dags):
    """weight_rule=upstream: a tenant's later step outranks every tenant's first step, so a started run
    finishes before the next one starts; every step (validate too) retries infrastructure failures."""
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.task.priority_strategy import validate_and_load_priority_weight_strategy as strategy

    from pipelines.config import tenant_files

    dag = tonghop_dags.build_dags(tenant_files()[0])[0]
    served = DagSerialization.from_dict(DagSerialization.to_dict(dag))  # the DAG as the scheduler reads it
    weights = {t.task_id: strategy(t.weight_rule).get_weight(SimpleNamespace(task=t)) for t in served.tasks}
    order = [t.task_id for t in dag.topological_sort()]
    assert [weights[t] for t in order] == list(range(1, len(order) + 1)), weights  # extract_load 1 … publish 5
    assert {t.retries for t in dag.tasks} == {2}


@pytest.mark.parametrize(("raised", "retried"), [
    ("ValidationBlocked", False), ("ConfigError", False),     # data and config: a retry cannot fix them
    ("WarehouseBusy", True), ("TonghopError", True), ("OSError", True),  # infrastructure: retried
])
def test_an_expectation_failure_fails_at_once_anything_else_retries(tonghop_dags, monkeypatch, raised, retried):
    from airflow.sdk.exceptions import AirflowFailException

    import pipelines.airflow_task
    from pipelines import errors, runcontrol

    exc_type = getattr(errors, raised, None) or getattr(runcontrol, raised, None) or OSError

    def failing(tenant_id, step, run_id):
        raise exc_type("blocking expectation(s) failed" if raised == "ValidationBlocked" else "boom")

    monkeypatch.setattr(pipelines.airflow_task, "run_task_step", failing)
    with pytest.raises(Exception) as info:
        tonghop_dags.run_step_failing_fast("ninh-binh", "validate", "r1")
    if retried:
        assert type(info.value) is exc_type
    else:
        assert isinstance(info.value, AirflowFailException) and raised in str(info.value)


def test_kubernetes_pod_size_reaches_every_task_of_the_tenant(tonghop_dags, monkeypatch):
    """TONGHOP_POD_RESOURCES → each task's executor_config pod_override (`base` container's resources). The
    Kubernetes client is not installed here (the official image has it): a stand-in module with its four
    model classes records what the DAG factory builds."""
    import types

    from pipelines.config import tenant_files

    models = types.ModuleType("kubernetes.client.models")
    for name in ("V1Pod", "V1PodSpec", "V1Container", "V1ResourceRequirements"):
        setattr(models, name, lambda _name=name, **kw: SimpleNamespace(kind=_name, **kw))
    client = types.ModuleType("kubernetes.client")
    client.models = models
    monkeypatch.setitem(sys.modules, "kubernetes", types.ModuleType("kubernetes"))
    monkeypatch.setitem(sys.modules, "kubernetes.client", client)
    monkeypatch.setitem(sys.modules, "kubernetes.client.models", models)
    path = tenant_files()[0]
    monkeypatch.setenv("TONGHOP_POD_RESOURCES", f'{{"{path.stem}": {{"cpu": "2", "memory": "12Gi"}}}}')
    for dag in tonghop_dags.build_dags(path):
        for task in dag.tasks:
            pod = task.executor_config["pod_override"]
            (base,) = pod.spec.containers
            assert base.name == "base" and base.resources.requests == {"cpu": "2", "memory": "12Gi"}
            assert base.resources.limits == {"memory": "12Gi"}
    monkeypatch.setenv("TONGHOP_POD_RESOURCES", '{"another-tenant": {"cpu": "2"}}')
    assert all(t.executor_config == {} for t in tonghop_dags.build_dags(path)[0].tasks)
