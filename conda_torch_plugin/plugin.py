"""conda plugin entry point: registers ``conda torch-env``.

conda imports this module on every command, so it imports nothing but conda's
plugin types at module level; the CLI (and everything heavy behind it) is only
imported when ``conda torch-env`` itself runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conda.plugins import CondaSubcommand, hookimpl

if TYPE_CHECKING:
    from argparse import ArgumentParser, Namespace
    from collections.abc import Iterator

SUMMARY = "Detect the GPU, then plan, write, lock and install a working PyTorch environment."


def _configure_parser(parser: ArgumentParser) -> None:
    from conda_torch_plugin.cli import configure_conda_parser

    configure_conda_parser(parser)


def _action(args: Namespace) -> int:
    from conda_torch_plugin.cli import execute_in_conda

    return execute_in_conda(args)


@hookimpl
def conda_subcommands() -> Iterator[CondaSubcommand]:
    yield CondaSubcommand(
        name="torch-env",
        summary=SUMMARY,
        action=_action,
        configure_parser=_configure_parser,
    )
