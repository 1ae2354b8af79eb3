"""Fast readers of block-style YAML, each falling back to ruamel.yaml by returning None.

:func:`fast_load` reads the block layout PyYAML writes (conda-lock.yml, ours and
conda-lock's) 10-20x faster than ruamel's pure-Python loader.
:func:`fast_load_lines` reads environment.yml and virtual-packages.yml as
ruamel's round-trip loader reads them, with line numbers. Each gives exactly
what ruamel would, or None for anything outside the layout it knows, and then
the caller parses with ruamel. The writer of that layout is
:func:`conda_torch_plugin.condalock._yaml_writer.emit_yaml`.

Both stop (return None) past a number of nodes or a nesting depth, so the
caller's fallback, which checks those limits with a clear error
(:func:`conda_torch_plugin.inputs.check_yaml`), says what is wrong.

Neither PyYAML nor ruamel.yaml is imported.
"""

from __future__ import annotations

import re
from typing import Any

from conda_torch_plugin.inputs import ENVIRONMENT_FILE, LOCK_FILE, MAX_DEPTH


class _NotFast(Exception):
    """Raised inside a reader for anything outside its layout: the reader returns None."""


class _Budget:
    """Nodes and nesting a reader may still take; past either, the reader gives up."""

    def __init__(self, max_nodes: int, max_depth: int) -> None:
        self.nodes_left = max_nodes
        self.max_depth = max_depth

    def take(self, count: int = 1) -> None:
        self.nodes_left -= count
        if self.nodes_left < 0:
            raise _NotFast

    def enter(self, depth: int) -> int:
        if depth >= self.max_depth:
            raise _NotFast
        self.take()
        return depth + 1


def _is_item(content: str) -> bool:
    return content == "-" or content.startswith("- ")


