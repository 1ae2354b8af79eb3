"""conda plugin entry point: ``conda torch-env`` and the hooks where this tool fits conda.

- ``conda_subcommands``: ``conda torch-env``.
- ``conda_health_checks``: ``conda doctor`` reports torch-env's findings for the
  environment it inspects (the checks of ``conda torch-env doctor``, without
  running the environment's python).
- ``conda_error_hints`` (conda 26.7 and later; not registered on older conda): when
  conda fails to solve a ``pytorch``, ``pytorch-cuda`` or ``__cuda`` request,
  the error points to ``conda torch-env plan``.
- ``conda_settings``: this plugin's own defaults in ``.condarc``
  (``torch_env_default_source``), read through ``_conda.settings.plugin_setting``.

conda imports this module on every command, so it imports nothing but conda's
plugin API at module level; each hook imports what it needs when conda calls it,
and the CLI (and everything heavy behind it) only when ``conda torch-env`` runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conda.plugins import CondaSubcommand, hookimpl

if TYPE_CHECKING:
    from argparse import ArgumentParser, Namespace
    from collections.abc import Iterator

    from conda.plugins.types import CondaSetting

SUMMARY = "Detect the GPU, then plan, write, lock and install a working PyTorch environment."
HINT_CODE = "torch_env_plan"
# The names conda's solvers raise when a request cannot be met.
_SOLVE_ERRORS = frozenset(
    {
        "PackagesNotFoundError",
        "PackagesNotFoundInChannelsError",
        "ResolvePackageNotFound",
        "UnsatisfiableError",
        "LibMambaUnsatisfiableError",
        "SpecsConfigurationConflictError",
    }
)
_TORCH_WORDS = ("pytorch", "pytorch-cuda", "__cuda")


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


def _health_check(prefix: str, verbose: bool) -> None:
    from conda_torch_plugin.cli.doctor import health_check

    health_check(prefix, verbose)


@hookimpl
def conda_health_checks() -> Iterator[Any]:
    try:
        from conda.plugins.types import CondaHealthCheck
    except ImportError:  # a conda without conda doctor's hook
        return
    yield CondaHealthCheck(name="torch-env", action=_health_check)


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


def error_hints(error: BaseException) -> list[tuple[str, str]]:
    """(text, code) hints for a conda error: a failed solve that names PyTorch or CUDA."""
    names = {cls.__name__ for cls in type(error).__mro__}
    if not names & _SOLVE_ERRORS:
        return []
    text = str(error).lower()
    if not any(word in text for word in _TORCH_WORDS):
        return []
    return [
        (
            "conda torch-env plan shows which PyTorch build, CUDA variant and channels "
            "fit this machine, and why; conda torch-env create builds that environment",
            HINT_CODE,
        )
    ]


def _has_hookspec(name: str) -> bool:
    try:
        from conda.plugins.hookspec import CondaSpecs
    except ImportError:
        return False
    return hasattr(CondaSpecs, name)


if _has_hookspec("conda_error_hints"):  # conda 26.7+; an older conda has no such hook

    @hookimpl
    def conda_error_hints(error: BaseException) -> Iterator[Any]:
        from conda.plugins.types import CondaErrorHint

        for text, code in error_hints(error):
            yield CondaErrorHint(text=text, hint_code=code)
