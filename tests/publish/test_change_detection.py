"""Change detection: unchanged content keeps version, modified date and files byte for byte; a changed row
gives that dataset alone a new version and new checksums."""

from __future__ import annotations

import json

import duckdb

from tests.publish.conftest import open_folder, publish


def _files(folder):
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in folder.rglob("*") if p.is_file() and p.name not in ("publish_report.json", ".lock", "progress.json")}


def _report(folder):
    return {d["id"]: d for d in json.loads((folder / "publish_report.json").read_text())["datasets"]}


def test_second_publish_changes_nothing(province):
    first = publish(province)
    folder = open_folder(province)
    before, report1 = _files(folder), _report(folder)
    second = publish(province)
    assert second.written == [] and sorted(second.unchanged) == sorted(first.written)
    assert _files(folder) == before  # same bytes and same mtimes: not rewritten
    report2 = _report(folder)
    for ds_id in first.written:
        assert report2[ds_id]["status"] == "unchanged"
        for key in ("version", "modified", "issued", "distributions"):
            assert report2[ds_id][key] == report1[ds_id][key]
    # the scheduled task stops early
    skipped = publish(province, only_if_changed=True)
    assert skipped.status == "skipped" and "nothing open changed" in skipped.message
    assert _files(folder) == before


def test_a_changed_row_gives_that_dataset_alone_a_new_version(province):
    publish(province)
    folder = open_folder(province)
    report1, before = _report(folder), _files(folder)
    with duckdb.connect(str(folder.parent / "serving.duckdb")) as con:
        con.execute("UPDATE marts.xa_hoi_so_tinh SET ty_le_pct_binh_quan = ty_le_pct_binh_quan + 1 "
                    "WHERE rowid = (SELECT min(rowid) FROM marts.xa_hoi_so_tinh)")
    result = publish(province, only_if_changed=True)  # a changed dataset: the task does not skip
    assert result.status == "ok" and result.written == ["xa_hoi_so_toan_tinh"]
    report2, after = _report(folder), _files(folder)
    changed = report2["xa_hoi_so_toan_tinh"]
    assert changed["status"] == "published" and changed["version"] == "1.1.0"
    assert changed["modified"] >= report1["xa_hoi_so_toan_tinh"]["modified"]
    assert changed["issued"] == report1["xa_hoi_so_toan_tinh"]["issued"]
    old_sums = {d["format"]: d["sha256"] for d in report1["xa_hoi_so_toan_tinh"]["distributions"]}
    new_sums = {d["format"]: d["sha256"] for d in changed["distributions"]}
    assert all(old_sums[f] != new_sums[f] for f in ("csv", "parquet", "json"))
    for ds_id, d in report2.items():
        if ds_id != "xa_hoi_so_toan_tinh" and d["status"] != "refused":
            assert d["status"] == "unchanged" and d["version"] == "1.0.0"
            assert d["distributions"] == report1[ds_id]["distributions"]
    touched = {k for k in after if after[k] != before.get(k)}
    assert {k.split("/")[0] for k in touched} <= {"xa_hoi_so_toan_tinh", "catalog.ttl", "catalog.jsonld",
                                                   "state.json"}
    assert "xa_hoi_so_toan_tinh/xa_hoi_so_toan_tinh.parquet" in touched
    # the catalogue carries the new version and checksum
    ttl = (folder / "catalog.ttl").read_text(encoding="utf-8")
    assert '"1.1.0"' in ttl and new_sums["csv"] in ttl and old_sums["csv"] not in ttl


def test_a_damaged_file_is_rewritten_with_the_same_version(province):
    publish(province)
    folder = open_folder(province)
    target = folder / "ho_so_theo_tuan" / "ho_so_theo_tuan.json"
    good = target.read_bytes()
    target.write_bytes(good[:100])
    result = publish(province)
    assert result.written == ["ho_so_theo_tuan"]
    assert target.read_bytes() == good
    assert _report(folder)["ho_so_theo_tuan"]["version"] == "1.0.0"


def test_a_dataset_taken_out_of_the_plan_is_withdrawn(province):
    publish(province)
    folder = open_folder(province)
    assert (folder / "xa_hoi_so_toan_tinh").is_dir()
    plan = province.open_data
    smaller = province.model_copy(update={"open_data": plan.model_copy(update={
        "datasets": [d for d in plan.datasets if d.id != "xa_hoi_so_toan_tinh"]})})
    publish(smaller)
    assert not (folder / "xa_hoi_so_toan_tinh").exists()
    assert "xa_hoi_so_toan_tinh" not in (folder / "catalog.ttl").read_text(encoding="utf-8")
