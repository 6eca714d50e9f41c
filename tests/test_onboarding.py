"""docs/onboarding.md, executed as written: its tenant-file blocks written, its commands run, the app opened.

Blocks the guide marks are executed in order: ```yaml file=<path> [append]``` writes (or appends to) the file,
```bash run``` runs in bash (`set -euo pipefail`) after the guide's first `run` block (its environment), from
the repository root with `.venv/bin` first on PATH. Only the folders and the secret change: TONGHOP_HOME and
TONGHOP_TENANTS_DIR are this test's temp folders, and the DSN variable the guide names is the test PostgreSQL
server's (tests/fixtures/postgres.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import project_path

pytestmark = pytest.mark.integration

GUIDE = project_path("docs", "onboarding.md")
TENANT = "tinh-mau"
DSN_ENV = "TM_MOTCUA_DSN"
_FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)


def guide_blocks(text: str) -> list[dict]:
    """Every fenced block the guide marks to execute, in order."""
    blocks = []
    for lang, info, body in _FENCE.findall(text):
        words = info.split()
        if lang == "bash" and "run" in words:
            blocks.append({"kind": "bash", "body": body})
        elif lang == "yaml" and any(w.startswith("file=") for w in words):
            path = next(w for w in words if w.startswith("file="))[5:]
            blocks.append({"kind": "file", "path": path, "append": "append" in words, "body": body})
    return blocks


def test_guide_marks_its_steps():
    """The parser sees the guide's steps: one tenant file written then extended twice, the CLI commands."""
    blocks = guide_blocks(GUIDE.read_text(encoding="utf-8"))
    files = [(b["path"], b["append"]) for b in blocks if b["kind"] == "file"]
    assert files == [(f"tenants/{TENANT}.yaml", False), (f"tenants/{TENANT}.yaml", True),
                     (f"tenants/{TENANT}.yaml", True)]
    script = "\n".join(b["body"] for b in blocks if b["kind"] == "bash")
    for command in ("tonghop validate-config", "tonghop inspect --tenant tinh-mau --source can_bo",
                    "--source ho_so", "--source xa_hoi_so", "tonghop run --tenant tinh-mau", f'"${DSN_ENV}"'):
        assert command in script, command
    assert "connection: {env: TM_MOTCUA_DSN}" in "\n".join(b["body"] for b in blocks if b["kind"] == "file")


@pytest.fixture(scope="module")
def onboarded(tmp_path_factory, postgres_server):
    """Run the whole guide once; yields the data home and every command's output."""
    root = tmp_path_factory.mktemp("onboarding")
    home, tenants = root / "home", root / "tenants"
    env = {**os.environ, "TONGHOP_HOME": str(home), "TONGHOP_TENANTS_DIR": str(tenants),
           "TONGHOP_PII_KEY": "test-key-" + "0" * 40, "GX_ANALYTICS_ENABLED": "false",
           DSN_ENV: postgres_server.dsn,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    blocks = guide_blocks(GUIDE.read_text(encoding="utf-8"))
    setup = next(b["body"] for b in blocks if b["kind"] == "bash")
    outputs = []
    for i, block in enumerate(blocks):
        if block["kind"] == "file":
            rel = Path(block["path"])
            target = (tenants / rel.relative_to("tenants")) if rel.parts[0] == "tenants" else home / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a" if block["append"] else "w", encoding="utf-8") as f:
                f.write(block["body"])
            continue
        script = "set -euo pipefail\n" + (block["body"] if i == 0 or block["body"] == setup
                                          else setup + "\n" + block["body"])
        proc = subprocess.run(["bash", "-c", script], env=env, cwd=project_path(), capture_output=True,
                              text=True, timeout=600)
        outputs.append((block["body"], proc.stdout + proc.stderr))
        assert proc.returncode == 0, f"guide block failed:\n{block['body']}\n---\n{(proc.stdout + proc.stderr)[-3000:]}"
    return home, tenants, outputs


def _counts(snapshot: Path, tables: list[str]) -> dict[str, int]:
    with duckdb.connect(str(snapshot), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_guide_runs_to_a_snapshot_with_staging_and_marts(onboarded):
    home, _, outputs = onboarded
    counts = _counts(home / TENANT / "serving.duckdb", [
        "staging.can_bo", "staging.ho_so", "staging.xa_hoi_so", "marts.kpi_tong_quan", "marts.ho_so_tuan",
        "marts.xa_hoi_so_tinh"])
    assert counts["staging.can_bo"] == 3 and counts["staging.ho_so"] == 5
    assert counts["staging.xa_hoi_so"] == 3 * 2  # 3 communes × 2 components; the total line ended the table
    assert counts["marts.xa_hoi_so_tinh"] == 2
    assert counts["marts.kpi_tong_quan"] == 1 and counts["marts.ho_so_tuan"] > 0
    with duckdb.connect(str(home / TENANT / "serving.duckdb"), read_only=True) as con:
        n_ho_so, = con.execute("SELECT n_ho_so FROM marts.kpi_tong_quan").fetchone()
        values = con.execute("SELECT ty_le_pct FROM staging.xa_hoi_so WHERE thanh_phan = 'cap_quang_ho_gia_dinh' "
                             "ORDER BY ma_xa_goc").fetchall()
        dump = str(con.execute("SELECT * FROM staging.ho_so").fetchall())
    assert n_ho_so == 5
    assert [v for v, in values] == [85.5, 61.0, 70.25]  # Vietnamese decimal commas read by vn_number()
    assert "001090001234" not in dump and "0912345678" not in dump and "Nguyễn Văn An" not in dump
    # inspect showed the mapping of every contract column, and never a value
    inspect_out = "\n".join(out for body, out in outputs if "inspect" in body)
    assert "ngay_hen_tra" in inspect_out and "001090001234" not in inspect_out


def test_guide_app_shows_the_overview_and_explains_the_missing_model(onboarded, monkeypatch):

    home, tenants, _ = onboarded
    monkeypatch.setenv("TONGHOP_HOME", str(home))
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(tenants))
    monkeypatch.setenv("TONGHOP_TENANT", TENANT)
    from tests.security.signin import signed_in

    at = signed_in(str(project_path("apps", "tong_quan.py")), "lanh_dao", TENANT, timeout=60)
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Hồ sơ tiếp nhận"] == "5"
    assert any("ho_so_nguy_co_qua_han" in box.value for box in at.info), [b.value for b in at.info]
