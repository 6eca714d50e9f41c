"""Data quality: Great Expectations suites validated inside DuckDB (see ``suites`` and ``gx_duckdb``).

Importing this package is cheap: Great Expectations is imported on first use.
"""

from pipelines.quality.suites import (
    ExpectationOutcome,
    SuiteOutcome,
    build_data_docs,
    validate_query,
)

__all__ = ["ExpectationOutcome", "SuiteOutcome", "build_data_docs", "validate_query"]
