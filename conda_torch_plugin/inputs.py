"""Reading the files a user hands us: regular files only, bounded in size, YAML without aliases.

An environment.yml or conda-lock.yml may come from a pull request and a
conda-meta record from a package mirror, so every reader of such a file goes
through here:

- :func:`read_text` refuses anything that is not a regular file (a FIFO would
  block the read forever, ``/dev/zero`` never ends, a folder or socket is a
  mistake) without reading from it, caps the size and decodes UTF-8, raising the
  caller's :class:`~conda_torch_plugin.errors.TorchEnvError` subclass with a
  sentence that says what the path is.
- :func:`check_yaml` walks a YAML text's parse events (never building the
  document) and refuses anchors and aliases, tags other than YAML's standard
  ones, nesting deeper than :data:`MAX_DEPTH` and more than a format's number of
  nodes. environment.yml, virtual-packages.yml and conda-lock.yml never need
  anchors (conda-lock does not write them), and an alias is how a 574-byte file
  becomes gigabytes once expanded.

The limits, per format (:class:`InputLimits`):

=====================  ========  ===================
file                   size      values (YAML nodes)
=====================  ========  ===================
environment.yml        4 MiB     20,000
virtual-packages.yml   1 MiB     10,000
conda-lock.yml         64 MiB    2,000,000
conda-meta/*.json      64 MiB    (JSON)
torch-env-pip record   4 MiB     (JSON)
=====================  ========  ===================

A real environment file is a few KiB; a lock of a large multi-platform PyTorch
environment a few MiB and some 100,000 nodes; the record of a package with many
files some MiB; the record of the pip packages an install put into an environment
(``conda-meta/torch-env-pip``) a name and version per package. Nesting is at most
64 levels in every format (these formats use fewer than 8).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from conda_torch_plugin.errors import TorchEnvError

MiB = 1024 * 1024
MAX_DEPTH = 64


@dataclass(frozen=True)
class InputLimits:
    """What one kind of input file may hold; ``what`` names it in messages."""

    what: str
    max_bytes: int
    max_nodes: int
    max_depth: int = MAX_DEPTH


ENVIRONMENT_FILE = InputLimits("environment file", 4 * MiB, 20_000)
VIRTUAL_PACKAGES_FILE = InputLimits("virtual-packages file", 1 * MiB, 10_000)
LOCK_FILE = InputLimits("lock file", 64 * MiB, 2_000_000)
PACKAGE_RECORD = InputLimits("package record", 64 * MiB, 0)
PIP_RECORD = InputLimits("record of pip packages", 4 * MiB, 0)

# The tags YAML's core schema resolves plain scalars and collections to: anything
# else (``!foo``, ``!!python/object``) is refused, never constructed.
_STANDARD_TAGS = frozenset(
    {"!"}
    | {
        f"tag:yaml.org,2002:{name}"
        for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
    }
)

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """What a ``st_mode`` is, in words: "a FIFO (named pipe)", "a folder", ..."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file"


