"""Rendering shared by every verb: JSON, aligned tables, errors and progress.

The core returns data; only the CLI prints. Text rendering of a verb's result
lives in that verb's module, built from the helpers here.

Text from input files (a package name in a lock, a spec line, a YAML excerpt)
reaches messages, so whatever a verb prints passes through :func:`terminal_safe`:
:func:`terminal_safe_output` puts a filter on stdout and stderr while a verb
runs, and an ESC sequence in a file is shown as ``\\x1b[...``, never executed by
the terminal.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from conda_torch_plugin.errors import TorchEnvError
    from conda_torch_plugin.findings import Finding

_P = TypeVar("_P", bound="Progress")


# C0 controls but tab and newline, DEL and the C1 controls (CSI, OSC ... as one
# byte); a carriage return only where it ends a line ("\\r\\n").
_CONTROL = re.compile(r"\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """``text`` with every control character a terminal would act on written as ``\\xNN``.

    Newlines, tabs and "\\r\\n" stay; so does a carriage return that opens the
    text (a progress line redrawing itself: what follows it is still escaped).
    """
    head = "\r" if text.startswith("\r") and not text.startswith("\r\n") else ""
    body = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text[len(head) :])
    return head + body


class _TerminalSafeStream:
    """A text stream that writes through :func:`terminal_safe`; everything else delegates."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(terminal_safe(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def terminal_safe_output() -> Iterator[None]:
    """While the block runs, stdout and stderr escape control characters (see module doc)."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _TerminalSafeStream(saved[0])
    sys.stderr = _TerminalSafeStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


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
    print(f"error: {terminal_safe(error.message)}", file=sys.stderr)
    for hint in error.hints:
        print(f"  hint: {terminal_safe(hint)}", file=sys.stderr)


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


def print_check_findings(findings: Sequence[Finding], *, forced: bool = False) -> None:
    """A machine check's findings on stderr, the one way every verb shows them.

    Warnings, and errors that ``--force`` overrode, as ``warning:`` with their fix
    as a hint; infos as ``note:``; a finding's detail lines indented beneath.
    """
    for finding in findings:
        if finding.severity in ("warning", "info") or (finding.severity == "error" and forced):
            label = {"error": "warning", "info": "note"}.get(finding.severity, finding.severity)
            print(f"{label}: {finding.message}", file=sys.stderr)
            if finding.fix and finding.severity != "info":
                print(f"  hint: {finding.fix}", file=sys.stderr)
            for line in (finding.detail or "").splitlines():
                print(f"  | {line}", file=sys.stderr)
