"""Block-style YAML as PyYAML writes it, byte for byte, for lock files.

:func:`emit_yaml` writes what ``yaml.dump(document, sort_keys=False)`` writes for
the documents a lock file holds (block mappings and sequences of str, int and
bool), quoting and folding exactly as PyYAML does, so our lock files diff cleanly
against conda-lock's. The fast reader of that layout is
:func:`conda_torch_plugin.condalock._yaml_reader.fast_load`.

PyYAML is not imported.
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