def check_regular_file(
    path: Path,
    *,
    what: str,
    error: type[TorchEnvError],
    missing: str | None = None,
    missing_hints: Iterable[str] = (),
) -> os.stat_result:
    """``path``'s stat when it is a regular file (after symlinks); else ``error``.

    ``missing`` replaces the message for a path that does not exist. Nothing is opened.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise error(missing or f"{what} {path} does not exist", hints=missing_hints) from None
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(status.st_mode):
        raise _not_a_file(path, status.st_mode, what=what, error=error)
    return status


def read_bytes(
    path: Path,
    *,
    limits: InputLimits,
    error: type[TorchEnvError],
    missing: str | None = None,
    missing_hints: Iterable[str] = (),
) -> bytes:
    """The bytes of the regular file ``path``, at most ``limits.max_bytes`` of them."""
    what = limits.what
    status = check_regular_file(
        path, what=what, error=error, missing=missing, missing_hints=missing_hints
    )
    if status.st_size > limits.max_bytes:
        raise _too_big(path, limits, error)
    # O_NONBLOCK: should the path be swapped for a FIFO after the stat, opening it
    # returns at once instead of waiting for a writer; fstat then refuses it.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(missing or f"{what} {path} does not exist", hints=missing_hints) from None
    except OSError as e:
        if e.errno == errno.ENXIO:  # a FIFO with no writer, opened for O_NONBLOCK reading
            raise error(f"{what} {path} is a FIFO (named pipe), not a file") from None
        raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as stream:
        mode = os.fstat(stream.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise _not_a_file(path, mode, what=what, error=error)
        try:
            data = stream.read(limits.max_bytes + 1)
        except OSError as e:
            raise error(f"cannot read {what} {path}: {e.strerror or e}") from None
    if len(data) > limits.max_bytes:  # it grew after the stat
        raise _too_big(path, limits, error)
    return data


def read_text(
    path: Path,
    *,
    limits: InputLimits,
    error: type[TorchEnvError],
    missing: str | None = None,
    missing_hints: Iterable[str] = (),
) -> str:
    """The UTF-8 text of the regular file ``path`` (see :func:`read_bytes`)."""
    data = read_bytes(
        path, limits=limits, error=error, missing=missing, missing_hints=missing_hints
    )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(
            f"{limits.what} {path} is not UTF-8 text ({e.reason} at byte {e.start})",
            hints=["save it as UTF-8"],
        ) from None


def read_json(path: Path, *, limits: InputLimits, error: type[TorchEnvError]) -> Any:
    """The JSON document in the regular file ``path``; ``error`` for malformed or too deep."""
    text = read_text(path, limits=limits, error=error)
    try:
        return json.loads(text)
    except ValueError as e:
        raise error(f"{limits.what} {path} is not valid JSON: {e}") from None
    except RecursionError:
        raise error(f"{limits.what} {path} is nested too deeply to read") from None


def check_yaml(
    text: str,
    *,
    source: str,
    limits: InputLimits,
    error: type[TorchEnvError],
    line_of: Callable[[int], int | None] | None = None,
) -> None:
    """Refuse anchors, aliases, non-standard tags, deep nesting and too many nodes.

    Reads parse events only (ruamel's parser keeps its own stack: no recursion,
    and an alias is never expanded). ``line_of`` maps the text's 0-based line to
    the file's 1-based line (default: the same line). A syntax error stops the
    check quietly: the caller's loader reports it with its own message.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
        NodeEvent,
    )

    def where(event: Any) -> str:
        index = event.start_mark.line
        line = line_of(index) if line_of is not None else index + 1
        return f"{source}, line {line}: " if line is not None else f"{source}: "

    depth = nodes = 0
    try:
        for event in YAML(typ="safe", pure=True).parse(text):
            if isinstance(event, CollectionEndEvent):
                depth -= 1
                continue
            if not isinstance(event, NodeEvent):
                continue
            if isinstance(event, AliasEvent) or event.anchor is not None:
                raise error(
                    f"{where(event)}YAML anchors and aliases (&name, *name) are not "
                    f"allowed in this {limits.what}",
                    hints=["write the value out in full where it is needed"],
                )
            tag = getattr(event, "tag", None)
            tag = getattr(tag, "value", tag)  # ruamel >= 0.18 wraps it in a Tag
            if tag is not None and str(tag) not in _STANDARD_TAGS:
                raise error(
                    f"{where(event)}the YAML tag {tag} is not allowed in this {limits.what}",
                    hints=[f"remove the tag {tag}: this {limits.what} needs none"],
                )
            nodes += 1
            if nodes > limits.max_nodes:
                raise error(
                    f"{where(event)}the {limits.what} holds more than "
                    f"{limits.max_nodes:,} values, the most this tool reads",
                    hints=["split it, or check that this is the file you meant"],
                )
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > limits.max_depth:
                    raise error(
                        f"{where(event)}the {limits.what} is nested more than "
                        f"{limits.max_depth} levels deep",
                        hints=["these files use a few levels; check the indentation"],
                    )
    except YAMLError:
        return


def _not_a_file(path: Path, mode: int, *, what: str, error: type[TorchEnvError]) -> TorchEnvError:
    return error(
        f"{what} {path} is {file_kind(mode)}, not a file",
        hints=[f"give the path of the {what} itself"],
    )


def _too_big(path: Path, limits: InputLimits, error: type[TorchEnvError]) -> TorchEnvError:
    return error(
        f"{limits.what} {path} is larger than {limits.max_bytes // MiB} MiB, "
        f"the most this tool reads from a {limits.what}",
        hints=["check that this is the file you meant"],
    )


__all__ = [
    "ENVIRONMENT_FILE",
    "LOCK_FILE",
    "MAX_DEPTH",
    "PACKAGE_RECORD",
    "PIP_RECORD",
    "VIRTUAL_PACKAGES_FILE",
    "InputLimits",
    "check_regular_file",
    "check_yaml",
    "file_kind",
    "read_bytes",
    "read_json",
    "read_text",
]
