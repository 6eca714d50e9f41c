"""Every malformed input of the corpus through the real loader and validate step, as `manifest.yml` says.

Checks per case: the outcome (a TonghopError naming the source and containing the manifest's text, or the
run succeeding with exactly the expected good and quarantined rows, the reason naming the column); no other
exception type escapes (a traceback is a failure); where the run fails the warehouse and snapshot are
unchanged; where it succeeds rows read = promoted + quarantined.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.config import SourceConfig
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.badinputs.corpus import BUILDERS
from tests.conftest import file_digest, warehouse_state
from tests.fixtures.tenants import tenant_of

MANIFEST = yaml.safe_load((Path(__file__).with_name("manifest.yml")).read_text(encoding="utf-8"))["cases"]


def test_manifest_covers_the_corpus():
    assert sorted(c["id"] for c in MANIFEST) == sorted(BUILDERS)
    assert len(MANIFEST) >= 40


def _state(path: Path) -> dict:
    # Run records (meta.step_runs, runs) say the run failed: they are meant to change.
    # An empty table created by the first run's schema set-up holds nothing: it is not a change of data.
    return {t: v for t, v in warehouse_state(path).items() if "run" not in t.split(".")[1] and v[0]}


@pytest.mark.parametrize("case", MANIFEST, ids=[c["id"] for c in MANIFEST])
def test_bad_input(case, http_server):
    paths = TenantPaths.for_tenant("test").ensure()
    paths.sources.mkdir(parents=True, exist_ok=True)
    expect = case["expect"]
    for phase in range(int(case.get("phases", 1))):
        cfg = BUILDERS[case["id"]](paths.root, server=http_server, phase=phase)
        tenant = tenant_of(SourceConfig(**cfg))
        before, snap = _state(paths.warehouse), file_digest(paths.snapshot)
        report = run(tenant, steps=["extract_load", "validate"], run_id=f"run{phase}")
        if phase < int(case.get("phases", 1)) - 1:
            assert report.error is None, report.error
    if expect["outcome"] == "error":
        assert report.error is not None, f"{case['id']}: the run succeeded, the manifest expects an error"
        assert "source 'src'" in report.error and expect["message"] in report.error, report.error
        assert "Traceback" not in report.error
        assert _state(paths.warehouse) == before and file_digest(paths.snapshot) == snap
        return
    assert report.error is None, report.error
    import duckdb

    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        n_read, n_loaded, n_rejected, n_promoted, n_quarantined = con.execute(
            "SELECT n_rows_read, n_rows_loaded, n_rows_rejected, n_rows_promoted, n_rows_quarantined "
            "FROM meta.loads WHERE run_id = ?", [f"run{int(case.get('phases', 1)) - 1}"]).fetchone()
        assert (n_loaded, n_rejected) == (expect["good"], expect.get("quarantined", 0)), case["id"]
        assert n_read == n_promoted + n_quarantined == n_loaded + n_rejected
        if expect.get("reason"):
            reasons = [r[0] for r in con.execute('SELECT _reason FROM raw."_rejected_src"').fetchall()]
            assert reasons and all(expect["reason"] in r for r in reasons), reasons
        for column, value in (expect.get("values") or {}).items():
            got = [r[0] for r in con.execute(f'SELECT "{column}" FROM raw.src').fetchall()]
            assert value in got, got
    finally:
        con.close()
