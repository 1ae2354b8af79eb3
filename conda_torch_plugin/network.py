"""Network settings for every download: a plain value, and the HTTP opener built from it.

``NetworkSettings`` holds what conda calls ``proxy_servers``, ``ssl_verify``,
``client_ssl_cert(_key)``, ``offline``, ``remote_max_retries``,
``remote_connect_timeout_secs`` and ``remote_read_timeout_secs``. Inside conda
``_conda.settings.network_settings`` builds it from conda's context; outside
conda ``from_environ`` builds it from the usual variables (``HTTPS_PROXY``,
``HTTP_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``,
``NETRC``, ``RATTLER_AUTH_FILE``; offline only with ``--offline``). The core
never reads conda: it gets the value passed in.

``open_url`` sends one request with those settings: through the proxy unless
``NO_PROXY`` names the host (a proxy's ``user:password@`` goes in
``Proxy-Authorization``, also for an HTTPS ``CONNECT`` tunnel), verifying TLS
against the CA bundle named (or not at all with ``ssl_verify: false``),
presenting the client certificate, and with credentials taken from the URL
(``user:password@``; a ``/t/TOKEN/`` path is sent as it is), else from
``.netrc``, else from rattler's auth file (``RATTLER_AUTH_FILE``). The connect
and read timeouts apply separately. Credentials never reach a message: callers
show URLs through ``condalock.lockfile.redact_credentials``.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_RETRIES = 3
DEFAULT_CONNECT_TIMEOUT = 9.15  # conda's remote_connect_timeout_secs default
DEFAULT_READ_TIMEOUT = 60.0  # conda's remote_read_timeout_secs default


@dataclass(frozen=True)
class NetworkSettings:
    """What every network access of this tool honours (see the module docstring)."""

    proxies: Mapping[str, str] = field(default_factory=dict)  # scheme -> proxy URL
    no_proxy: tuple[str, ...] = ()
    ssl_verify: bool | str = True  # True, False, or a CA bundle file or folder
    client_cert: str | None = None
    client_key: str | None = None
    offline: bool = False
    max_retries: int = DEFAULT_RETRIES
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    netrc: str | None = None  # the .netrc file to read, None for none
    auth_file: str | None = None  # rattler's auth file (JSON), None for none
    source: str = "environment"  # "conda" or "environment": where the values came from

    def with_offline(self, offline: bool) -> NetworkSettings:
        return replace(self, offline=offline) if offline else self


def from_environ(environ: Mapping[str, str] | None = None) -> NetworkSettings:
    """The settings outside conda: the variables curl, requests and pip read."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        return env.get(name) or env.get(name.lower()) or None

    proxies = {
        scheme: value
        for scheme, value in (("http", get("HTTP_PROXY")), ("https", get("HTTPS_PROXY")))
        if value
    }
    no_proxy = tuple(h.strip() for h in (get("NO_PROXY") or "").split(",") if h.strip())
    ca = env.get("REQUESTS_CA_BUNDLE") or env.get("SSL_CERT_FILE") or None
    return NetworkSettings(
        proxies=proxies,
        no_proxy=no_proxy,
        ssl_verify=ca if ca else True,
        netrc=default_netrc(env),
        auth_file=env.get("RATTLER_AUTH_FILE") or None,
    )


def default_netrc(environ: Mapping[str, str]) -> str | None:
    """``$NETRC``, else ``~/.netrc`` when it exists."""
    if environ.get("NETRC"):
        return environ["NETRC"]
    home = environ.get("HOME") or os.path.expanduser("~")
    path = os.path.join(home, ".netrc")
    return path if os.path.isfile(path) else None


# --- requests -------------------------------------------------------------------------


def ssl_context(settings: NetworkSettings) -> ssl.SSLContext:
    """The TLS context ``ssl_verify`` and ``client_ssl_cert(_key)`` ask for."""
    verify = settings.ssl_verify
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str):
        if os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify)
    else:
        context = ssl.create_default_context()
    if settings.client_cert:
        context.load_cert_chain(settings.client_cert, settings.client_key)
    return context


