"""Block-style YAML: a byte-exact writer as PyYAML writes it, and two fast readers.

:func:`emit_yaml` writes what ``yaml.dump(document, sort_keys=False)`` writes for
the documents a lock file holds (block mappings and sequences of str, int and
bool), quoting and folding exactly as PyYAML does, so our lock files diff cleanly
against conda-lock's. :func:`fast_load` reads that block layout back 10-20x
faster than ruamel's pure-Python loader, or returns None for anything outside it
so the caller can fall back to ruamel. :func:`fast_load_lines` does the same for
environment.yml and virtual-packages.yml, as ruamel's round-trip loader reads
them (with line numbers).

Neither PyYAML nor ruamel.yaml is imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from conda_torch_plugin.errors import LockError

# PyYAML's emitter (yaml/emitter.py, yaml/resolver.py) for what a lock file holds:
# block mappings and sequences of str, int and bool, with its default settings
# (indent 2, width 80, indentless sequences in mappings, no unicode, sort_keys=False).
_BEST_WIDTH = 80
_BREAKS = "\n\x85\u2028\u2029"
_SPACE_OR_BREAK = "\0 \t\r\n\x85\u2028\u2029"
_IMPLICIT = (
    (
        "yYnNtTfFoO",
        re.compile(
            r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"
        ),
    ),
    (
        "-+0123456789.",
        re.compile(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
            r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"
            r"|[-+]?\.(?:inf|Inf|INF)"
            r"|\.(?:nan|NaN|NAN))$"
        ),
    ),
    (
        "-+0123456789",
        re.compile(
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
            r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$"
        ),
    ),
    ("<", re.compile(r"^(?:<<)$")),
    ("~nN", re.compile(r"^(?:~|null|Null|NULL|)$")),
    (
        "0123456789",
        re.compile(
            r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
            r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
            r"(?:[Tt]|[ \t]+)[0-9][0-9]?"
            r":[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
            r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"
        ),
    ),
    ("=", re.compile(r"^(?:=)$")),
)
_ESCAPES = {
    "\0": "0",
    "\x07": "a",
    "\x08": "b",
    "\x09": "t",
    "\x0a": "n",
    "\x0b": "v",
    "\x0c": "f",
    "\x0d": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\xa0": "_",
    "\u2028": "L",
    "\u2029": "P",
}


# Strings that PyYAML's analysis always allows as plain scalars: printable ASCII
# without spaces, not starting with an indicator or "..."/"---", not ending in ":".
_SIMPLE_PLAIN = re.compile(r"[A-Za-z0-9_/+=<~^$()](?:[!-~]*[!-9;-~])?\Z")


def _implicit_by_first() -> dict[str, tuple[re.Pattern[str], ...]]:
    """The implicit-tag patterns to try, by a scalar's first character, as PyYAML's
    resolver picks them ("" is the empty scalar's entry)."""
    table: dict[str, tuple[re.Pattern[str], ...]] = {}
    for chars, pattern in _IMPLICIT:
        for first in chars:
            table[first] = (*table.get(first, ()), pattern)
    table[""] = tuple(pattern for chars, pattern in _IMPLICIT if chars == "~nN")
    return table


_IMPLICIT_BY_FIRST = _implicit_by_first()


def _resolves_to_str(value: str) -> bool:
    patterns = _IMPLICIT_BY_FIRST.get(value[:1], ())
    return not any(pattern.match(value) for pattern in patterns)


def _plain_text(value: Any, cache: dict[str, str | None]) -> str | None:
    """The text of ``value`` when it is written plain and has no space to fold at, else None.

    Such a scalar is written in one piece wherever it stands (what write_plain does
    for a text without spaces), so the emitter's fast paths may skip the general
    writers for it. Strings are looked up in ``cache`` first: names, versions,
    platforms and keys repeat on every package of a lock file.
    """
    if isinstance(value, str):
        text = cache.get(value, "")
        if text == "":
            text = value if _SIMPLE_PLAIN.match(value) and _resolves_to_str(value) else None
            cache[value] = text
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return None


def _value_text(value: Any, cache: dict[str, str | None]) -> str | None:
    """What scalar() writes for a mapping value that has no space, or None.

    Without a space there is nothing to fold at, so the text is the same wherever
    it stands: plain, or single-quoted (``''``, ``'>=1.2'``: dependency versions).
    Anything else (spaces, line breaks, double quotes) is left to the general writers.
    """
    if isinstance(value, str):
        text = cache.get(value, "")
        if text == "":
            text = _inline_value(value)
            cache[value] = text
        return text
    return _plain_text(value, cache)


def _inline_value(value: str) -> str | None:
    # scalar()'s choice for a value (not a key), for a text without spaces or breaks.
    if _SIMPLE_PLAIN.match(value) and _resolves_to_str(value):
        return value
    if " " in value or any(ch in _BREAKS for ch in value):
        return None
    analysis = _analyze(value)
    if analysis.allow_block_plain and _resolves_to_str(value):
        return value
    if analysis.allow_single_quoted:
        return "'" + value.replace("'", "''") + "'"
    return None


@dataclass
class _Analysis:
    empty: bool
    multiline: bool
    allow_block_plain: bool
    allow_single_quoted: bool


def _analyze(scalar: str) -> _Analysis:
    if not scalar:
        return _Analysis(
            empty=True, multiline=False, allow_block_plain=True, allow_single_quoted=True
        )
    block_indicators = line_breaks = special = False
    leading_space = leading_break = trailing_space = trailing_break = False
    break_space = space_break = False
    if scalar.startswith(("---", "...")):
        block_indicators = True
    preceded_by_whitespace = True
    followed_by_whitespace = len(scalar) == 1 or scalar[1] in _SPACE_OR_BREAK
    previous_space = previous_break = False
    for index, ch in enumerate(scalar):
        if index == 0:
            if ch in "#,[]{}&*!|>'\"%@`":
                block_indicators = True
            if ch in "?:" and followed_by_whitespace:
                block_indicators = True
            if ch == "-" and followed_by_whitespace:
                block_indicators = True
        else:
            if ch == ":" and followed_by_whitespace:
                block_indicators = True
            if ch == "#" and preceded_by_whitespace:
                block_indicators = True
        if ch in _BREAKS:
            line_breaks = True
        if not (ch == "\n" or "\x20" <= ch <= "\x7e"):
            special = True  # allow_unicode is off: any non-ASCII character is escaped
        if ch == " ":
            if index == 0:
                leading_space = True
            if index == len(scalar) - 1:
                trailing_space = True
            if previous_break:
                break_space = True
            previous_space, previous_break = True, False
        elif ch in _BREAKS:
            if index == 0:
                leading_break = True
            if index == len(scalar) - 1:
                trailing_break = True
            if previous_space:
                space_break = True
            previous_space, previous_break = False, True
        else:
            previous_space = previous_break = False
        preceded_by_whitespace = ch in _SPACE_OR_BREAK
        followed_by_whitespace = index + 2 >= len(scalar) or scalar[index + 2] in _SPACE_OR_BREAK
    allow_block_plain = allow_single_quoted = True
    if leading_space or leading_break or trailing_space or trailing_break:
        allow_block_plain = False
    if break_space:
        allow_block_plain = allow_single_quoted = False
    if space_break or special:
        allow_block_plain = allow_single_quoted = False
    if line_breaks or block_indicators:
        allow_block_plain = False
    return _Analysis(
        empty=False,
        multiline=line_breaks,
        allow_block_plain=allow_block_plain,
        allow_single_quoted=allow_single_quoted,
    )


class _Emitter:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.indent: int | None = None
        self.indents: list[int | None] = []
        self.column = 0
        self.whitespace = True
        self.indention = True
        self.plain: dict[str, str | None] = {}  # _plain_text's cache (keys)
        self.values: dict[str, str | None] = {}  # _value_text's cache

    # -- nodes
    def node(self, value: Any, *, mapping: bool = False, simple_key: bool = False) -> None:
        if isinstance(value, dict):
            if not value:
                self.write_indicator("{", True, whitespace=True)
                self.write_indicator("}", False)
                return
            self.increase_indent(flow=False)
            plain = self.plain
            indent = self.indent or 0
            line_break = "\n" + " " * indent
            for key, item in value.items():
                key_text = _plain_text(key, plain)
                if key_text is None:
                    self.write_indent()
                    self.scalar(key, simple_key=True)
                    self.write_indicator(":", False)
                    self.node(item, mapping=True)
                    continue
                # Fast path: the same bytes and state as write_indent() + scalar(key) +
                # write_indicator(":") (+ scalar(item) for a value without spaces), in
                # one write. Past the first key, write_indent() always breaks the line.
                if self.indention:
                    self.write_indent()
                    head = key_text if self.whitespace else " " + key_text
                    column = self.column + len(head)
                else:
                    head = line_break + key_text
                    column = indent + len(key_text)
                item_text = (
                    None if isinstance(item, (dict, list)) else _value_text(item, self.values)
                )
                tail = ":" if item_text is None else ": " + item_text
                self.out.append(head + tail)
                self.column = column + len(tail)
                self.whitespace = self.indention = False
                if item_text is None:
                    self.node(item, mapping=True)
            self.indent = self.indents.pop()
        elif isinstance(value, list):
            if not value:
                self.write_indicator("[", True, whitespace=True)
                self.write_indicator("]", False)
                return
            self.increase_indent(flow=False, indentless=mapping and not self.indention)
            for item in value:
                self.write_indent()
                self.write_indicator("-", True, indention=True)
                self.node(item)
            self.indent = self.indents.pop()
        else:
            self.scalar(value, simple_key=simple_key)

    def scalar(self, value: Any, *, simple_key: bool = False) -> None:
        self.increase_indent(flow=True)
        if isinstance(value, bool):
            self.write_plain("true" if value else "false", split=not simple_key)
        elif isinstance(value, int):
            self.write_plain(str(value), split=not simple_key)
        elif isinstance(value, str) and _plain_text(value, self.plain) is not None:
            # The common case (names, versions, URLs, hashes): no spaces, so no folding.
            self.write_plain(value, split=False)
        elif isinstance(value, str):
            if any(ch in _BREAKS for ch in value):
                raise LockError(f"a lock file value cannot contain a line break: {value!r}")
            analysis = _analyze(value)
            if simple_key and (analysis.empty or len(value) >= 128):
                raise LockError(f"cannot write {value!r} as a key in a lock file")
            split = not simple_key
            if (
                not (simple_key and analysis.empty)
                and analysis.allow_block_plain
                and _resolves_to_str(value)
            ):
                self.write_plain(value, split)
            elif analysis.allow_single_quoted:
                self.write_single_quoted(value, split)
            else:
                self.write_double_quoted(value, split)
        else:
            raise TypeError(f"cannot write {type(value).__name__} to a lock file")
        self.indent = self.indents.pop()

    def increase_indent(self, *, flow: bool, indentless: bool = False) -> None:
        self.indents.append(self.indent)
        if self.indent is None:
            self.indent = 2 if flow else 0
        elif not indentless:
            self.indent += 2

    # -- writers (ports of yaml.emitter.Emitter's)
    def write(self, data: str) -> None:
        self.column += len(data)
        self.out.append(data)

    def write_indicator(
        self,
        indicator: str,
        need_whitespace: bool,
        *,
        whitespace: bool = False,
        indention: bool = False,
    ) -> None:
        data = indicator if self.whitespace or not need_whitespace else " " + indicator
        self.whitespace = whitespace
        self.indention = self.indention and indention
        self.write(data)

    def write_indent(self) -> None:
        indent = self.indent or 0
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.write_line_break()
        if self.column < indent:
            self.whitespace = True
            self.out.append(" " * (indent - self.column))
            self.column = indent

    def write_line_break(self) -> None:
        self.whitespace = True
        self.indention = True
        self.column = 0
        self.out.append("\n")

    def write_plain(self, text: str, split: bool = True) -> None:
        if not text:
            return
        if not self.whitespace:
            self.write(" ")
        self.whitespace = False
        self.indention = False
        spaces = False
        start = end = 0
        while end <= len(text):
            ch = text[end] if end < len(text) else None
            if spaces:
                if ch != " ":
                    if start + 1 == end and self.column > _BEST_WIDTH and split:
                        self.write_indent()
                        self.whitespace = False
                        self.indention = False
                    else:
                        self.write(text[start:end])
                    start = end
            elif ch is None or ch == " ":
                self.write(text[start:end])
                start = end
            if ch is not None:
                spaces = ch == " "
            end += 1

    def write_single_quoted(self, text: str, split: bool = True) -> None:
        self.write_indicator("'", True)
        spaces = False
        start = end = 0
        while end <= len(text):
            ch = text[end] if end < len(text) else None
            if spaces:
                if ch is None or ch != " ":
                    if (
                        start + 1 == end
                        and self.column > _BEST_WIDTH
                        and split
                        and start != 0
                        and end != len(text)
                    ):
                        self.write_indent()
                    else:
                        self.write(text[start:end])
                    start = end
            elif (ch is None or ch in " '") and start < end:
                self.write(text[start:end])
                start = end
            if ch == "'":
                self.write("''")
                start = end + 1
            if ch is not None:
                spaces = ch == " "
            end += 1
        self.write_indicator("'", False)

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        self.write_indicator('"', True)
        start = end = 0
        while end <= len(text):
            ch = text[end] if end < len(text) else None
            if ch is None or ch in '"\\\x85\u2028\u2029\ufeff' or not ("\x20" <= ch <= "\x7e"):
                if start < end:
                    self.write(text[start:end])
                    start = end
                if ch is not None:
                    if ch in _ESCAPES:
                        data = "\\" + _ESCAPES[ch]
                    elif ch <= "\xff":
                        data = f"\\x{ord(ch):02X}"
                    elif ch <= "\uffff":
                        data = f"\\u{ord(ch):04X}"
                    else:
                        data = f"\\U{ord(ch):08X}"
                    self.write(data)
                    start = end + 1
            if (
                0 < end < len(text) - 1
                and (ch == " " or start >= end)
                and self.column + (end - start) > _BEST_WIDTH
                and split
            ):
                data = text[start:end] + "\\"
                if start < end:
                    start = end
                self.write(data)
                self.write_indent()
                self.whitespace = False
                self.indention = False
                if text[start] == " ":
                    self.write("\\")
            end += 1
        self.write_indicator('"', False)


def emit_yaml(document: dict[str, Any]) -> str:
    """``document`` as ``yaml.dump(document, sort_keys=False)`` writes it."""
    emitter = _Emitter()
    emitter.node(document)
    emitter.write_indent()  # document end
    return "".join(emitter.out)


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


class _NotFast(Exception):
    pass


def fast_load(text: str) -> Any:
    """What ruamel's base loader reads from ``text``; None for anything outside the block layout."""
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
        value, end = _fast_node(lines, 0)
    except _NotFast:
        return None
    return value if end == len(lines) else None


def _is_item(content: str) -> bool:
    return content == "-" or content.startswith("- ")


def _fast_node(lines: list[tuple[int, str]], i: int) -> tuple[Any, int]:
    indent, content = lines[i]
    if _is_item(content):
        return _fast_sequence(lines, i, indent)
    return _fast_mapping(lines, i, indent)


def _fast_mapping(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent and not _is_item(lines[i][1]):
        m = _KEY.match(lines[i][1])
        if m is None:
            raise _NotFast
        key = _fast_scalar(m.group("key"))
        if key in result:
            raise _NotFast  # ruamel says where
        rest = m.group("value")
        i += 1
        if rest is None:
            if i < len(lines) and (
                lines[i][0] > indent or (lines[i][0] == indent and _is_item(lines[i][1]))
            ):
                result[key], i = _fast_node(lines, i)
            else:
                result[key] = ""
        else:
            result[key] = _fast_value(rest)
            if i < len(lines) and lines[i][0] > indent:
                raise _NotFast  # a scalar continued on the next line
    return result, i


def _fast_sequence(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[list[Any], int]:
    result: list[Any] = []
    while i < len(lines) and lines[i][0] == indent and _is_item(lines[i][1]):
        rest = lines[i][1][1:]
        body = rest.lstrip(" ")
        if not body:
            i += 1
            if i < len(lines) and lines[i][0] > indent:
                item, i = _fast_node(lines, i)
            else:
                item = ""
        elif _KEY.match(body) or _is_item(body):
            # "- key: value": a mapping (or sequence) starting on the item's line
            lines[i] = (indent + 1 + len(rest) - len(body), body)
            item, i = _fast_node(lines, i)
        else:
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


def fast_load_lines(text: str) -> Any:
    """What ruamel's round-trip loader reads from ``text``, or None where unsure."""
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
        value, end = _rt_node(lines, 0)
    except _NotFast:
        return None
    return value if end == len(lines) else None


def _rt_node(lines: list[_Line], i: int) -> tuple[Any, int]:
    if _is_item(lines[i][2]):
        return _rt_sequence(lines, i, lines[i][1])
    return _rt_mapping(lines, i, lines[i][1])


def _rt_mapping(lines: list[_Line], i: int, indent: int) -> tuple[_LineMapping, int]:
    result = _LineMapping()
    while i < len(lines) and lines[i][1] == indent and not _is_item(lines[i][2]):
        number, _, content = lines[i]
        m = _RT_KEY_LINE.match(content)
        if m is None or _RT_NOT_STR.match(m[1]) or m[1] in result:
            raise _NotFast  # a duplicate key: ruamel says where
        key, rest = m[1], m[2]
        result.lc.keys[key] = (number, indent)
        i += 1
        if rest is None:
            if i < len(lines) and (
                lines[i][1] > indent or (lines[i][1] == indent and _is_item(lines[i][2]))
            ):
                result[key], i = _rt_node(lines, i)
            else:
                result[key] = None
        else:
            result[key] = _rt_scalar(rest)
            if i < len(lines) and lines[i][1] > indent:
                raise _NotFast  # a scalar continued on the next line
    return result, i


def _rt_sequence(lines: list[_Line], i: int, indent: int) -> tuple[_LineSequence, int]:
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
            item, i = _rt_mapping(lines, i, column)
        else:
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
