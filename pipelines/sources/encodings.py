"""Text encodings of agency exports: check the declared one, transcode legacy ones to UTF-8 NFC.

DuckDB reads UTF-8, UTF-16 and Latin-1 itself. Windows-1258 and TCVN3 are transcoded here, streaming in
chunks into a temp file (memory stays flat whatever the file size). Windows-1258 writes tones as
combining marks after the letter, so the text is normalised to NFC (one code point per letter, as the
rest of the warehouse expects); a chunk never ends between a letter and its marks.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path

from pipelines.errors import SourceError
from pipelines.sources import tcvn3

NATIVE = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16", "utf16": "utf-16",
          "utf-16le": "utf-16", "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1"}
LEGACY = {"windows-1258": "cp1258", "cp1258": "cp1258", "tcvn3": "tcvn3", "abc": "tcvn3"}
SAMPLE_BYTES = 1 << 20
CHUNK_BYTES = 8 << 20
_FIX = "set 'options.encoding' to the file's encoding (utf-8, utf-16, windows-1258 or tcvn3)"
# UTF-8 Vietnamese read as a single-byte code page: "Nguyá»…n", "Ä‘", "Æ°", "Ã¡".
_MOJIBAKE_UTF8 = re.compile("á[º»]|Ä[\u2018\u0091]|Æ[°¯]|Ã[¡-¿]")
# TCVN3 bytes read as Latin-1/Windows-1258: "Hµ Néi", "V¨n", "Tr­êng" — symbols glued to letters.
_MOJIBAKE_TCVN3 = re.compile(r"[A-Za-z][µ¶·¸¹¨©®ª«¬\xad»¼½¾]|[µ¶·¸¹¨©®ª«¬»¼½¾][a-z]")


def check(source: str, path: Path, encoding: str | None) -> str:
    """The encoding to read `path` with (a NATIVE or LEGACY key's value), or a SourceError saying what to set."""
    declared = (encoding or "utf-8").lower()
    if declared not in NATIVE and declared not in LEGACY:
        raise SourceError(source, str(path), f"unknown encoding '{encoding}'", _FIX)
    with path.open("rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
    utf16_bom = sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if NATIVE.get(declared) == "utf-16" or (encoding is None and utf16_bom):
        if not utf16_bom and b"\x00" not in sample[:4096]:
            raise SourceError(source, str(path), "declared UTF-16 but the file has no UTF-16 byte-order mark "
                              "and no UTF-16 text", _FIX)
        return "utf-16"
    if utf16_bom:
        raise SourceError(source, str(path), f"the file is UTF-16 (byte-order mark) but '{declared}' is declared",
                          "set 'options.encoding: utf-16' (or remove the option)")
    odd, even = sample[1::2].count(0), sample[0::2].count(0)
    if max(odd, even) > len(sample) // 8 and min(odd, even) < len(sample) // 80:
        # ASCII letters with a NUL byte after (or before) each: UTF-16 that lost its byte-order mark.
        order = "little-endian" if odd > even else "big-endian"
        raise SourceError(source, str(path), f"the file looks like UTF-16 ({order}) without a byte-order mark",
                          "ask the agency to export UTF-8 (or UTF-16 with its byte-order mark), or convert the file")
    is_utf8, bad_at = _utf8(sample)
    ascii_only = sample.isascii()
    if declared in LEGACY:
        if is_utf8 and not ascii_only:
            raise SourceError(source, str(path), f"the file is UTF-8 but '{declared}' is declared",
                              "remove 'options.encoding' (UTF-8 is the default)")
        text = decode_legacy(sample, LEGACY[declared])
        if LEGACY[declared] == "cp1258" and len(_MOJIBAKE_TCVN3.findall(text)) >= 3:
            raise SourceError(source, str(path), "declared windows-1258 but the text reads like TCVN3 "
                              f"(e.g. {_MOJIBAKE_TCVN3.search(text).group()!r})", "set 'options.encoding: tcvn3'")
        return LEGACY[declared]
    if NATIVE[declared] == "latin-1":
        return "latin-1"
    if not is_utf8:
        guess = "windows-1258" if _looks_cp1258(sample) else "tcvn3"
        raise SourceError(source, str(path), f"not valid UTF-8 (byte 0x{sample[bad_at]:02X} at offset {bad_at}); "
                          f"it looks like {guess}", f"set 'options.encoding: {guess}' ({_FIX})")
    found = _MOJIBAKE_UTF8.search(sample.decode("utf-8", errors="ignore"))
    if found:
        raise SourceError(source, str(path), f"the text is garbled (e.g. {found.group()!r}): it was converted "
                          "to UTF-8 twice, or from the wrong code page", "ask the agency for the original export, "
                          f"or {_FIX}")
    return "utf-8"


def _utf8(sample: bytes) -> tuple[bool, int]:
    try:
        sample.decode("utf-8")
        return True, -1
    except UnicodeDecodeError as exc:
        # A sample cut in the middle of a character is fine; a bad byte before the end is not.
        if exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return True, -1
        return False, exc.start


def _looks_cp1258(sample: bytes) -> bool:
    """Windows-1258 puts tone marks (0xCC 0xD2 0xDE 0xEC 0xF2) right after vowels; TCVN3 has no such pairs."""
    return len(re.findall(rb"[aeiouyAEIOUY\xe2\xea\xf4\xe3\xf5\xfd][\xcc\xd2\xde\xec\xf2]", sample)) >= 2


def decode_legacy(data: bytes, codec: str) -> str:
    if codec == "tcvn3":
        return tcvn3.decode(data)
    return data.decode(codec)


def transcode(src: Path, dst: Path, codec: str) -> None:
    """Stream `src` (cp1258 or tcvn3) into `dst` as UTF-8 NFC, chunk by chunk."""
    decoder = codecs.getincrementaldecoder(codec)() if codec != "tcvn3" else None
    carry = ""
    with src.open("rb") as fin, dst.open("w", encoding="utf-8", newline="") as fout:
        while True:
            chunk = fin.read(CHUNK_BYTES)
            last = not chunk
            text = carry + (tcvn3.decode(chunk) if decoder is None else decoder.decode(chunk, final=last))
            if last:
                fout.write(unicodedata.normalize("NFC", text))
                return
            # Keep the last letter and any marks after it for the next chunk: its marks may follow there.
            cut = len(text)
            while cut > 0 and unicodedata.combining(text[cut - 1]):
                cut -= 1
            cut = max(cut - 1, 0)
            fout.write(unicodedata.normalize("NFC", text[:cut]))
            carry = text[cut:]
