"""Vietnamese number and date formats: 1.234.567,5 and dd/mm/yyyy (English: 1,234,567.5 and yyyy-mm-dd)."""

from __future__ import annotations

from datetime import date, datetime


def number(value: float | int | None, decimals: int = 0, lang: str = "vi") -> str:
    if value is None:
        return "—"
    text = f"{value:,.{decimals}f}"
    if lang == "vi":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text


def percent(value: float | None, decimals: int = 1, lang: str = "vi") -> str:
    return "—" if value is None else f"{number(value * 100, decimals, lang)} %"


def day(value: date | datetime | None, lang: str = "vi") -> str:
    if value is None:
        return "—"
    return value.strftime("%d/%m/%Y") if lang == "vi" else value.strftime("%Y-%m-%d")
