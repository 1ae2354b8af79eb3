"""Shared fixtures live in tests/support/ as pytest plugins, one module per fake."""

pytest_plugins = [
    "support.fake_nvml",
    "support.repodata",
    "support.packages",
    "support.offline",
]
