"""A day's change in the demo's one-stop-shop database: new dossiers and late updates of old ones.

Used by `benchmarks/bench_incremental.py` and `tests/warehouse/test_incremental.py` to give the pipeline a
batch that is appended *and* rewrites history: the source is read incrementally on `ngay_cap_nhat`, so the
next run's batch holds exactly the rows changed here. Deterministic (rows chosen by rowid).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path


def add_dossier_changes(db: Path, *, n_new: int, n_late: int, when: datetime, tag: str = "n1") -> dict[str, int]:
    """Insert `n_new` dossiers received on `when`'s day (half already returned) and update `n_late` old ones.

    The late updates spread over the whole history: a pending dossier is returned, a returned one has its
    return date corrected (moving it to another week or quarter), and every third one moves to another
    agency — so old rows leave their old groups. Every changed row gets `ngay_cap_nhat` after `when`.
    """
    con = sqlite3.connect(str(db))
    try:
        (n_rows,) = con.execute("SELECT count(*) FROM ho_so").fetchone()
        day = when.date().isoformat()
        stamp = when.strftime("%Y-%m-%d %H:%M:%S")
        step_new = max(1, n_rows // max(n_new, 1))
        con.execute(f"""
            INSERT INTO ho_so
            SELECT ma_ho_so || '-{tag}', ma_thu_tuc, linh_vuc, co_quan, ma_xa, ?, date(?, '+3 day'),
                   CASE WHEN rowid % 2 = 0 THEN ? END, CASE WHEN rowid % 2 = 0 THEN 'da_tra' ELSE 'dang_xu_ly' END,
                   so_cccd, so_dien_thoai, ho_ten, datetime(?, '+' || (rowid % 3600) || ' seconds')
            FROM ho_so WHERE rowid % ? = 0 AND ma_ho_so NOT LIKE '%-n%' LIMIT ?""",
                    [day, day, day, stamp, step_new, n_new])
        step_late = max(1, n_rows // max(n_late, 1))
        agencies = [a for (a,) in con.execute("SELECT DISTINCT co_quan FROM ho_so ORDER BY 1 LIMIT 5")]
        later = (when + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
        con.execute(f"""
            UPDATE ho_so SET
                ngay_tra = date(ngay_nhan, '+' || (rowid % 40) || ' day'),
                trang_thai = 'da_tra',
                co_quan = CASE WHEN rowid % 3 = 0 THEN ? ELSE co_quan END,
                ngay_cap_nhat = datetime(?, '+' || (rowid % 3600) || ' seconds')
            WHERE rowid IN (SELECT rowid FROM ho_so WHERE (rowid + 7) % ? = 0 AND ma_ho_so NOT LIKE '%-{tag}'
                            LIMIT ?)""", [agencies[-1] if agencies else None, later, step_late, n_late])
        con.commit()
        (n_after,) = con.execute("SELECT count(*) FROM ho_so").fetchone()
        return {"n_new": n_after - n_rows, "n_late": min(n_late, n_rows // step_late)}
    finally:
        con.close()
