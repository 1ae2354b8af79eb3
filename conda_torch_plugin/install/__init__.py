"""Install one platform of a lock into a prefix, after checking this machine can run it.

One module per stage, each with its own docstring:

- ``_lock_check``: ``check_machine`` / ``MachineCheck``: the lock's platform and
  torch flavour against this machine (the rules are ``machine.check``'s, shared
  with the doctor). Pure; the CLI refuses on its errors unless ``--force``.
- ``model``: the types below (``InstallPlan``, ``PlannedPackage``, ``InstallResult``).
- ``_workflow``: ``prepare_install`` (what would be installed, from where, how much
  to download; changes nothing) and ``install_from_lock`` (does it).
- ``_fetch``: URL rewriting for ``--channel-alias`` mirrors, sizes, the
  download cache, and the sha256 (else md5) check of every archive against
  the lock before anything is linked.
- ``_archive_check``: every path a package (``info/paths.json``, tar members)
  or an existing ``conda-meta`` record names stays inside the prefix, and their
  metadata is well-formed, before rattler links or unlinks anything.
- ``_transaction``: link into a staging folder beside the prefix, swap it into
  place (rolling back on failure), ``conda-meta/`` records and ``history``.
- ``_prefix_lock``: one install at a time per prefix (a lock file beside it).
- ``_journal``: the swap journal, and recovery from a run that was killed.

- ``conda_installer``: the ``--installer conda`` backend (``conda create --file``).

So the prefix is either the complete new environment or exactly as it was. An
existing folder is only touched when it is empty or holds ``conda-meta/``.
"""

from __future__ import annotations

from conda_torch_plugin.findings import Finding
from conda_torch_plugin.install._fetch import (
    DOWNLOAD_WORKERS,
    channel_name,
    fetch_and_verify,
    rewrite_lock,
    rewrite_url,
)
from conda_torch_plugin.install._lock_check import (
    FleetCheck,
    LockRemedies,
    MachineCheck,
    check_fleet,
    check_machine,
)
from conda_torch_plugin.install._workflow import (
    CACHE_VARIABLE,
    default_cache_dir,
    install_from_lock,
    prefix_mode,
    prepare_install,
    recover_prefix,
)
from conda_torch_plugin.install.model import (
    InstallPlan,
    InstallProgress,
    InstallResult,
    PlannedPackage,
)

__all__ = [
    "CACHE_VARIABLE",
    "DOWNLOAD_WORKERS",
    "Finding",
    "InstallPlan",
    "InstallProgress",
    "InstallResult",
    "LockRemedies",
    "MachineCheck",
    "PlannedPackage",
    "channel_name",
    "FleetCheck",
    "check_fleet",
    "check_machine",
    "default_cache_dir",
    "fetch_and_verify",
    "install_from_lock",
    "prefix_mode",
    "prepare_install",
    "recover_prefix",
    "rewrite_lock",
    "rewrite_url",
]
