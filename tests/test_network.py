"""``network``: settings from the environment, and rattler's gateway (lock, plan) honouring
them against a loopback HTTPS mirror with a test CA and an authenticating CONNECT proxy."""

from __future__ import annotations

import asyncio

import pytest
from support.servers import connect_proxy, serve
from support.tls import make_ca

from conda_torch_plugin.network import NetworkSettings, bypasses_proxy, from_environ, gateway


def test_from_environ_reads_the_usual_variables(tmp_path):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine h login u password p\n")
    settings = from_environ(
        {
            "https_proxy": "http://p:3128",
            "HTTP_PROXY": "http://p:3129",
            "NO_PROXY": "localhost, .internal",
            "REQUESTS_CA_BUNDLE": "/ca.pem",
            "HOME": str(tmp_path),
        }
    )
    assert dict(settings.proxies) == {"http": "http://p:3129", "https": "http://p:3128"}
    assert settings.no_proxy == ("localhost", ".internal")
    assert settings.ssl_verify == "/ca.pem" and settings.netrc == str(netrc)
    assert from_environ({"SSL_CERT_FILE": "/x.pem"}).ssl_verify == "/x.pem"
    assert from_environ({}).ssl_verify is True and not from_environ({}).offline


@pytest.mark.parametrize(
    ("host", "entries", "bypass"),
    [
        ("a.internal", (".internal",), True),
        ("internal", (".internal",), True),
        ("xinternal", ("internal",), False),
        ("anything", ("*",), True),
        ("127.0.0.1", ("127.0.0.1:8080",), True),
        ("mirror", (), False),
    ],
)
def test_no_proxy_entries(host, entries, bypass):
    assert bypasses_proxy(host, entries) is bypass


def _query(settings: NetworkSettings, url: str, cache) -> int:
    from rattler import Channel

    records = asyncio.run(
        gateway(settings, cache).query([Channel(f"{url}/pytorch")], ["linux-64"], ["pytorch"])
    )
    return sum(len(r) for r in records)


@pytest.fixture
def clean_environment(monkeypatch):
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_gateway_trusts_the_ca_it_is_told(package_channels, tmp_path, clean_environment):
    tls = make_ca(tmp_path / "tls")
    with serve(package_channels, tls=tls) as url:
        with pytest.raises(Exception, match="error sending request"):
            _query(NetworkSettings(max_retries=0), url, tmp_path / "c0")
        assert _query(NetworkSettings(ssl_verify=str(tls.ca), max_retries=0), url, tmp_path / "c1")
        assert _query(NetworkSettings(ssl_verify=False, max_retries=0), url, tmp_path / "c2")


def test_gateway_goes_through_the_proxy(package_channels, tmp_path, clean_environment):
    tls = make_ca(tmp_path / "tls", ("mirror.invalid",))
    log: list[str] = []
    with serve(package_channels, tls=tls) as url:
        port = url.rsplit(":", 1)[1]
        hosts = {f"mirror.invalid:{port}": f"127.0.0.1:{port}"}
        with connect_proxy("erin", "pw-9", hosts, log) as proxy:
            settings = NetworkSettings(
                proxies={"https": proxy.replace("http://", "http://erin:pw-9@")},
                ssl_verify=str(tls.ca),
                max_retries=0,
            )
            assert _query(settings, f"https://mirror.invalid:{port}", tmp_path / "c")
    assert f"mirror.invalid:{port}" in log


def test_offline_gateway_reads_only_its_cache(package_channels, tmp_path, clean_environment):
    from support.servers import QuietHandler, logging_handler

    log: list[tuple[str, str]] = []
    offline = NetworkSettings(offline=True, max_retries=0)
    with serve(package_channels, logging_handler(QuietHandler, log)) as url:
        with pytest.raises(Exception, match="no usable repodata cache"):
            _query(offline, url, tmp_path / "c")
        assert log == []
        assert _query(NetworkSettings(max_retries=0), url, tmp_path / "c")
        log.clear()
        assert _query(offline, url, tmp_path / "c")
    assert log == []


def test_uv_gets_the_settings_as_its_variables():
    from conda_torch_plugin.network import subprocess_environment

    settings = NetworkSettings(
        proxies={"https": "http://u:p@proxy:3128"},
        no_proxy=("internal",),
        ssl_verify="/ca.pem",
        offline=True,
        netrc="/n/.netrc",
        max_retries=5,
        read_timeout=42.0,
    )
    env = subprocess_environment(settings, {"PATH": "/bin"})
    assert env == {
        "PATH": "/bin",
        "HTTPS_PROXY": "http://u:p@proxy:3128",
        "NO_PROXY": "internal",
        "SSL_CERT_FILE": "/ca.pem",
        "NETRC": "/n/.netrc",
        "UV_OFFLINE": "1",
        "UV_HTTP_TIMEOUT": "42",
        "UV_HTTP_RETRIES": "5",
    }


def test_plan_reads_channels_with_the_settings_it_is_given(
    package_channels, tmp_path, clean_environment
):
    from conda_torch_plugin.sources.records import ChannelUnavailable, query

    tls = make_ca(tmp_path / "tls")
    with serve(package_channels, tls=tls) as url:
        channel = f"{url}/pytorch"
        with pytest.raises(ChannelUnavailable):
            query(channel, ["linux-64"], network=NetworkSettings(max_retries=0))
        trusted = NetworkSettings(ssl_verify=str(tls.ca), max_retries=0)
        records = query(channel, ["linux-64"], network=trusted, cache_dir=tmp_path / "c")
    assert any(r.name == "pytorch" for r in records)
