"""Round-trip edits of environment.yml's block sequences, keeping the user's comments.

ruamel.yaml attaches a comment to the item before it: a comment on an item's own
line and the full-line comments and blank lines after it live in one token. To
replace items without losing comments, each sequence is taken apart into units
(an item with its comments), the units are rearranged, and the sequence is
refilled with each unit's comments given back. Comments after an item that goes
away move to the item before it, so nothing a user wrote is dropped. Lines
written for several platforms carry conda-lock selector comments (``# [linux64]``),
so a user's comment that reads as a selector is not carried onto a line we write.

Also here: how a string is written as a YAML scalar so that conda's YAML 1.1
reader gets the same string back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conda_torch_plugin.errors import EnvFileError
from conda_torch_plugin.inputs import ENVIRONMENT_FILE, check_yaml

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_][^\t\n#]*")
_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*:\s*(#.*)?$")
_SEQ_ITEM = re.compile(r"^( *)- ")
# What conda-lock's selector pattern takes for a selector at the end of a comment.
_SELECTOR_COMMENT = re.compile(r"\[[^\[\]]+\][^()]*$")

_SAFE_YAML: Any = None


def safe_yaml() -> Any:
    """A YAML 1.1 reader: conda and conda-lock read environment.yml with PyYAML (YAML 1.1,
    where ``yes`` is a boolean and ``1:20`` a number), stricter than ruamel's 1.2 default."""
    global _SAFE_YAML
    if _SAFE_YAML is None:
        from ruamel.yaml import YAML

        _SAFE_YAML = YAML(typ="safe", pure=True)
        _SAFE_YAML.version = (1, 1)
    return _SAFE_YAML


def yaml_scalar(value: str) -> str:
    """``value`` as a YAML plain scalar when it reads back as the same string, else quoted."""
    if (
        _PLAIN_SAFE.fullmatch(value)
        and ": " not in value
        and not value.endswith((":", " "))
        and safe_yaml().load(value) == value
    ):
        return value
    return json.dumps(value)


def quoted(value: Any) -> Any:
    """``value``, double-quoted if a plain scalar would not read back as the same string."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    if isinstance(value, str) and yaml_scalar(value) != value:
        return DoubleQuotedScalarString(value)
    return value


def load_round_trip(text: str, source: str) -> tuple[Any, Any]:
    """A round-trip YAML set to the file's indentation, and the data it read from ``text``.

    Raises :class:`EnvFileError` naming ``source`` and, when known, the line and column.
    """
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    # Refused before anything is rendered or written: an alias (which a dump would
    # keep and a reader expand), a tag other than YAML's own, deep or huge documents.
    check_yaml(text, source=source, limits=ENVIRONMENT_FILE, error=EnvFileError)
    yaml = _round_trip_yaml(text)
    try:
        return yaml, yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        raise EnvFileError(
            f"{source} is not valid YAML{where}: {problem}",
            hints=[f"fix {source}{where}, or move it aside to write a new one"],
        ) from None
    except YAMLError as error:
        raise EnvFileError(f"{source} is not valid YAML: {error}") from None


def _round_trip_yaml(text: str) -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a user's long lines
    offset = _detect_sequence_offset(text)
    yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
    return yaml


def _detect_sequence_offset(text: str) -> int:
    """How far the user indents ``- item`` under a top-level key (0 or 2, usually)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not _TOP_KEY.match(line):
            continue
        for following in lines[i + 1 :]:
            if not following.strip() or following.lstrip().startswith("#"):
                continue
            match = _SEQ_ITEM.match(following)
            if match:
                return len(match.group(1))
            break
    return 2


def block_sequence(data: Any, key: str, source: str, *, after: Sequence[str]) -> Any:
    """``data[key]`` as a block sequence; created after the first key of ``after`` present."""
    from ruamel.yaml.comments import CommentedSeq

    value = data.get(key)
    if value is None:
        value = CommentedSeq()
        if key not in data:
            present = [k for k in after if k in data]
            position = list(data).index(present[0]) + 1 if present else 0
            data.insert(position, key, value)
        else:
            data[key] = value
    if not isinstance(value, CommentedSeq):
        line = data.lc.key(key)[0] + 1
        raise EnvFileError(
            f"{source}: {key}: at line {line} is not a list",
            hints=[f"write {key}: as a list of '- item' lines"],
        )
    value.fa.set_block_style()  # selector comments need one item per line
    return value


