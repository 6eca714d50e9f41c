"""The second demo tenant: Bộ Khoa học và Công nghệ (Ministry of Science and Technology), nothing like the province.

Since 1 March 2025 the ministry also holds what the Ministry of Information and Communications did
(telecoms, radio frequencies, postal services). Its systems, as `tonghop demo --tenant bo-khoa-hoc-cong-nghe`
generates them from one seed:

- `dossiers`: the ministry's own online-service system (Cổng dịch vụ công của Bộ) — a REST API with English
  camelCase fields, dates as `dd/mm/yyyy` text and epoch milliseconds, integer status codes, applicants
  mostly businesses (tax code, no CCCD), cursor pagination and an API-key header. Served by the demo
  server (`pipelines.demo.servers`) at `ministry_api.APPLICATIONS_PATH`; no file is written.
- `reports`: one workbook per province from the 34 provincial departments of science and technology
  (`bao_cao_tinh/*.xlsx`): Vietnamese merged headers, counts typed as text with thousands dots
  (`12.345`), decimal commas (`98,7`), `dd/mm/yyyy` dates as text and a totals row.
- `frequencies`: radio-frequency licences by province, a tab-separated UTF-16 export of the frequency
  authority's licensing software (upper-case ASCII headers) — data no shared contract covers, modelled by the
  tenant's own SQL (`tenants/bo-khoa-hoc-cong-nghe/warehouse/`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

TENANT_ID = "bo-khoa-hoc-cong-nghe"
AS_OF = date(2025, 11, 1)  # the same "today" as the demo province


def n_dossiers(rows: int) -> int:
    """How many ministry dossiers the API serves for the demo's `--rows` (the province's dossier count)."""
    return max(300, rows // 2)


def generate_ministry(out_dir: Path, *, rows: int = 20_000, seed: int = 37, as_of: date = AS_OF) -> dict[str, Path]:
    """Write the ministry's files (34 report workbooks, the frequency-licence export) into `out_dir`.

    Same arguments give byte-identical files. The dossiers are not a file: the demo server answers them
    from the same `rows` and `seed` (`ministry_api.applications`).
    """
    from pipelines.demo.ministry.frequencies import write_licences
    from pipelines.demo.ministry.reports import write_reports

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = write_reports(out_dir, np.random.default_rng([seed, 101]), as_of)
    licences = write_licences(out_dir, max(400, rows // 4), np.random.default_rng([seed, 102]), as_of)
    return {"bao_cao_tinh": reports, "giay_phep_tan_so": licences}


__all__ = ["AS_OF", "TENANT_ID", "generate_ministry", "n_dossiers"]
