"""Lakehouse mode: a tenant's published tables in Apache Iceberg (pyiceberg, SQL catalogue in PostgreSQL).

Selected per tenant (`storage: {kind: lakehouse, …}`, pipelines/lakehouse/options.py). The pipeline is the
same: DuckDB builds the warehouse and `publish_snapshot` writes `serving.duckdb`; the publish step then
commits those tables to the tenant's Iceberg namespace (writer.py) and readers — apps, the national data map,
cross-tenant SQL — read a pinned publish through Arrow (reader.py). docs/lakehouse.md says why Iceberg and
how it measured against Delta Lake.
"""

from pipelines.lakehouse.catalog import LakehouseError, namespace, open_catalog
from pipelines.lakehouse.reader import open_tenant, open_tenants, pin, query
from pipelines.lakehouse.writer import PublishResult, publish_tenant

__all__ = ["LakehouseError", "PublishResult", "namespace", "open_catalog", "open_tenant", "open_tenants", "pin",
           "publish_tenant", "query"]