# A reader for the block layout PyYAML writes (ours and conda-lock's lock files),
# 10-20x faster than ruamel's pure-Python loader. It gives exactly what ruamel's
# base loader gives (every scalar a string) or None, and then the caller falls
# back to ruamel: on anything outside that layout (flow collections other than
# {} and [], scalars over several lines, anchors, tags, comments after values).
_KEY = re.compile(
    r"""(?P<key>[^\s'"#&*!|>%@`{}\[\],?:-][^:]*?|-[^\s:][^:]*?|'(?:[^']|'')*'|"(?:[^"\\]|\\.)*")"""
    r"""[ ]*:(?:[ ]+(?P<value>.*))?$"""
)
_DOUBLE_ESCAPES = {
    "0": "\0",
    "a": "\x07",
    "b": "\x08",
    "t": "\x09",
    "\t": "\x09",
    "n": "\x0a",
    "v": "\x0b",
    "f": "\x0c",
    "r": "\x0d",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def fast_load(
    text: str, *, max_nodes: int = LOCK_FILE.max_nodes, max_depth: int = MAX_DEPTH
) -> Any:
    """What ruamel's base loader reads from ``text``; None for anything outside the block layout
    or past ``max_nodes`` nodes or ``max_depth`` levels of nesting."""
    lines: list[tuple[int, str]] = []
    for raw in text.split("\n"):
        line = raw.rstrip(" \r")
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        if "\t" in line or line.startswith(("---", "...", "%")):
            return None
        lines.append((len(line) - len(stripped), stripped))
    if not lines or lines[0][0] != 0:
        return None
    try:
        value, end = _fast_node(lines, 0, _Budget(max_nodes, max_depth), 0)
    except _NotFast:
        return None
    return value if end == len(lines) else None


def _fast_node(
    lines: list[tuple[int, str]], i: int, budget: _Budget, depth: int
) -> tuple[Any, int]:
    indent, content = lines[i]
    depth = budget.enter(depth)
    if _is_item(content):
        return _fast_sequence(lines, i, indent, budget, depth)
    return _fast_mapping(lines, i, indent, budget, depth)


def _fast_mapping(
    lines: list[tuple[int, str]], i: int, indent: int, budget: _Budget, depth: int
) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent and not _is_item(lines[i][1]):
        m = _KEY.match(lines[i][1])
        if m is None:
            raise _NotFast
        key = _fast_scalar(m.group("key"))
        if key in result:
            raise _NotFast  # ruamel says where
        budget.take()
        rest = m.group("value")
        i += 1
        if rest is None:
            if i < len(lines) and (
                lines[i][0] > indent or (lines[i][0] == indent and _is_item(lines[i][1]))
            ):
                result[key], i = _fast_node(lines, i, budget, depth)
            else:
                budget.take()
                result[key] = ""
        else:
            budget.take()
            result[key] = _fast_value(rest)
            if i < len(lines) and lines[i][0] > indent:
                raise _NotFast  # a scalar continued on the next line
    return result, i


def _fast_sequence(
    lines: list[tuple[int, str]], i: int, indent: int, budget: _Budget, depth: int
) -> tuple[list[Any], int]:
    result: list[Any] = []
    while i < len(lines) and lines[i][0] == indent and _is_item(lines[i][1]):
        rest = lines[i][1][1:]
        body = rest.lstrip(" ")
        if not body:
            i += 1
            if i < len(lines) and lines[i][0] > indent:
                item, i = _fast_node(lines, i, budget, depth)
            else:
                budget.take()
                item = ""
        elif _KEY.match(body) or _is_item(body):
            # "- key: value": a mapping (or sequence) starting on the item's line
            lines[i] = (indent + 1 + len(rest) - len(body), body)
            item, i = _fast_node(lines, i, budget, depth)
        else:
            budget.take()
            item = _fast_value(body)
            i += 1
            if i < len(lines) and lines[i][0] > indent:
                raise _NotFast
        result.append(item)
    return result, i


def _fast_value(text: str) -> Any:
    if text == "{}":
        return {}
    if text == "[]":
        return []
    return _fast_scalar(text)


def _fast_scalar(text: str) -> str:
    first = text[0]
    if first == "'":
        if len(text) < 2 or text[-1] != "'" or "'" in text[1:-1].replace("''", ""):
            raise _NotFast
        return text[1:-1].replace("''", "'")
    if first == '"':
        return _fast_double_quoted(text)
    if (
        first in "&*!|>%@`{}[],#?"
        or " #" in text
        or ": " in text
        or text.endswith(":")
        or text == "-"
        or text.startswith("- ")
        or text == "<<"
    ):
        raise _NotFast
    return text


def _fast_double_quoted(text: str) -> str:
    if len(text) < 2 or text[-1] != '"':
        raise _NotFast
    out: list[str] = []
    body = text[1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == '"':
            raise _NotFast
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(body):
            raise _NotFast
        code = body[i + 1]
        if code in _DOUBLE_ESCAPES:
            out.append(_DOUBLE_ESCAPES[code])
            i += 2
        elif code in _HEX_ESCAPES:
            width = _HEX_ESCAPES[code]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise _NotFast
            out.append(chr(int(digits, 16)))
            i += 2 + width
        else:
            raise _NotFast
    return "".join(out)


# A reader for environment.yml and virtual-packages.yml as `conda torch-env write`
# and most people lay them out: block mappings and sequences of strings, with
# comments. It gives what ruamel's round-trip loader gives, with the line of every
# key and item (``.lc.key(k)[0]``, ``.lc.item(i)[0]``: what envspec reads of
# CommentedMap/CommentedSeq), or None for anything it is not sure of, and then the
# caller parses with ruamel; the common case skips ruamel's import and parse
# (about 10 ms). A scalar is taken only where ruamel reads a string for certain:
# never one that could be a number, bool, null or date, nor a flow collection,
# anchor, tag, escape, block or multi-line scalar, empty item, tab or non-ASCII.
_RT_KEY_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]{0,127}):(?:[ ]+(.*))?\Z")
_RT_NOT_STR = re.compile(
    r"(?:y|Y|n|N|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|true|True|TRUE|false|False|FALSE"
    r"|null|Null|NULL)\Z"
)
_RT_UNSAFE_FIRST = frozenset("-?:,[]{}#&*!|>'\"%@`+.~<=0123456789")


