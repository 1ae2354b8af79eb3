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

    from conda.plugins.types import CondaSetting

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


@hookimpl
def conda_settings() -> Iterator[CondaSetting]:
    """``torch_env_default_source`` in .condarc: the --source a team uses by default.

    conda loads its own configuration classes before it asks for settings, so the
    imports here cost nothing; they stay inside so that a conda without this hook
    still imports the module.
    """
    from conda.common.configuration import PrimitiveParameter
    from conda.plugins.types import CondaSetting

    yield CondaSetting(
        name="torch_env_default_source",
        description="Where `conda torch-env` takes PyTorch from when --source is not given: "
        "auto, pytorch or conda-forge (default: auto).",
        parameter=PrimitiveParameter("", element_type=str),
    )
