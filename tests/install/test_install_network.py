"""Downloads with conda's network settings, against real loopback servers the tests start.

An HTTPS mirror with a CA the test makes, an HTTP CONNECT proxy with Basic auth
that the mirror is reachable only through (its host name is known to the proxy
alone), a mirror that wants ``.netrc`` credentials, a flaky server, a shared
package cache, and offline mode. Every server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import replace

import pytest
from support.packages import solved_lock
from support.servers import (
    QuietHandler,
    basic_auth_handler,
    connect_proxy,
    flaky_handler,
    logging_handler,
    serve,
)
from support.tls import make_ca

from conda_torch_plugin.compat import current_platform
from conda_torch_plugin.errors import InstallError
from conda_torch_plugin.install import install_from_lock, prepare_install
from conda_torch_plugin.network import NetworkSettings, from_environ

pytestmark = pytest.mark.skipif(
    current_platform() != "linux-64", reason="the test channels hold linux-64 packages only"
)
PLATFORM = "linux-64"
TORCH = "pytorch-2.5.1-py3.12_cpu_0"
SECRET = "pr0xy-S3CRET"


@pytest.fixture(scope="module")
def cpu_lock(package_channels):
    return solved_lock(
        package_channels, ("pytorch=2.5.1", "torchvision", "torchaudio", "cpuonly", "python=3.12")
    )


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("tls"), ("127.0.0.1", "mirror.invalid"))


@pytest.fixture
def no_ca_variables(monkeypatch):
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", "/nonexistent/.netrc")


def fake_conda(monkeypatch, **settings):
    """A stand-in for ``conda.base.context`` with ``settings`` (conda is not installable)."""
    context = types.SimpleNamespace(**settings)
    for name in ("conda", "conda.base", "conda.base.context"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["conda.base.context"].context = context  # type: ignore[attr-defined]
    return context


def install(lock, tmp_path, alias, network, name="env", **kw):
    return install_from_lock(
        lock,
        PLATFORM,
        tmp_path / name,
        cache_dir=tmp_path / "cache",
        channel_alias=alias,
        network=network,
        **kw,
    )


# --- TLS --------------------------------------------------------------------------------


def test_https_mirror_is_refused_without_its_ca(
    cpu_lock, package_channels, tls, tmp_path, no_ca_variables
):
    with serve(package_channels, tls=tls) as url, pytest.raises(InstallError) as info:
        install(cpu_lock, tmp_path, url, NetworkSettings(max_retries=0))
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    assert "nothing was installed" in str(info.value)
    assert not (tmp_path / "env").exists()


def test_https_mirror_is_accepted_with_ssl_verify_from_conda(
    cpu_lock, package_channels, tls, tmp_path, no_ca_variables, monkeypatch
):
    from conda_torch_plugin._conda import settings

    fake_conda(monkeypatch, ssl_verify=str(tls.ca), proxy_servers={}, offline=False)
    network = settings.network_settings()
    assert network is not None and network.ssl_verify == str(tls.ca)
    with serve(package_channels, tls=tls) as url:
        install(cpu_lock, tmp_path, url, network)
    assert (tmp_path / "env" / "conda-meta" / f"{TORCH}.json").is_file()


def test_https_mirror_is_accepted_with_ssl_cert_file_outside_conda(
    cpu_lock, package_channels, tls, tmp_path, no_ca_variables, monkeypatch
):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
    with serve(package_channels, tls=tls) as url:
        install(cpu_lock, tmp_path, url, from_environ())
    assert (tmp_path / "env" / "conda-meta" / f"{TORCH}.json").is_file()


def test_ssl_verify_false_accepts_any_certificate(
    cpu_lock, package_channels, tls, tmp_path, no_ca_variables, monkeypatch
):
    from conda_torch_plugin._conda import settings

    fake_conda(monkeypatch, ssl_verify=False)
    network = settings.network_settings()
    assert network is not None and network.ssl_verify is False
    with serve(package_channels, tls=tls) as url:
        install(cpu_lock, tmp_path, url, network)
    assert (tmp_path / "env" / "conda-meta").is_dir()


# --- proxy ------------------------------------------------------------------------------


def test_mirror_reachable_only_through_an_authenticating_proxy(
    cpu_lock, package_channels, tls, tmp_path, no_ca_variables, monkeypatch
):
    log: list[str] = []
    with serve(package_channels, tls=tls) as url:
        port = url.rsplit(":", 1)[1]
        alias = f"https://mirror.invalid:{port}"
        hosts = {f"mirror.invalid:{port}": f"127.0.0.1:{port}"}
        with connect_proxy("bob", SECRET, hosts, log) as proxy:
            base = NetworkSettings(ssl_verify=str(tls.ca), max_retries=0)
            # No proxy: the name resolves nowhere.
            with pytest.raises(InstallError):
                install(cpu_lock, tmp_path, alias, base)
            # The wrong password: the proxy refuses, and the message does not show it.
            wrong = proxy.replace("http://", "http://bob:wrong-PW@")
            with pytest.raises(InstallError) as info:
                install(cpu_lock, tmp_path, alias, replace(base, proxies={"https": wrong}))
            assert "407" in str(info.value) and "wrong-PW" not in str(info.value)
            # Through the proxy, from conda's proxy_servers.
            from conda_torch_plugin._conda import settings

            good = proxy.replace("http://", f"http://bob:{SECRET}@")
            fake_conda(monkeypatch, proxy_servers={"https": good}, ssl_verify=str(tls.ca))
            network = settings.network_settings()
            install(cpu_lock, tmp_path, alias, network)
    assert (tmp_path / "env" / "conda-meta" / f"{TORCH}.json").is_file()
    assert f"mirror.invalid:{port}" in log and f"mirror.invalid:{port} 407" in log
    record = json.loads((tmp_path / "env" / "conda-meta" / f"{TORCH}.json").read_text())
    assert SECRET not in json.dumps(record)


def test_no_proxy_sends_a_host_directly(cpu_lock, package_channels, tmp_path, no_ca_variables):
    log: list[str] = []
    with serve(package_channels) as url, connect_proxy("bob", SECRET, {}, log) as proxy:
        network = NetworkSettings(
            proxies={"http": proxy, "https": proxy}, no_proxy=("localhost", "127.0.0.1")
        )
        install(cpu_lock, tmp_path, url, network)
    assert log == []
    assert (tmp_path / "env" / "conda-meta").is_dir()


# --- credentials ------------------------------------------------------------------------


def test_netrc_credentials_open_a_password_protected_mirror(
    cpu_lock, package_channels, tmp_path, no_ca_variables, monkeypatch
):
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login carol password {SECRET}\n")
    netrc.chmod(0o600)
    with serve(package_channels, basic_auth_handler("carol", SECRET)) as url:
        with pytest.raises(InstallError) as info:  # without .netrc: 401
            install(cpu_lock, tmp_path, url, from_environ(), name="env0")
        assert "401" in str(info.value)
        monkeypatch.setenv("NETRC", str(netrc))
        install(cpu_lock, tmp_path, url, from_environ())
    assert (tmp_path / "env" / "conda-meta" / f"{TORCH}.json").is_file()
    assert not (tmp_path / "env0").exists()
    for path in (tmp_path / "env" / "conda-meta").iterdir():
        assert SECRET not in path.read_text()


def test_rattler_auth_file_credentials(
    cpu_lock, package_channels, tmp_path, no_ca_variables, monkeypatch
):
    auth = tmp_path / "auth.json"
    auth.write_text(
        json.dumps({"127.0.0.1": {"BasicHTTP": {"username": "dave", "password": SECRET}}})
    )
    monkeypatch.setenv("RATTLER_AUTH_FILE", str(auth))
    with serve(package_channels, basic_auth_handler("dave", SECRET)) as url:
        install(cpu_lock, tmp_path, url, from_environ())
    assert (tmp_path / "env" / "conda-meta" / f"{TORCH}.json").is_file()


# --- faults and retries -------------------------------------------------------------------


def test_a_retry_survives_a_500_a_reset_and_a_short_body(
    cpu_lock, package_channels, tmp_path, no_ca_variables
):
    faults = ["500", "reset", "truncate"]
    log: list[tuple[str, str]] = []
    handler = logging_handler(flaky_handler(f"{TORCH}.tar.bz2", faults), log)
    with serve(package_channels, handler) as url:
        install(cpu_lock, tmp_path, url, NetworkSettings(max_retries=3))
    assert faults == []
    assert sum(1 for method, path in log if method == "GET" and TORCH in path) == 4
    assert (tmp_path / "env" / "conda-meta" / f"{TORCH}.json").is_file()


def test_a_persistent_fault_fails_cleanly_naming_the_package_and_url(
    cpu_lock, package_channels, tmp_path, no_ca_variables
):
    handler = flaky_handler(f"{TORCH}.tar.bz2", ["always500"])
    with serve(package_channels, handler) as url, pytest.raises(InstallError) as info:
        install(cpu_lock, tmp_path, url, NetworkSettings(max_retries=2))
    message = str(info.value)
    assert f"{TORCH} ({url}/pytorch/linux-64/{TORCH}.tar.bz2)" in message
    assert "500" in message and "nothing was installed" in message
    assert not (tmp_path / "env").exists()
    assert not list((tmp_path / "cache" / "pkgs").glob(f"*{TORCH}*"))


# --- one package cache ----------------------------------------------------------------------


def test_a_filled_package_cache_makes_a_second_install_download_nothing(
    cpu_lock, package_channels, tmp_path, no_ca_variables
):
    pkgs = tmp_path / "pkgs"  # conda's pkgs_dirs inside conda
    log: list[tuple[str, str]] = []
    with serve(package_channels, logging_handler(QuietHandler, log)) as url:
        install(cpu_lock, tmp_path, url, NetworkSettings(), name="env1", pkgs_dir=pkgs)
        assert sum(1 for method, _ in log if method == "GET") == len(cpu_lock.packages)
        # conda's layout: the archive and the extracted folder side by side.
        assert (pkgs / f"{TORCH}.tar.bz2").is_file()
        assert (pkgs / TORCH / "info" / "index.json").is_file()
        log.clear()
        plan = prepare_install(
            cpu_lock,
            PLATFORM,
            tmp_path / "env2",
            cache_dir=tmp_path / "other",
            channel_alias=url,
            pkgs_dir=pkgs,
        )
        assert plan.download_count == 0
        install_from_lock(cpu_lock, PLATFORM, tmp_path / "env2", plan=plan)
    assert log == []
    assert (tmp_path / "env2" / "conda-meta" / f"{TORCH}.json").is_file()


def test_an_archive_in_the_cache_is_verified_against_the_lock(
    cpu_lock, package_channels, tmp_path, no_ca_variables
):
    pkgs = tmp_path / "pkgs"
    pkgs.mkdir()
    (pkgs / f"{TORCH}.tar.bz2").write_bytes(b"not the locked archive")
    log: list[tuple[str, str]] = []
    with serve(package_channels, logging_handler(QuietHandler, log)) as url:
        install(cpu_lock, tmp_path, url, NetworkSettings(), pkgs_dir=pkgs)
    assert ("GET", f"/pytorch/linux-64/{TORCH}.tar.bz2") in log  # downloaded again
    assert (pkgs / f"{TORCH}.tar.bz2").read_bytes() != b"not the locked archive"


def test_conda_pkgs_dirs_first_writable_folder(tmp_path, monkeypatch):
    from conda_torch_plugin._conda import settings

    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        fake_conda(monkeypatch, pkgs_dirs=[str(readonly), str(tmp_path / "new" / "pkgs")])
        import os

        expected = str(tmp_path / "new" / "pkgs")
        assert settings.package_cache() == (expected if os.geteuid() != 0 else str(readonly))
    finally:
        readonly.chmod(0o700)


# --- offline ------------------------------------------------------------------------------


def test_offline_uses_only_the_cache_and_names_what_is_missing(
    cpu_lock, package_channels, tmp_path, no_ca_variables
):
    log: list[tuple[str, str]] = []
    offline = NetworkSettings(offline=True)
    count = len(cpu_lock.packages)
    with serve(package_channels, logging_handler(QuietHandler, log)) as url:
        with pytest.raises(InstallError) as info:
            install(cpu_lock, tmp_path, url, offline, name="env0")
        assert f"offline mode: {count} packages are not in the package cache" in str(info.value)
        assert log == [] and not (tmp_path / "env0").exists()
        install(cpu_lock, tmp_path, url, NetworkSettings(), name="env1")
        log.clear()
        install(cpu_lock, tmp_path, url, offline, name="env2")
        assert log == []
        (tmp_path / "cache" / "pkgs" / f"{TORCH}.tar.bz2").unlink()
        with pytest.raises(InstallError) as info:
            install(cpu_lock, tmp_path, url, offline, name="env3")
    assert log == []
    assert f"1 package is not in the package cache {tmp_path / 'cache' / 'pkgs'}: {TORCH}" in (
        str(info.value)
    )
    assert (tmp_path / "env2" / "conda-meta" / f"{TORCH}.json").is_file()
    assert not (tmp_path / "env3").exists()


def test_conda_settings_become_network_settings(monkeypatch, no_ca_variables):
    from conda_torch_plugin._conda import settings

    monkeypatch.setenv("NO_PROXY", "internal.example")
    fake_conda(
        monkeypatch,
        proxy_servers={"http": "http://p:1", "https": "http://p:2"},
        ssl_verify="~/ca.pem",
        client_ssl_cert="/c.pem",
        client_ssl_cert_key="/k.pem",
        offline=True,
        remote_max_retries=7,
        remote_connect_timeout_secs=2.5,
        remote_read_timeout_secs=33.0,
    )
    network = settings.network_settings()
    assert network is not None
    assert dict(network.proxies) == {"http": "http://p:1", "https": "http://p:2"}
    assert network.no_proxy == ("internal.example",)
    assert isinstance(network.ssl_verify, str) and network.ssl_verify.endswith("/ca.pem")
    assert (network.client_cert, network.client_key) == ("/c.pem", "/k.pem")
    assert network.offline and network.max_retries == 7
    assert (network.connect_timeout, network.read_timeout) == (2.5, 33.0)
    assert network.source == "conda"


def test_outside_conda_there_are_no_conda_settings():
    from conda_torch_plugin._conda import settings

    if "conda.base.context" in sys.modules:
        pytest.skip("a conda is importable here")
    assert settings.network_settings() is None and settings.package_cache() is None
