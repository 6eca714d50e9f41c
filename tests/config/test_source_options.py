"""Typed options per source kind: refused when the tenant file is checked, one line naming file, source,
option and what is allowed/expected; docs/sources.md lists every option of every kind."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.config import SourceConfig, load_tenant_file, tenant_files
from pipelines.errors import ConfigError
from pipelines.sources import REGISTRY, options_for
from pipelines.sources.options import SCALAR_TYPES, duckdb_type, options_doc

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "tenants" / "ninh-binh.yaml").read_text(encoding="utf-8"))


def _error(tmp_path: Path, change) -> str:
    data = copy.deepcopy(BASE)
    change({s["name"]: s for s in data["sources"]})
    path = tmp_path / "ninh-binh.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_tenant_file(path)
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"{path}: field 'sources[")
    return message


def test_misspelled_option_lists_the_allowed_names(tmp_path):
    message = _error(tmp_path, lambda s: s["can_bo"]["options"].update(delimeter=";"))
    assert "field 'sources[can_bo].options.delimeter': unknown csv option — allowed: delimiter, encoding, " \
           "header, skip_rows, quote, types, date_format" in message


def test_misspelled_nested_option_lists_the_allowed_names_of_that_level(tmp_path):
    message = _error(tmp_path, lambda s: s["phan_anh_kien_nghi"]["options"]["pagination"].update(tpye="page"))
    assert "'sources[phan_anh_kien_nghi].options.pagination.tpye': unknown api pagination option — allowed: " \
           "type, page_size" in message


@pytest.mark.parametrize(("source", "option", "value", "expected"), [
    ("can_bo", "header", "maybe", "expected true or false, got 'maybe'"),
    ("chi_so_xa_hoi_so", "header_row", "third", "expected a whole number, got 'third'"),
    ("chi_so_xa_hoi_so", "header_join", "lats", "expected one of 'all' or 'last', got 'lats'"),
    ("can_bo", "skip_rows", -1, "expected a number ≥ 0, got -1"),
    ("dang_ky_kinh_doanh", "thousands", ".,", "expected exactly one character, got '.,'"),
    ("diem_phuc_vu_cong", "mode", "dl", "expected one of 'datastore', 'download' or 'catalog', got 'dl'"),
    ("phan_anh_kien_nghi", "retries", "many", "expected a whole number, got 'many'"),
    # HTTP knobs are bounded: a tenant file must not be able to hold a worker for days.
    ("phan_anh_kien_nghi", "rate_limit", 0.000001, "expected 0 (no limit) or 0.01–1000 requests per second, "
                                                   "got 1e-06"),
    ("phan_anh_kien_nghi", "timeout", 1e9, "expected a number ≤ 600, got 1000000000.0"),
    ("phan_anh_kien_nghi", "retries", 1000, "expected a number ≤ 10, got 1000"),
    ("phan_anh_kien_nghi", "backoff", 3600, "expected a number ≤ 60, got 3600"),
    ("can_bo", "types", ["VARCHAR"], "expected a mapping ({key: value}), got a list of 1 item(s)"),
])
def test_wrong_type_names_the_expected_type(tmp_path, source, option, value, expected):
    message = _error(tmp_path, lambda s: s[source]["options"].update({option: value}))
    assert f"field 'sources[{source}].options.{option}': {expected}" in message


def test_bad_duckdb_type_name(tmp_path):
    message = _error(tmp_path, lambda s: s["can_bo"]["options"]["types"].update(so_can_bo="INTEGR"))
    assert "field 'sources[can_bo].options.types.so_can_bo': 'INTEGR' is not a DuckDB type" in message
    assert "use e.g. VARCHAR, INTEGER" in message


def test_unknown_kind_lists_the_kinds(tmp_path):
    message = _error(tmp_path, lambda s: s["can_bo"].update(kind="xlsx"))
    assert "field 'sources[can_bo].kind'" in message and "unknown source kind 'xlsx'" in message
    assert ", ".join(sorted(REGISTRY)) in message


@pytest.mark.parametrize(("location", "hint"), [
    ("sources/chi_so_xa_hoi_so.ods", "convert the file (e.g. save it as .xlsx)"),
    ("sources/chi_so_xa_hoi_so.numbers", "convert the file"),
    ("sources/chi_so_xa_hoi_so.xlsb", "convert the file"),
    ("sources/chi_so_xa_hoi_so.csv", "a .csv file is read by kind: csv"),
])
def test_unsupported_format_lists_the_formats_the_kind_reads(tmp_path, location, hint):
    message = _error(tmp_path, lambda s: s["chi_so_xa_hoi_so"].update(location=location))
    suffix = location.rsplit(".", 1)[1]
    assert (f"field 'sources[chi_so_xa_hoi_so].location': the excel reader cannot read '.{suffix}' files; "
            "it reads .xlsx, .xlsm, .xltx, .xltm, .xls") in message and hint in message


def test_database_source_needs_table_or_query(tmp_path):
    message = _error(tmp_path, lambda s: s["ho_so"]["options"].update(query="SELECT 1"))
    assert "field 'sources[ho_so].options': give exactly one of options 'table' or 'query'" in message


def test_every_problem_of_a_file_is_reported_on_one_line(tmp_path):
    def change(s):
        s["can_bo"]["options"].update(delimeter=";")
        s["chi_so_xa_hoi_so"]["options"].update(stop_at="((")
    message = _error(tmp_path, change)
    assert "options.delimeter" in message and "'((' is not a regular expression" in message


def test_a_secret_looking_value_is_not_echoed(tmp_path):
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlX3ZhbHVl"
    message = _error(tmp_path, lambda s: s["phan_anh_kien_nghi"]["options"].update(timeout=token))
    assert token not in message and "options.timeout': expected a number" in message


@pytest.mark.parametrize("path", tenant_files(ROOT / "tenants"), ids=lambda p: p.stem)
def test_shipped_tenants_validate(path):
    cfg = load_tenant_file(path)
    for source in cfg.sources:  # the options hold the model's defaults: readers never guess them
        assert set(options_for(source.kind).model_fields) >= set(source.options)


def test_options_keep_the_runtime_defaults_and_leave_unset_none_out():
    src = SourceConfig(name="s", kind="api", location="https://x.example/api", primary_key=["a"],
                       options={"pagination": {"type": "page"}, "rate_limit": 5})
    assert src.options["pagination"] == {"type": "page", "page_size": 100, "page_param": "page", "start": 1,
                                         "size_param": "page_size", "offset_param": "offset",
                                         "limit_param": "limit", "cursor_param": "cursor",
                                         "next_cursor_path": "next_cursor", "max_pages": 10_000}
    assert src.options["rate_limit"] == 5 and "auth" not in src.options and "api_key_header" not in src.options


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_option_of_every_kind_is_described(kind):
    model = options_for(kind)
    assert model.model_config.get("extra") == "forbid"
    models = [model, *(a for f in model.model_fields.values() for a in (f.annotation, *getattr(f.annotation,
                                                                                                  "__args__", ()))
                       if isinstance(a, type) and hasattr(a, "model_fields"))]
    for m in models:
        assert m.model_config.get("extra") == "forbid"
        for name, field in m.model_fields.items():
            assert field.description and len(field.description) > 10, f"{kind}: option '{name}' undescribed"


def test_docs_list_every_option_of_every_kind():
    doc = (ROOT / "docs" / "sources.md").read_text(encoding="utf-8")
    assert options_doc() in doc, "docs/sources.md is stale: run `python -m pipelines.sources.options`"
    for kind in REGISTRY:
        section = doc.split(f"### `{kind}`", 1)[1].split("\n### ", 1)[0]
        for name in options_for(kind).model_fields:
            assert f"| `{name}` |" in section, (kind, name)


def test_type_names_match_duckdb():
    """The names accepted without importing duckdb are the ones DuckDB knows (checked against DuckDB here)."""
    known = {r[0].upper() for r in duckdb.sql("SELECT DISTINCT type_name FROM duckdb_types() "
                                              "WHERE database_name = 'system'").fetchall()}
    nested_or_special = {"ARRAY", "LIST", "MAP", "STRUCT", "ROW", "UNION", "ENUM", "NULL", "TUPLE", "TYPE",
                         "VARIANT", "GEOMETRY", "PARQUET_VARIANT"}
    assert known - nested_or_special <= SCALAR_TYPES, sorted(known - nested_or_special - SCALAR_TYPES)
    con = duckdb.connect()
    for name in [*SCALAR_TYPES, "DECIMAL(18,2)", "VARCHAR[]", "DOUBLE[3]", "STRUCT(a INTEGER, b VARCHAR)",
                 "MAP(VARCHAR, DOUBLE)", "VARCHAR(20)", "timestamp with time zone"]:
        assert duckdb_type(name) == name
        con.execute(f"SELECT CAST(NULL AS {name})")  # and DuckDB casts to it
    for bad in ["INTEGR", "DECIMAL(40,2)", "VARCHAR; DROP TABLE x", "DATE(3)", "STRUCT(a)", ""]:
        with pytest.raises(ValueError):
            duckdb_type(bad)


def test_reader_modules_do_not_import_heavy_libraries():
    """Checking a tenant file imports each used kind's module: it must not pull duckdb/pyarrow/polars."""
    code = ("import sys, pipelines.config\n"
            f"for k in {sorted(REGISTRY)!r}: __import__({dict(REGISTRY)!r}[k])\n"
            "print(sorted(m for m in ('duckdb', 'pyarrow', 'polars', 'httpx', 'openpyxl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
