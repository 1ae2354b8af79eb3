"""conda's own settings, read through conda's ``context`` when conda is importable.

The only module besides ``plugin.py`` that imports conda, and only inside its
functions: the core never imports conda. Every function returns a neutral value
(empty list, ``None``, empty dict) when conda is not importable, so callers
need no special case for running outside conda.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conda_torch_plugin.network import NetworkSettings


def _context() -> Any | None:
    try:
        from conda.base.context import context
    except ImportError:
        return None
    return context


def envs_dirs() -> list[str]:
    """conda's ``envs_dirs`` in priority order ([] without conda)."""
    context = _context()
    if context is None:
        return []
    return [str(path) for path in context.envs_dirs]


def channel_alias() -> str | None:
    """conda's ``channel_alias`` base URL ("https://conda.anaconda.org"), None without conda."""
    context = _context()
    if context is None:
        return None
    alias = context.channel_alias
    return str(getattr(alias, "base_url", alias)).rstrip("/") or None


def custom_channels() -> dict[str, str]:
    """conda's ``custom_channels`` as {channel name: base URL of that channel}."""
    context = _context()
    if context is None:
        return {}
    result = {}
    for name, channel in dict(context.custom_channels).items():
        base = getattr(channel, "base_url", None)
        if base:
            result[str(name)] = str(base).rstrip("/")
    return result


def conda_exe() -> str | None:
    """The conda executable: ``$CONDA_EXE`` (set by conda's shell hook), else ``conda`` on
    PATH, else, when this process runs inside conda (``conda torch-env``), the ``conda``
    entry point of the installation it runs from.

    ``--installer conda`` also works from the ``conda-torch-env`` console script
    when a conda executable exists.
    """
    candidate = os.environ.get("CONDA_EXE")
    if _is_executable(candidate):
        return candidate
    found = shutil.which("conda")
    if found or _context() is None:
        return found
    # Inside conda without its shell hook (a plain `/opt/conda/bin/conda torch-env ...`):
    # conda's own entry point sits beside the python running us.
    for candidate in (
        os.path.join(sys.prefix, "bin", "conda"),
        os.path.join(sys.prefix, "condabin", "conda"),
        os.path.join(sys.prefix, "Scripts", "conda.exe"),
    ):
        if _is_executable(candidate):
            return candidate
    return None


def _is_executable(path: str | None) -> bool:
    return bool(path) and os.path.isfile(str(path)) and os.access(str(path), os.X_OK)


def register_env(prefix: str) -> None:
    """Record ``prefix`` in conda's environments.txt (``conda env list`` reads it).

    A no-op without conda.
    """
    try:
        from conda.core.envs_manager import register_env as conda_register_env
    except ImportError:
        return
    try:
        conda_register_env(prefix)
    except Exception:  # noqa: BLE001 - registering is a convenience; never fail an install over it
        return


def network_settings() -> NetworkSettings | None:
    """conda's network settings as a ``NetworkSettings`` (None without conda).

    ``proxy_servers`` (over ``HTTP(S)_PROXY``, as requests merges them in conda),
    ``ssl_verify`` (true, false, or a CA bundle path; "truststore" counts as
    true), ``client_ssl_cert`` / ``client_ssl_cert_key``, ``offline``,
    ``remote_max_retries``, ``remote_connect_timeout_secs`` and
    ``remote_read_timeout_secs``. ``NO_PROXY`` and ``.netrc`` come from the
    environment, as they do for conda's own requests.
    """
    context = _context()
    if context is None:
        return None
    from dataclasses import replace

    from conda_torch_plugin import network

    base = network.from_environ()
    proxies = dict(base.proxies)
    for scheme, url in dict(getattr(context, "proxy_servers", None) or {}).items():
        if url:
            proxies[str(scheme).split("://", 1)[0]] = str(url)
    verify = getattr(context, "ssl_verify", True)
    ssl_verify: bool | str
    if isinstance(verify, str) and verify.lower() not in ("true", "truststore", ""):
        ssl_verify = False if verify.lower() == "false" else os.path.expanduser(verify)
    else:
        ssl_verify = bool(verify) if not isinstance(verify, str) else True
    return replace(
        base,
        proxies=proxies,
        ssl_verify=ssl_verify,
        client_cert=_optional_str(getattr(context, "client_ssl_cert", None)),
        client_key=_optional_str(getattr(context, "client_ssl_cert_key", None)),
        offline=bool(getattr(context, "offline", False)),
        max_retries=int(getattr(context, "remote_max_retries", network.DEFAULT_RETRIES)),
        connect_timeout=float(
            getattr(context, "remote_connect_timeout_secs", network.DEFAULT_CONNECT_TIMEOUT)
        ),
        read_timeout=float(
            getattr(context, "remote_read_timeout_secs", network.DEFAULT_READ_TIMEOUT)
        ),
        source="conda",
    )


def _optional_str(value: object) -> str | None:
    return os.path.expanduser(str(value)) if value else None


def package_cache() -> str | None:
    """conda's first writable ``pkgs_dirs`` folder (None without conda, or none writable).

    Archives and extracted packages there are conda's and this tool's alike.
    """
    context = _context()
    if context is None:
        return None
    for folder in getattr(context, "pkgs_dirs", ()) or ():
        path = os.path.expanduser(str(folder))
        if os.path.isdir(path):
            if os.access(path, os.W_OK | os.X_OK):
                return path
            continue
        parent = os.path.dirname(path.rstrip(os.sep)) or path
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if parent and os.access(parent, os.W_OK | os.X_OK):
            return path
    return None


def offline() -> bool:
    """conda's ``offline`` setting (False without conda)."""
    context = _context()
    return bool(getattr(context, "offline", False)) if context is not None else False


def plugin_setting(name: str) -> str | None:
    """A setting a plugin registered through ``conda_settings`` (``context.plugins.NAME``),
    as text; None without conda, or when it is not set or not registered."""
    context = _context()
    plugins = getattr(context, "plugins", None) if context is not None else None
    value = getattr(plugins, name, None) if plugins is not None else None
    return str(value) if value else None
