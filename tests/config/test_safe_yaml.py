"""Tenant files are parsed safely: libyaml safe loader, duplicate keys refused, alias bombs and huge files
stopped, any encoding error one line naming the file, bad cron/time zone refused, validate-config exits 2
and reports every file, and one bad file never hides the other tenants' DAGs."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from pipelines.cli import main
from pipelines.config import load_tenant_file
from pipelines.errors import ConfigError
from pipelines.yamlsafe import MAX_FILE_BYTES, load_yaml_bytes
from tests.conftest import project_path

DEMO = project_path("tenants", "ninh-binh.yaml")


def _demo_text() -> str:
    return DEMO.read_text(encoding="utf-8")


def _tenant(tmp_path: Path, text: str | bytes, name: str = "ninh-binh") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _one_line_error(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_tenant_file(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


def test_merge_keys_still_work_and_match_pyyaml():
    """The demo's `<<: *dang_ky_kinh_doanh_options` merge (with an override) parses as PyYAML's loader does."""
    cfg = load_tenant_file(DEMO)
    assert cfg.source("dang_ky_kinh_doanh_cu").options == {
        **cfg.source("dang_ky_kinh_doanh").options, "encoding": "tcvn3"}
    assert load_yaml_bytes(DEMO.read_bytes(), "x") == yaml.safe_load(_demo_text())


def test_duplicate_key_refused_with_its_line(tmp_path):
    text = _demo_text().replace("kind: province\n", "kind: province\nkind: ministry\n", 1)
    line = text.splitlines().index("kind: ministry") + 1
    message = _one_line_error(_tenant(tmp_path, text))
    assert f"line {line}: duplicate key 'kind' (first at line {line - 1})" in message


def test_duplicate_nested_key_refused(tmp_path):
    text = _demo_text().replace("      table: ho_so\n", "      table: ho_so\n      table: other\n", 1)
    assert "duplicate key 'table'" in _one_line_error(_tenant(tmp_path, text))


def test_alias_bomb_is_refused_quickly(tmp_path):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    bomb = _tenant(tmp_path, "\n".join(lines) + "\ntenant_id: ninh-binh\n")
    assert bomb.stat().st_size < 1000  # ~10^9 values once expanded
    started = time.perf_counter()
    message = _one_line_error(bomb)
    assert "once aliases are expanded" in message or "alias references" in message
    assert time.perf_counter() - started < 5  # refused before anything is expanded (a real bomb takes GBs)


def test_recursive_alias_refused(tmp_path):
    message = _one_line_error(_tenant(tmp_path, "a: &x [1, *x]\n"))
    assert "alias" in message


def test_huge_file_refused(tmp_path):
    path = _tenant(tmp_path, _demo_text() + "#" * (MAX_FILE_BYTES + 1) + "\n")
    assert "larger than" in _one_line_error(path)


def test_non_utf8_names_file_and_byte_offset(tmp_path):
    raw = _demo_text().encode("utf-8")
    offset = raw.index("Tỉnh Ninh Bình".encode())
    broken = raw[:offset] + b"T\xecnh" + raw[offset + len("Tỉnh".encode()):]
    message = _one_line_error(_tenant(tmp_path, broken))
    assert f"not UTF-8 at byte {offset + 1}" in message and "save the file as UTF-8" in message


@pytest.mark.parametrize(("old", "new", "expected"), [
    ('schedule: "0 2 * * *"', 'schedule: "0 25 * * *"', "field 'schedule': Value error, '0 25 * * *' is not a cron"),
    ('schedule: "0 2 * * *"', 'schedule: "every day"', "is not a cron expression"),
    ("timezone: Asia/Ho_Chi_Minh", "timezone: Asia/Hanoi_City", "'Asia/Hanoi_City' is not an IANA time zone"),
])
def test_bad_cron_and_timezone_refused(tmp_path, old, new, expected):
    text = _demo_text()
    assert old in text
    assert expected in _one_line_error(_tenant(tmp_path, text.replace(old, new, 1)))


def test_presets_are_accepted(tmp_path):
    cfg = load_tenant_file(_tenant(tmp_path, _demo_text().replace('schedule: "0 2 * * *"', "schedule: '@daily'")))
    assert cfg.schedule == "@daily"


def test_validate_config_reports_every_file_and_exits_2(tmp_path, capsys):
    good = tmp_path / "good"
    good.mkdir()
    shutil.copy(DEMO, good / "ninh-binh.yaml")
    latin = _tenant(tmp_path, _demo_text().encode("utf-8").replace(b"Ninh B\xc3\xacnh", b"Ninh B\xecnh"))
    cron = _tenant(tmp_path, _demo_text().replace('"0 2 * * *"', '"61 * * * *"'), "ha-nam")
    assert main(["validate-config", str(latin), str(good / "ninh-binh.yaml"), str(cron)]) == 2
    out = capsys.readouterr()
    assert "1 valid, 2 invalid" in out.out and f"ok    {good / 'ninh-binh.yaml'}" in out.out
    assert f"error {latin}: not UTF-8 at byte" in out.err and f"error {cron}: " in out.err
    assert "Traceback" not in out.err


def test_one_bad_file_never_hides_the_other_dags(tmp_path, monkeypatch):
    """Through Airflow's DagBag: a non-UTF-8 file, an alias bomb, a duplicate key and a file whose name is
    no valid dag_id each become a one-task failing DAG; the good tenant keeps both its DAGs."""
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    shutil.copy(DEMO, tenants / "ninh-binh.yaml")
    (tenants / "latin.yaml").write_bytes(b"tenant_id: latin\ndisplay_name: T\xecnh\n")
    (tenants / "bomb.yaml").write_text("a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}" if i > 1 else "*a"] * 10) + "]\n" for i in range(1, 9)))
    (tenants / "dup.yaml").write_text("tenant_id: dup\ntenant_id: dup\n")
    (tenants / "bad name!.yaml").write_text("tenant_id: [\n")
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(tenants))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project_path("dags")))
    assert bag.import_errors == {}
    assert {"tonghop_ninh-binh", "tonghop_retrain_ninh-binh"} <= set(bag.dag_ids)
    broken = {d: bag.dags[d] for d in bag.dag_ids if "config-error" in bag.dags[d].tags}
    assert sorted(broken) == ["tonghop_bad_name_", "tonghop_bomb", "tonghop_dup", "tonghop_latin"]
    for dag in broken.values():
        [task] = dag.tasks
        assert task.task_id == "report_config_error"
    message = broken["tonghop_latin"].tasks[0].op_args[0]
    assert "latin.yaml: not UTF-8 at byte" in message
    assert os.environ["TONGHOP_TENANTS_DIR"] == str(tenants)
