"""The real pytorch-channel repodata in ``../shared/data``, and the skip for where it is absent.

The data lives beside the checkout (``../shared`` from the project root) and is never
copied into the project; a test that reads it skips, saying why, where it is not there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
REAL_PYTORCH_REPODATA = SHARED_DATA / "pytorch-channel-2023-10" / "linux-64" / "repodata.json"
ABSENT_REASON = f"{REAL_PYTORCH_REPODATA} is absent (../shared is not checked out)"

needs_real_repodata = pytest.mark.skipif(not REAL_PYTORCH_REPODATA.is_file(), reason=ABSENT_REASON)


def real_pytorch_repodata() -> Path:
    """The repodata.json path; skips the calling test (or fixture) where it is absent."""
    if not REAL_PYTORCH_REPODATA.is_file():
        pytest.skip(ABSENT_REASON)
    return REAL_PYTORCH_REPODATA
