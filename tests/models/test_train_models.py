"""Training several models: dependency order, and one model's failure never stops the others."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import duckdb
import pytest

import models
from models import one_line, train_models, training_order
from models.registry import ModelRun


def test_order_follows_declared_dependencies_not_the_list():
    deps = {"staffing": ("inflow_forecast",), "inflow_forecast": (), "anomalies": ()}
    assert training_order(["staffing", "anomalies", "inflow_forecast"], deps) == \
        ["anomalies", "inflow_forecast", "staffing"]
    # A dependency the tenant does not list (one model retrained alone) does not hold the model back.
    assert training_order(["staffing"], deps) == ["staffing"]
    with pytest.raises(ValueError, match="cycle"):
        training_order(["a", "b"], {"a": ("b",), "b": ("a",)})


def test_staffing_declares_that_it_reads_the_forecast():
    assert models.dependencies("staffing") == ("inflow_forecast",)
    assert training_order(["staffing", "overdue_risk", "inflow_forecast", "anomalies"]).index("staffing") > \
        training_order(["staffing", "overdue_risk", "inflow_forecast", "anomalies"]).index("inflow_forecast")


def _fake(name: str, behaviour):
    module = types.ModuleType(f"fake_models.{name}")

    def train(con, tenant, paths, run_id):
        behaviour(con)
        return ModelRun(name, f"{name}-v1", "fp", {}, {}, None, "card")

    module.train = train
    return module


def test_a_failing_model_is_reported_and_the_others_still_train(monkeypatch):
    calls: list[str] = []

    def ok(name):
        return lambda con: calls.append(name)

    def broken(con):
        calls.append("forecast")
        con.execute("BEGIN TRANSACTION")  # fails half-way through its own transaction
        con.execute("create table half_written as select 1 as x")
        raise ValueError("empty last-year features\nTraceback line that must not reach the summary")

    fakes = {"forecast": _fake("forecast", broken), "plan": _fake("plan", ok("plan")),
             "risk": _fake("risk", ok("risk"))}
    for module in fakes.values():
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(models, "REGISTRY", {n: m.__name__ for n, m in fakes.items()})
    monkeypatch.setattr(models, "dependencies", lambda n: {"plan": ("forecast",)}.get(n, ()))
    con = duckdb.connect()
    tenant = SimpleNamespace(tenant_id="t", models=["plan", "forecast", "risk"])
    report = train_models(con, tenant, None, "r1")
    assert calls == ["forecast", "risk"]  # plan waits for forecast, then is skipped; risk still trains
    assert report.trained == {"risk": "risk-v1"}
    assert report.failed == {"forecast": "ValueError: empty last-year features"}
    assert report.skipped == {"plan": "skipped: dependency forecast failed"}
    assert report.order == ["forecast", "plan", "risk"]
    # The failed model's half-done transaction was rolled back and the connection still works.
    assert con.execute("select count(*) from information_schema.tables where table_name = 'half_written'"
                       ).fetchone()[0] == 0
    m = report.metrics()
    assert m["n_models_trained"] == 1 and m["models_failed"]["forecast"].startswith("ValueError")


def test_one_line_reasons_are_short_and_single_line():
    assert one_line(RuntimeError("a\nb")) == "RuntimeError: a"
    assert one_line(KeyError()) == "KeyError: (no message)"
    assert len(one_line(ValueError("x" * 1000))) == models.MAX_REASON_CHARS


def test_the_run_summary_names_each_failed_and_skipped_model():
    from pipelines.runner import RunReport
    from pipelines.steps import StepResult

    metrics = models.TrainingReport(trained={"risk": "risk-v1"}, failed={"forecast": "ValueError: empty"},
                                    skipped={"plan": "skipped: dependency forecast failed"}).metrics()
    text = RunReport("t", "r1", [StepResult("train", metrics, 1.0)]).summary()
    assert "models trained: 1" in text
    assert "model forecast FAILED: ValueError: empty" in text
    assert "model plan skipped: dependency forecast failed" in text
