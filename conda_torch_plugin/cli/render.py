"""Rendering shared by every verb: JSON, aligned tables, errors and progress.

The core returns data; only the CLI prints. Text rendering of a verb's result
lives in that verb's module, built from the helpers here.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conda_torch_plugin.errors import TorchEnvError

_P = TypeVar("_P", bound="Progress")


def print_json(data: Any, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    stream.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """Left-aligned columns separated by two spaces."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_error(error: TorchEnvError, *, as_json: bool = False) -> None:
    if as_json:
        print_json(error.to_dict())
    print(f"error: {error.message}", file=sys.stderr)
    for hint in error.hints:
        print(f"  hint: {hint}", file=sys.stderr)


def is_interactive(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Step messages on stderr.

    Shown on a terminal; without one only with ``--verbose`` (or for commands
    that pass ``unattended=True``, such as ``lock``, whose silence would look
    like a hang in a CI log); never with ``--json`` or ``--quiet``.
    """

    def __init__(self, *, enabled: bool, terminal: bool = True) -> None:
        self.enabled = enabled
        self.terminal = terminal  # whether lines may be redrawn in place

    @classmethod
    def for_args(cls: type[_P], args: Any, *, unattended: bool = False) -> _P:
        terminal = is_interactive()
        wanted = terminal or unattended or getattr(args, "verbose", 0) > 0
        silent = getattr(args, "json", False) or getattr(args, "quiet", False)
        return cls(enabled=wanted and not silent, terminal=terminal)

    def step(self, message: str) -> None:
        if self.enabled:
            print(f"==> {message}", file=sys.stderr, flush=True)
