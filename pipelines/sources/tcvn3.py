"""The TCVN3 (ABC, TCVN 5712:1993 VN3) byte table: legacy `.VnTime` font text → Unicode.

Data, not logic: one entry per byte the standard assigns to a Vietnamese letter. TCVN3 has the
lowercase letters with tones and the seven uppercase base letters; capitals with tones were typed with
the same bytes in an uppercase font (`.VnTimeH`), which a text file does not record, so they come back
lowercase. Every other byte is read as Latin-1, which is how these files show in modern software (the
well-known "Hµ Néi" for "Hà Nội").
"""

from __future__ import annotations

LETTERS = {
    0xA1: "Ă", 0xA2: "Â", 0xA3: "Ê", 0xA4: "Ô", 0xA5: "Ơ", 0xA6: "Ư", 0xA7: "Đ",
    0xA8: "ă", 0xA9: "â", 0xAA: "ê", 0xAB: "ô", 0xAC: "ơ", 0xAD: "ư", 0xAE: "đ",
    0xB5: "à", 0xB6: "ả", 0xB7: "ã", 0xB8: "á", 0xB9: "ạ",
    0xBB: "ằ", 0xBC: "ẳ", 0xBD: "ẵ", 0xBE: "ắ", 0xC6: "ặ",
    0xC7: "ầ", 0xC8: "ẩ", 0xC9: "ẫ", 0xCA: "ấ", 0xCB: "ậ",
    0xCC: "è", 0xCE: "ẻ", 0xCF: "ẽ", 0xD0: "é", 0xD1: "ẹ",
    0xD2: "ề", 0xD3: "ể", 0xD4: "ễ", 0xD5: "ế", 0xD6: "ệ",
    0xD7: "ì", 0xD8: "ỉ", 0xDC: "ĩ", 0xDD: "í", 0xDE: "ị",
    0xDF: "ò", 0xE1: "ỏ", 0xE2: "õ", 0xE3: "ó", 0xE4: "ọ",
    0xE5: "ồ", 0xE6: "ổ", 0xE7: "ỗ", 0xE8: "ố", 0xE9: "ộ",
    0xEA: "ờ", 0xEB: "ở", 0xEC: "ỡ", 0xED: "ớ", 0xEE: "ợ",
    0xEF: "ù", 0xF1: "ủ", 0xF2: "ũ", 0xF3: "ú", 0xF4: "ụ",
    0xF5: "ừ", 0xF6: "ử", 0xF7: "ữ", 0xF8: "ứ", 0xF9: "ự",
    0xFA: "ỳ", 0xFB: "ỷ", 0xFC: "ỹ", 0xFD: "ý", 0xFE: "ỵ",
}

# A 256-character decoding table for `codecs.charmap_decode` (C speed, no Python loop per byte).
DECODING_TABLE = "".join(LETTERS.get(b, chr(b)) for b in range(256))
ENCODING_TABLE = {ord(ch): b for b, ch in LETTERS.items()}


def decode(data: bytes) -> str:
    import codecs

    return codecs.charmap_decode(data, "strict", DECODING_TABLE)[0]


def encode(text: str) -> bytes:
    """Unicode (NFC) → TCVN3 bytes; for tests and for writing legacy files. Unmappable text raises."""
    out = bytearray()
    for ch in text:
        code = ENCODING_TABLE.get(ord(ch))
        if code is None:
            if ord(ch) > 0xFF or ord(ch) in LETTERS:
                raise ValueError(f"{ch!r} has no TCVN3 byte")
            code = ord(ch)
        out.append(code)
    return bytes(out)
