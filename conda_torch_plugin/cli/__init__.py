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
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

VERBS = ("detect", "plan", "write", "lock", "create", "install", "doctor")

SUMMARY = "Get a working GPU PyTorch environment in one command, reproducibly."

# The front parser conda builds lists the verbs in its description (it has no
# sub-parsers); the full parser lists them once, through its sub-parsers.
DESCRIPTION = f"""\
{SUMMARY}

  detect   what NVIDIA driver and GPUs this machine has
  plan     which PyTorch release and CUDA build fit them, and why
  write    an environment.yml (and virtual-packages.yml) pinning that plan
  lock     a multi-platform conda-lock.yml a team commits
  install  an environment from the lock, after checking this machine can run it
  create   all of the above in one go
  doctor   check an installed environment
"""

# Exit status of a command whose output pipe was closed early (`... | head`),
# as a process killed by SIGPIPE reports it.
BROKEN_PIPE_STATUS = 141


class Parser(argparse.ArgumentParser):
    """argparse with usage errors that honour ``--json`` (an error object on stdout)."""

    json_errors = False  # set per command line by ``parse_command_line``

    def error(self, message: str) -> NoReturn:
        if Parser.json_errors:
            from conda_torch_plugin.cli.render import print_json

            print_json(
                {
                    "error": "UsageError",
                    "message": message,
                    "hints": [f"see {self.prog} --help"],
                }
            )
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_command_line(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; an unknown flag is reported with the usage of the verb it was given to."""
    Parser.json_errors = "--json" in argv
    args, extra = parser.parse_known_args(list(argv))
    if extra:
        owner = getattr(args, "_verb_parser", None) or parser
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def configure_parser(parser: argparse.ArgumentParser, *, inside_conda: bool = False) -> None:
    parser.description = SUMMARY
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
        _add_output_flags(verb_parser)
        verb_parser.set_defaults(func=module.execute, _verb_parser=verb_parser)


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    """conda's -q/--quiet and -v/--verbose, on every verb."""
    group = parser.add_argument_group("output")
    volume = group.add_mutually_exclusive_group()
    volume.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    volume.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="progress lines on stderr even when it is not a terminal (a CI log)",
    )


def build_parser(
    prog: str = "conda-torch-env", *, inside_conda: bool = False
) -> argparse.ArgumentParser:
    parser = Parser(prog=prog)
    from conda_torch_plugin import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    configure_parser(parser, inside_conda=inside_conda)
    if not inside_conda:  # conda has its own completion; ours is for the console script
        from conda_torch_plugin.cli.completion import SHELLS, CompletionAction

        parser.add_argument(
            "--completion",
            choices=SHELLS,
            action=CompletionAction,
            help='print a shell completion script: eval "$(%(prog)s --completion bash)"',
        )
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
    from conda_torch_plugin.cli.render import terminal_safe_output

    if args.func is None:
        args._parser.print_help()
        return 0
    with terminal_safe_output():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from conda_torch_plugin.cli.render import print_error
    from conda_torch_plugin.errors import Declined, TorchEnvError

    try:
        with _terminate_as_interrupt():
            return int(args.func(args) or 0)
    except Declined as declined:
        print(declined.message, file=sys.stderr)
        return declined.exit_code
    except TorchEnvError as error:
        print_error(error, as_json=getattr(args, "json", False))
        return error.exit_code
    except KeyboardInterrupt as interrupt:
        # The shell's 128 + signal number: 130 for Ctrl-C, 143 for SIGTERM.
        print("Interrupted.", file=sys.stderr)
        return 128 + interrupt.signum if isinstance(interrupt, Terminated) else 130
    except BrokenPipeError:
        return _quiet_broken_pipe()
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


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM takes the KeyboardInterrupt path.

    So an install that is terminated removes its staging folder and leaves the
    prefix as it was, exactly as after Ctrl-C; an interrupt lost in a weakref
    callback is delivered again (``interrupts.lost_interrupts_redelivered``). The
    previous handler comes back when the command ends; only the main thread can
    install one.
    """
    import signal
    import threading

    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    from conda_torch_plugin.interrupts import lost_interrupts_redelivered

    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with lost_interrupts_redelivered():
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
        full_args = parse_command_line(build_parser("conda torch-env", inside_conda=True), argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    status = execute(full_args)
    if "rattler" in sys.modules:
        _flush_and_exit(status)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_command_line(parser, sys.argv[1:] if argv is None else argv)
    return execute(args)


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (`| head`, `| true`): stop quietly, as other CLIs do.

    stdout is pointed at /dev/null so that the final flush cannot raise again.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return BROKEN_PIPE_STATUS


def _flush_and_exit(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            status = status or _quiet_broken_pipe()
        except (OSError, ValueError):
            pass
    os._exit(status)


def run() -> None:
    """Console-script entry point (``conda-torch-env``).

    SIGTERM raises ``Terminated`` from the first line here to the exit, and once the
    status is known SIGINT/SIGTERM are ignored: an interrupt that lands around the
    command (while the parser is built, or after the command returned) prints
    "Interrupted." with the shell's status, never a traceback, and a late one cannot
    kill a command that has finished.
    """
    from conda_torch_plugin.interrupts import ignore as ignore_interrupts
    from conda_torch_plugin.interrupts import lost_interrupts_redelivered

    _terminate_raises()
    with lost_interrupts_redelivered():
        try:
            try:
                status = main()
            except SystemExit as exit_:  # argparse usage errors and --help
                code = exit_.code
                status = code if isinstance(code, int) else (0 if code is None else 2)
                if not isinstance(code, int) and code is not None:
                    print(code, file=sys.stderr)
            ignore_interrupts()
        except KeyboardInterrupt as interrupt:
            ignore_interrupts()
            print("Interrupted.", file=sys.stderr)
            status = 128 + interrupt.signum if isinstance(interrupt, Terminated) else 130
    # Skip interpreter teardown: py-rattler may crash there (see execute_in_conda).
    _flush_and_exit(status)


def _terminate_raises() -> None:
    import signal

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _raise_terminated)
