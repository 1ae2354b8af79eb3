"""The argparse CLI shared by ``conda torch-env``, ``conda-torch-env`` and ``python -m``.

One module per verb, each with ``configure_parser(parser)`` and
``execute(args) -> int``; dispatch goes through ``parser.set_defaults(func=...)``.
Verb modules import the core lazily inside ``execute``.

conda builds the parser of every plugin subcommand on every conda command, so
inside conda only a two-argument front parser is registered
(``configure_conda_parser``); the full parser is built when ``conda torch-env``
itself runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

VERBS = ("detect", "plan", "write", "lock", "create", "install", "doctor")

DESCRIPTION = """\
Get a working GPU PyTorch environment in one command, reproducibly.

  detect   what NVIDIA driver and GPUs this machine has
  plan     which PyTorch release and CUDA build fit them, and why
  write    an environment.yml (and virtual-packages.yml) pinning that plan
  lock     a multi-platform conda-lock.yml a team commits
  install  an environment from the lock, after checking this machine can run it
  create   all of the above in one go
  doctor   check an installed environment
"""


def configure_parser(parser: argparse.ArgumentParser, *, inside_conda: bool = False) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.set_defaults(func=None, _parser=parser, inside_conda=inside_conda)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for name in VERBS:
        module = importlib.import_module(f"conda_torch_plugin.cli.{name}")
        verb_parser = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure_parser(verb_parser)
        verb_parser.set_defaults(func=module.execute)


def build_parser(
    prog: str = "conda-torch-env", *, inside_conda: bool = False
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog)
    from conda_torch_plugin import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    configure_parser(parser, inside_conda=inside_conda)
    return parser


def configure_conda_parser(parser: argparse.ArgumentParser) -> None:
    """The front parser conda builds on every command: the verb and the rest, unparsed.

    Building the full parser (seven verb modules, a hundred arguments) here would
    cost every ``conda`` command a few milliseconds; ``execute_in_conda`` builds
    it only when ``conda torch-env`` runs.
    """
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("verb", nargs="?", choices=VERBS, metavar="COMMAND", help="see above")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def execute(args: argparse.Namespace) -> int:
    """Run the chosen verb; turn every project error into a message and an exit status."""
    from conda_torch_plugin.cli.render import print_error
    from conda_torch_plugin.errors import TorchEnvError

    if args.func is None:
        args._parser.print_help()
        return 0
    try:
        with _terminate_as_interrupt():
            return int(args.func(args) or 0)
    except TorchEnvError as error:
        print_error(error, as_json=getattr(args, "json", False))
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        # The shell's 128 + signal number: 130 for Ctrl-C, 143 for SIGTERM.
        print("Interrupted.", file=sys.stderr)
        return 128 + interrupt.signum if isinstance(interrupt, Terminated) else 130
    except Exception:
        # A bug, not a user error: show the traceback for the report, but still
        # return a status so the caller can leave without interpreter teardown.
        import traceback

        traceback.print_exc()
        print(
            "error: conda torch-env failed unexpectedly (a bug); please report the traceback above",
            file=sys.stderr,
        )
        return 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (``docker stop``, a CI time-out, ``kill``), raised where Ctrl-C would be."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM takes the KeyboardInterrupt path.

    So an install that is terminated removes its staging folder and leaves the
    prefix as it was, exactly as after Ctrl-C. The previous handler comes back
    when the command ends; only the main thread can install one.
    """
    import signal
    import threading

    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: object) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def execute_in_conda(args: argparse.Namespace) -> int:
    """The conda plugin's action: run, then leave without running interpreter teardown.

    py-rattler can crash while the interpreter shuts down (exit 139/134 after a
    successful command). Once rattler is loaded we flush and leave with
    ``os._exit`` so the exit status is the command's own.
    """
    argv = [args.verb, *args.argv] if args.verb else []
    try:
        full_args = build_parser("conda torch-env", inside_conda=True).parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    status = execute(full_args)
    if "rattler" in sys.modules:
        _flush_and_exit(status)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return execute(args)


def _flush_and_exit(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def run() -> None:
    """Console-script entry point (``conda-torch-env``)."""
    try:
        status = main()
    except SystemExit as exit_:  # argparse usage errors and --help
        code = exit_.code
        status = code if isinstance(code, int) else (0 if code is None else 2)
        if not isinstance(code, int) and code is not None:
            print(code, file=sys.stderr)
    # Skip interpreter teardown: py-rattler may crash there (see execute_in_conda).
    _flush_and_exit(status)
