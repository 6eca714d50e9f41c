"""Tenant files are untrusted input: parse them with libyaml's safe loader and hard limits.

- `yaml.CSafeLoader` (libyaml): ~0.8 ms per tenant file where the pure-Python `safe_load` costs ~8 ms;
  only plain data (no Python objects).
- A duplicate key in one mapping is refused with its line (YAML says keys are unique; PyYAML keeps the last
  one silently). Keys brought in by a `<<:` merge are not duplicates: overriding them is what merges are for.
- Size limits: the file's bytes, and the number of nodes once aliases are expanded (an "anchor bomb" of
  nine nested aliases is a few hundred bytes that expand to a billion nodes when validated or printed).
  The expanded count is computed over the composed node graph in linear time, before anything is built.
- Bytes that are not UTF-8 are one line naming the file and the byte offset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipelines.errors import ConfigError

MAX_FILE_BYTES = 1_000_000     # a realistic tenant file is ~10 kB
MAX_EXPANDED_NODES = 100_000   # the demo tenant has ~700 nodes
MAX_ALIASES = 1_000            # alias references (`*name`), merges included

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Limited(yaml.CSafeLoader):
    """libyaml's safe loader refusing duplicate keys, recursive aliases and alias expansion past the limits."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return self.construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _Refused(f"line {line}: duplicate key '{str(key)[:60]}' (first at line {seen[key]})",
                                   "keep one of them")
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.problem, self.fix = problem, fix


def _check_expansion(root: yaml.Node) -> None:
    """Count the nodes the document holds once every alias is expanded (memoised: linear in the graph)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    aliases = 0

    def size(node: yaml.Node) -> int:
        nonlocal aliases
        key = id(node)
        if key in sizes:
            aliases += 1  # a node reached a second time is an alias reference
            if aliases > MAX_ALIASES:
                raise _Refused(f"more than {MAX_ALIASES} alias references (*name)",
                               "write the values out or use fewer anchors")
            return sizes[key]
        if key in on_path:
            raise _Refused(f"line {node.start_mark.line + 1}: an alias refers to the node that contains it",
                           "remove the recursive alias")
        if isinstance(node, yaml.ScalarNode):
            total = 1
        else:
            on_path.add(key)
            children = node.value if isinstance(node, yaml.SequenceNode) else [n for kv in node.value for n in kv]
            total = 1 + sum(size(child) for child in children)
            on_path.discard(key)
        if total > MAX_EXPANDED_NODES:
            raise _Refused(f"more than {MAX_EXPANDED_NODES:,} values once aliases are expanded (an alias bomb?)",
                           "write the values out or use fewer nested anchors")
        sizes[key] = total
        return total

    size(root)


def load_yaml_file(path: Path) -> Any:
    """The YAML document in `path` as plain Python data; any problem is one ConfigError line naming the file."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc.strerror or type(exc).__name__})"
                          " — check that it exists and is readable") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES:,} bytes — a tenant file is a few kB; "
                          "check that this is the right file")
    return load_yaml_bytes(raw, str(path))


def load_yaml_bytes(raw: bytes, name: str) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{name}: not UTF-8 at byte {exc.start} (line {line}, byte 0x{raw[exc.start]:02x})"
                          " — save the file as UTF-8") from None
    if "\x00" in text:
        raise ConfigError(f"{name}: contains a NUL byte at character {text.index(chr(0))} — save the file as "
                          "UTF-8 text") from None
    loader = _Limited(text)
    try:
        return loader.get_single_data()
    except _Refused as exc:
        raise ConfigError(f"{name}: {exc.problem} — {exc.fix}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{name}{where}: not valid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{name}: nested too deeply — flatten the structure") from None
    finally:
        loader.dispose()
