"""The deployment's configuration: the Helm values against the chart's schema (subset, vendored: no `helm`
binary here), tenant queues the workers subscribe to, and the Makefile's Airflow settings."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from pipelines.cli import main
from pipelines.config import load_all
from tests.conftest import project_path

VALUES = project_path("deploy", "helm", "values.yaml")
VALUES_K8S = project_path("deploy", "helm", "values-kubernetes.yaml")
SCHEMA = project_path("deploy", "helm", "values.schema.subset.json")


def _errors(values: dict) -> list[str]:
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(values)]


def _values(path=VALUES) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("path", "executor"), [(VALUES, "CeleryExecutor"), (VALUES_K8S, "KubernetesExecutor")])
def test_helm_values_match_the_charts_schema(path, executor):
    values = _values(path)
    assert _errors(values) == []
    assert values["executor"] == executor and values["postgresql"]["enabled"] is False
    # both: the pools made by the deployment before the scheduler starts, tokens outliving the queue
    assert "tonghop airflow sync-pools" in " ".join(values["scheduler"]["extraInitContainers"][0]["args"])
    assert float(values["config"]["scheduler"]["task_queued_timeout"]) >= 3600
    if shutil.which("helm"):  # where the chart tool exists, its own lint too (not on these machines)
        subprocess.run(["helm", "lint", "--strict", "-f", str(path)], check=True)


def test_kubernetes_values_size_task_pods_per_tenant():
    """KubernetesExecutor: no Celery, `workers.resources` sizes every task pod; TONGHOP_POD_RESOURCES gives
    named tenants their own size, turned into the task's pod_override (pipelines/airflow_admin.py)."""
    from pipelines.airflow_admin import pod_resources
    from pipelines.config import TENANT_ID_RE

    values = _values(VALUES_K8S)
    assert values["redis"]["enabled"] is False and "celery" not in values["config"] and "args" not in values["workers"]
    assert values["workers"]["resources"]["limits"]["memory"] == values["workers"]["resources"]["requests"]["memory"]
    setting = next(e["value"] for e in values["env"] if e["name"] == "TONGHOP_POD_RESOURCES")
    sized = json.loads(setting)
    assert sized and all(TENANT_ID_RE.fullmatch(t) or t == "default" for t in sized)
    assert pod_resources("ho-chi-minh", setting) == {"requests": {"cpu": "2", "memory": "12Gi"},
                                                     "limits": {"memory": "12Gi"}}
    assert pod_resources("ninh-binh", setting) is None  # not listed: the pod template's size


@pytest.mark.parametrize(("setting", "says"), [
    ("{not json", "not valid JSON"),
    ('{"default": {"cpu": "2", "gpu": "1"}}', "must be an object with cpu and/or memory"),
    ('{"default": {"memory": "12 GB"}}', "not a Kubernetes quantity"),
    ('{"default": {"cpu": 2}}', "not a Kubernetes quantity"),
])
def test_a_bad_pod_size_setting_is_one_readable_line(setting, says):
    from pipelines.airflow_admin import pod_resources
    from pipelines.errors import TonghopError

    with pytest.raises(TonghopError, match=says) as err:
        pod_resources("ninh-binh", setting)
    assert "TONGHOP_POD_RESOURCES" in str(err.value) and "\n" not in str(err.value)
    assert pod_resources("ninh-binh", '{"default": {"cpu": "500m"}}') == {"requests": {"cpu": "500m"}, "limits": {}}


@pytest.mark.parametrize(("path", "value", "expected"), [
    (("workers", "replica"), 3, "Additional properties are not allowed ('replica'"),   # a typo
    (("executor",), "CeleryExcutor", "does not match"),
    (("images", "airflow", "pullPolicy"), "Sometimes", "is not one of"),
    (("secret",), [{"envName": "TONGHOP_PII_KEY", "secretName": "x"}], "'secretKey' is a required property"),
])
def test_the_schema_check_catches_mistakes(path, value, expected):
    """The check above can fail: each mistake an operator might make is reported."""
    values = _values()
    node = values
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert any(expected in e for e in _errors(values)), _errors(values)


@pytest.mark.parametrize("path", [VALUES, VALUES_K8S])
def test_no_secret_value_in_the_helm_values(path):
    """Secrets come from Kubernetes Secrets by name: no literal password, token or key in the file."""
    from pipelines.redact import mask_shapes

    text = path.read_text(encoding="utf-8")
    # Nothing shaped like a secret (user:pass@, password=…, Bearer …). Only the shapes: `redact` also masks the
    # values other tests in the same worker registered at run time (process-wide), which made this flaky.
    assert [line for line in text.splitlines() if mask_shapes(line) != line] == []
    values = _values(path)
    assert not re.search(r"(?i)^\s*(password|token|fernetKey|jwt_?secret)\s*:", text, re.MULTILINE)
    assert {s["envName"] for s in values["secret"]} >= {"AIRFLOW__API_AUTH__JWT_SECRET", "TONGHOP_PII_KEY"}


def test_workers_subscribe_to_every_tenants_queue(capsys):
    """Workers listen on `tonghop airflow queues`: every tenant's queue, the one its tasks go to (the DAG
    factory's side: tests/test_dags.py::test_every_dag_has_tags_retries_pool_and_asset)."""
    args = _values()["workers"]["args"]
    assert "airflow celery worker --queues" in args[-1] and "$$(tonghop airflow queues)" in args[-1]
    assert main(["airflow", "queues"]) == 0
    queues = capsys.readouterr().out.strip().split(",")
    assert queues == [f"tonghop_{cfg.tenant_id.replace('-', '_')}" for cfg in load_all()]
    assert queues == ["tonghop_bo_khoa_hoc_cong_nghe", "tonghop_ninh_binh"]  # the two shipped tenants


def test_make_airflow_derives_the_execution_api_url_from_its_port():
    """`make airflow AIRFLOW_PORT=8631`: task runners call the execution API on 8631, not on 8080."""
    out = subprocess.run(["make", "-pn", "airflow", "AIRFLOW_PORT=8631"], cwd=project_path(), capture_output=True,
                         text=True, timeout=60).stdout
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL := http://127.0.0.1:8631/execution/" in out
    assert "AIRFLOW__API__PORT := 8631" in out
    assert "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := False" in out
    assert "tonghop airflow sync-pools --unpause" in out  # airflow-init makes the pools, unpauses the DAGs
    # the executor that queues no more than its slots, and a queued task's token outliving a long queue
    assert "AIRFLOW__CORE__EXECUTOR=pipelines.airflow_executor.TenantLocalExecutor" in out
    assert "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT=7200" in out


def test_queued_task_tokens_outlive_the_backlog():
    """A queued task's token lives `task_queued_timeout` s: longer than 34 tenants × 5 tasks waiting for the
    Celery slots (a 15-minute task), or tasks behind other provinces start with an expired token."""
    config = _values()["config"]
    slots, tasks, task_s = config["core"]["parallelism"], 34 * 5, 15 * 60
    assert float(config["scheduler"]["task_queued_timeout"]) >= tasks / slots * task_s