class _Lines:
    """The part of ruamel's ``.lc`` we read: (line, column) of each key or item."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[int, int]] = {}
        self.items: list[tuple[int, int]] = []

    def key(self, key: str) -> tuple[int, int]:
        return self.keys[key]

    def item(self, index: int) -> tuple[int, int]:
        return self.items[index]


class _LineMapping(dict[str, Any]):
    """A mapping read by :func:`fast_load_lines`, with the line of each key in ``lc``."""

    def __init__(self) -> None:
        super().__init__()
        self.lc = _Lines()


class _LineSequence(list[Any]):
    """A sequence read by :func:`fast_load_lines`, with the line of each item in ``lc``."""

    def __init__(self) -> None:
        super().__init__()
        self.lc = _Lines()


# (line number, indent, content without its comment)
_Line = tuple[int, int, str]


def fast_load_lines(
    text: str, *, max_nodes: int = ENVIRONMENT_FILE.max_nodes, max_depth: int = MAX_DEPTH
) -> Any:
    """What ruamel's round-trip loader reads from ``text``, or None where unsure or past
    ``max_nodes`` nodes or ``max_depth`` levels of nesting."""
    lines: list[_Line] = []
    for number, raw in enumerate(text.split("\n")):
        if not (raw.isascii() and raw.isprintable()):  # tabs, CR, form feeds ...
            return None
        content = raw.strip(" ")
        if not content or content.startswith("#"):
            continue
        if raw.startswith(("---", "...", "%")):
            return None
        comment = content.find(" #")
        if comment >= 0:
            content = content[:comment].rstrip(" ")
        lines.append((number, len(raw) - len(raw.lstrip(" ")), content))
    if not lines or lines[0][1] != 0:
        return None
    try:
        value, end = _rt_node(lines, 0, _Budget(max_nodes, max_depth), 0)
    except _NotFast:
        return None
    return value if end == len(lines) else None


def _rt_node(lines: list[_Line], i: int, budget: _Budget, depth: int) -> tuple[Any, int]:
    if _is_item(lines[i][2]):
        return _rt_sequence(lines, i, lines[i][1], budget, budget.enter(depth))
    return _rt_mapping(lines, i, lines[i][1], budget, budget.enter(depth))


def _rt_mapping(
    lines: list[_Line], i: int, indent: int, budget: _Budget, depth: int
) -> tuple[_LineMapping, int]:
    result = _LineMapping()
    while i < len(lines) and lines[i][1] == indent and not _is_item(lines[i][2]):
        number, _, content = lines[i]
        m = _RT_KEY_LINE.match(content)
        if m is None or _RT_NOT_STR.match(m[1]) or m[1] in result:
            raise _NotFast  # a duplicate key: ruamel says where
        key, rest = m[1], m[2]
        result.lc.keys[key] = (number, indent)
        budget.take()
        i += 1
        if rest is None:
            if i < len(lines) and (
                lines[i][1] > indent or (lines[i][1] == indent and _is_item(lines[i][2]))
            ):
                result[key], i = _rt_node(lines, i, budget, depth)
            else:
                budget.take()
                result[key] = None
        else:
            budget.take()
            result[key] = _rt_scalar(rest)
            if i < len(lines) and lines[i][1] > indent:
                raise _NotFast  # a scalar continued on the next line
    return result, i


def _rt_sequence(
    lines: list[_Line], i: int, indent: int, budget: _Budget, depth: int
) -> tuple[_LineSequence, int]:
    result = _LineSequence()
    while i < len(lines) and lines[i][1] == indent and _is_item(lines[i][2]):
        number, _, content = lines[i]
        body = content[1:].lstrip(" ")
        column = indent + len(content) - len(body)
        if not body or _is_item(body):
            raise _NotFast  # an empty item, or a sequence in a sequence
        result.lc.items.append((number, column))
        if _RT_KEY_LINE.match(body):
            # "- key: value": a mapping starting on the item's line, at the key's column
            lines[i] = (number, column, body)
            item: _LineMapping | str
            item, i = _rt_mapping(lines, i, column, budget, budget.enter(depth))
        else:
            budget.take()
            item = _rt_scalar(body)
            i += 1
            if i < len(lines) and lines[i][1] > indent:
                raise _NotFast
        result.append(item)
    return result, i


def _rt_scalar(text: str) -> str:
    if text[0] in "\"'":
        quote = text[0]
        inner = text[1:-1]
        if len(text) < 2 or text[-1] != quote or quote in inner or "\\" in inner:
            raise _NotFast
        return inner
    if (
        text[0] in _RT_UNSAFE_FIRST
        or _RT_NOT_STR.match(text)
        or text.endswith(":")
        or any(s in text for s in (": ", "#", "[", "]", "{", "}", "  "))
    ):
        raise _NotFast
    return text
