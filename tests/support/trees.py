"""A folder tree as data, to assert that a command left every file as it was."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content hash (or link target): 'byte-identical'."""
    tree = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            tree[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            tree[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            tree[rel] = "dir"
    return tree