def replace_managed(
    seq: Any,
    lines: list[tuple[str, str | None]],
    offset: int,
    *,
    managed: Callable[[str], bool],
) -> None:
    """Drop every string item ``managed`` accepts and put ``lines`` (spec, selector
    token or None) where the first of them was."""
    units = _units(seq)
    # A user's comment on a pinned line survives when the same spec comes back
    # plain, unless it reads as a selector (it would now filter the line).
    kept_eol = {
        u.value: u.eol
        for u in units
        if isinstance(u.value, str) and u.eol and not _SELECTOR_COMMENT.search(u.eol)
    }
    new = [
        _Unit(spec, eol=f"# [{token}]" if token else kept_eol.get(spec), fresh=True)
        for spec, token in lines
    ]
    output: list[_Unit] = []
    inserted = False
    for unit in units:
        if isinstance(unit.value, str) and managed(unit.value):
            if not inserted:
                output.extend(new)
                inserted = True
            _attach_trailing(output, unit.trailing)
        else:
            output.append(unit)
    if not inserted:
        output[:0] = new
    _write_units(seq, output, offset)


def replace_ordered(seq: Any, values: list[str], offset: int, *, key: Callable[[Any], str]) -> None:
    """Make ``seq`` hold ``values`` in order, keeping the comments of items that stay
    (an old item stays when ``key`` maps it to the same string as a new value)."""
    units = _units(seq)
    # Comments after the old list's last item are usually about the next key: keep them last.
    last_trailing = units[-1].trailing if units else ""
    if units:
        units[-1].trailing = ""
    output: list[_Unit] = []
    used: set[int] = set()
    for value in values:
        unit = _Unit(value, fresh=True)
        for old in units:
            if id(old) not in used and key(old.value) == key(value):
                unit.eol, unit.trailing, unit.column, unit.rest = (
                    old.eol,
                    old.trailing,
                    old.column,
                    old.rest,
                )
                used.add(id(old))
                break
        output.append(unit)
    for old in units:
        if id(old) not in used:
            _attach_trailing(output, old.trailing)
    _attach_trailing(output, last_trailing)
    _write_units(seq, output, offset)


@dataclass
class _Unit:
    """One sequence item with the comments ruamel attaches to it."""

    value: Any
    eol: str | None = None  # "# comment" on the item's own line, without the newline
    trailing: str = ""  # full-line comments and blank lines that follow it
    column: int | None = None  # where the eol comment starts
    rest: list[Any] = field(default_factory=lambda: [None, None, None])
    fresh: bool = False  # written by us (quote it if a plain scalar would not read back)


def _units(seq: Any) -> list[_Unit]:
    units = []
    for index, value in enumerate(seq):
        slot = seq.ca.items.get(index)
        unit = _Unit(value)
        if slot:
            unit.rest = list(slot[1:]) + [None] * (3 - len(slot[1:]))
            token = slot[0]
            if token is not None:
                text = token.value
                first, _, rest = text.partition("\n")
                if first.strip().startswith("#"):
                    unit.eol, unit.trailing = first.strip(), rest
                    unit.column = token.start_mark.column
                else:
                    unit.trailing = text[len(first) + 1 :] if "\n" in text else ""
        units.append(unit)
    return units


def _write_units(seq: Any, units: list[_Unit], offset: int) -> None:
    """Refill ``seq`` with ``units``, giving each its comments back."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    seq.clear()
    seq.ca.items.clear()
    for index, unit in enumerate(units):
        value = quoted(unit.value) if unit.fresh else unit.value
        seq.append(value)
        if isinstance(value, (list, dict)):
            # A mapping or list item (such as pip:) keeps its comments inside itself.
            _append_inside(value, unit.trailing)
            if any(unit.rest):
                seq.ca.items[index] = [None, *unit.rest]
        elif unit.eol is not None:
            column = unit.column
            if column is None:  # two spaces after the value, as in a new file
                column = offset + 2 + len(yaml_scalar(str(unit.value))) + 2
            token = CommentToken(unit.eol + "\n" + unit.trailing, CommentMark(column))
            seq.ca.items[index] = [token, *unit.rest]
        elif unit.trailing:
            token = CommentToken("\n" + unit.trailing, CommentMark(offset + 2))
            seq.ca.items[index] = [token, *unit.rest]
        elif any(unit.rest):
            seq.ca.items[index] = [None, *unit.rest]


def _append_inside(node: Any, text: str) -> None:
    """Append comment lines after the last scalar nested in ``node``."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    if not text:
        return
    if isinstance(node, list) and node:
        last = len(node) - 1
        if isinstance(node[last], (list, dict)) and node[last]:
            _append_inside(node[last], text)
            return
        slot = node.ca.items.setdefault(last, [None, None, None, None])  # type: ignore[attr-defined]
        position = 0
    elif isinstance(node, dict) and node:
        last = list(node)[-1]
        if isinstance(node[last], (list, dict)) and node[last]:
            _append_inside(node[last], text)
            return
        slot = node.ca.items.setdefault(last, [None, None, None, None])  # type: ignore[attr-defined]
        position = 2
    else:
        return
    token = slot[position]
    if token is None:
        slot[position] = CommentToken("\n" + text, CommentMark(0))
    else:
        token.value = token.value + text


def _attach_trailing(output: list[_Unit], text: str) -> None:
    if text:
        output[-1].trailing += text