def bypasses_proxy(host: str, no_proxy: tuple[str, ...]) -> bool:
    """Whether ``NO_PROXY`` entries (``*``, a host, ``.domain``, ``domain``) name ``host``."""
    host = host.lower()
    for entry in no_proxy:
        entry = entry.lower().split(":", 1)[0] if entry.count(":") == 1 else entry.lower()
        if entry == "*":
            return True
        bare = entry.lstrip(".")
        if bare and (host == bare or host.endswith("." + bare)):
            return True
    return False


def _timed(base: type[http.client.HTTPConnection], read_timeout: float) -> Any:
    """``base`` whose socket gets ``read_timeout`` once connected (connect has its own)."""

    class Connection(base):  # type: ignore[misc,valid-type]
        def connect(self) -> None:
            super().connect()
            if self.sock is not None:
                self.sock.settimeout(read_timeout)

    return Connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self._connection = _timed(http.client.HTTPConnection, read_timeout)

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext, read_timeout: float) -> None:
        super().__init__(context=context)
        self._ssl = context
        self._connection = _timed(http.client.HTTPSConnection, read_timeout)

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(self._connection, req, context=self._ssl)


class Opener:
    """Sends requests with one ``NetworkSettings`` (see ``open_url``); safe across threads."""

    def __init__(self, settings: NetworkSettings) -> None:
        self.settings = settings
        context = ssl_context(settings)
        handlers = (
            _HTTPHandler(settings.read_timeout),
            _HTTPSHandler(context, settings.read_timeout),
        )
        self._direct = urllib.request.build_opener(urllib.request.ProxyHandler({}), *handlers)
        proxies = {k: v for k, v in settings.proxies.items() if k in ("http", "https")}
        self._proxied = (
            urllib.request.build_opener(
                urllib.request.ProxyHandler(proxies),
                _HTTPHandler(settings.read_timeout),
                _HTTPSHandler(context, settings.read_timeout),
            )
            if proxies
            else self._direct
        )
        self._netrc: dict[str, tuple[str, str]] | None = None

    def open(self, url: str, method: str = "GET", headers: Mapping[str, str] | None = None) -> Any:
        """The response to ``url`` (an ``http.client.HTTPResponse``); raises like urlopen."""
        request = self.request(url, method)
        for key, value in (headers or {}).items():
            request.add_unredirected_header(key, value)
        host = urllib.parse.urlsplit(request.full_url).hostname or ""
        opener = self._direct if bypasses_proxy(host, self.settings.no_proxy) else self._proxied
        return opener.open(request, timeout=self.settings.connect_timeout)

    def request(self, url: str, method: str = "GET") -> urllib.request.Request:
        """A request for ``url`` with its credentials as HTTP Basic (or Bearer) auth.

        urllib would take ``user:password@host`` for the host name. The header is
        not passed on if the server redirects elsewhere.
        """
        parts = urllib.parse.urlsplit(url)
        auth: str | None = None
        if "@" in parts.netloc:
            userinfo, host = parts.netloc.rsplit("@", 1)
            url = urllib.parse.urlunsplit(parts._replace(netloc=host))
            user, _, password = userinfo.partition(":")
            auth = _basic(urllib.parse.unquote(user), urllib.parse.unquote(password))
        elif parts.hostname:
            auth = self._stored_auth(parts.hostname)
        request = urllib.request.Request(url, method=method)
        if auth:
            request.add_unredirected_header("Authorization", auth)
        return request

    def _stored_auth(self, host: str) -> str | None:
        if self._netrc is None:
            self._netrc = _read_netrc(self.settings.netrc)
        if host in self._netrc:
            return _basic(*self._netrc[host])
        return _auth_file_entry(self.settings.auth_file, host)


