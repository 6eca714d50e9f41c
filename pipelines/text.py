"""Vietnamese text helpers shared by readers and normalisers."""

from __future__ import annotations

import re
import unicodedata


def strip_diacritics(text: str) -> str:
    """'Tỷ lệ Đạt' -> 'Ty le Dat' (đ/Đ are letters of their own, not accents, so map them by hand)."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def slugify(text: str) -> str:
    """A column name from a Vietnamese header: 'Tên xã, phường' -> 'ten_xa_phuong'."""
    slug = re.sub(r"[^a-z0-9]+", "_", strip_diacritics(str(text)).lower()).strip("_")
    if not slug:
        return "col"
    return f"c_{slug}" if slug[0].isdigit() else slug
