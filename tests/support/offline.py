"""Plans in tests read no real channel: conda's offline setting is on, and py-rattler's
repodata cache is a folder of the test session's own, so a plan comes from the snapshot
bundled with the package unless a test names a ``file://`` channel (``--channel-alias``)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def _session_rattler_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("rattler-cache"))


@pytest.fixture(autouse=True)
def _offline_plans(monkeypatch: pytest.MonkeyPatch, _session_rattler_cache: str) -> None:
    monkeypatch.setenv("CONDA_OFFLINE", "true")
    monkeypatch.setenv("RATTLER_CACHE_DIR", _session_rattler_cache)