def _basic(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _read_netrc(path: str | None) -> dict[str, tuple[str, str]]:
    """{host: (login, password)} of a ``.netrc`` file; an unreadable file gives nothing."""
    if not path:
        return {}
    import netrc

    try:
        parsed = netrc.netrc(path)
    except (OSError, netrc.NetrcParseError):
        return {}
    return {
        host: (login or "", password or "")
        for host, (login, _account, password) in parsed.hosts.items()
    }


def _auth_file_entry(path: str | None, host: str) -> str | None:
    """rattler's auth file: ``{host: {"BasicHTTP": {...}} | {"BearerToken": t}}``."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError):
        return None
    entry = data.get(host) if isinstance(data, dict) else None
    if not isinstance(entry, dict):
        return None
    basic = entry.get("BasicHTTP")
    if isinstance(basic, dict):
        return _basic(str(basic.get("username", "")), str(basic.get("password", "")))
    if isinstance(entry.get("BearerToken"), str):
        return f"Bearer {entry['BearerToken']}"
    return None


# --- rattler ----------------------------------------------------------------------------


def rattler_client(settings: NetworkSettings) -> Any:
    """A ``rattler.Client`` honouring ``settings``: proxies, ``NO_PROXY``, ``ssl_verify``
    (false, or a CA bundle read through ``SSL_CERT_FILE`` while the client is built),
    retries; credentials come from rattler's own storage (its auth file, ``.netrc``).

    Every gateway (repodata for ``lock`` and ``plan``) is made through ``gateway``.
    """
    from rattler import Client, Config

    lines = []
    if settings.ssl_verify is False:
        lines.append("tls-no-verify = true")
    proxy = [
        f"{scheme} = {json.dumps(url)}"
        for scheme, url in sorted(settings.proxies.items())
        if scheme in ("http", "https")
    ]
    if proxy:
        lines += ["[proxy-config]", *proxy]
        if settings.no_proxy:
            lines.append(f"non-proxy-hosts = {json.dumps(list(settings.no_proxy))}")
    config = Config.from_toml("\n".join(lines) + "\n")
    ca = settings.ssl_verify if isinstance(settings.ssl_verify, str) else None
    saved = os.environ.get("SSL_CERT_FILE")
    try:
        if ca and os.path.isfile(ca):  # the system roots rattler loads are read from it
            os.environ["SSL_CERT_FILE"] = ca
        return Client.from_config(config, max_retries=max(0, settings.max_retries))
    finally:
        if ca and os.path.isfile(ca):
            if saved is None:
                os.environ.pop("SSL_CERT_FILE", None)
            else:
                os.environ["SSL_CERT_FILE"] = saved


def gateway(settings: NetworkSettings, cache_dir: Any = None) -> Any:
    """A ``rattler.Gateway`` over ``rattler_client(settings)``; offline, cached repodata only."""
    from rattler import Gateway, SourceConfig

    config = SourceConfig(cache_action="force-cache-only") if settings.offline else None
    return Gateway(cache_dir=cache_dir, default_config=config, client=rattler_client(settings))


# --- tools run as subprocesses ----------------------------------------------------------


def subprocess_environment(
    settings: NetworkSettings, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``environ`` with ``settings`` as the variables uv (and curl-like tools) read:
    ``HTTP(S)_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE`` (a CA bundle path), ``NETRC``,
    ``UV_OFFLINE``, ``UV_HTTP_TIMEOUT`` and ``UV_HTTP_RETRIES``."""
    env = dict(os.environ if environ is None else environ)
    for scheme, url in settings.proxies.items():
        if scheme in ("http", "https"):
            env[f"{scheme.upper()}_PROXY"] = url
    if settings.no_proxy:
        env["NO_PROXY"] = ",".join(settings.no_proxy)
    if isinstance(settings.ssl_verify, str):
        env["SSL_CERT_FILE"] = settings.ssl_verify
    if settings.netrc:
        env["NETRC"] = settings.netrc
    if settings.offline:
        env["UV_OFFLINE"] = "1"
    env["UV_HTTP_TIMEOUT"] = str(int(max(settings.read_timeout, 1)))
    env["UV_HTTP_RETRIES"] = str(max(0, settings.max_retries))
    return env
