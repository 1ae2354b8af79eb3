"""Recovering from a run that died: the swap journal and the leftovers of dead runs.

Everything here runs while the prefix lock is held (``_prefix_lock``), so no
other live install of this prefix exists, and every folder found is a dead
run's.

Names, all beside the prefix ``PARENT/NAME``:

- ``.NAME.staging-PID-XXXXXXXX``: the new environment while it is built;
- ``.NAME.old-PID-XXXXXXXX``: the old environment during the swap;
- ``.NAME.torch-env-txn.json``: the journal of a swap in progress (and
  ``..NAME.torch-env-txn.json.*.tmp`` while it is written).

The PID in a folder name is the run's; a folder whose run is still alive is
never removed (a second guard beside the lock, for a run of another version of
this tool that does not take the lock).

The swap of an existing environment is two renames (prefix to old, staging to
prefix). The journal, naming both folders, is written atomically before the
first and removed after the old one is deleted, so a run killed at any instant
leaves a state the next run (``recover``) resolves:

- prefix absent, old present: killed between the renames: the old environment
  is renamed back (the update is rolled back; the half-finished run reported
  no success);
- prefix present: it is the old environment (first rename not done) or the new
  one (both done): the other folder is deleted.

A new environment is one rename and needs no journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from conda_torch_plugin.atomic import atomic_write_text

_TOKEN = re.compile(r"(?:(\d+)-)?[A-Za-z0-9_]{8}")


def journal_path(prefix: Path) -> Path:
    return prefix.parent / f".{prefix.name}.torch-env-txn.json"


def staging_stem(prefix: Path) -> str:
    """The ``mkdtemp`` prefix of this run's staging folder: ``.NAME.staging-PID-``."""
    return f".{prefix.name}.staging-{os.getpid()}-"


def backup_path(prefix: Path) -> Path:
    """A fresh name for the old environment during the swap: ``.NAME.old-PID-XXXXXXXX``."""
    return prefix.parent / f".{prefix.name}.old-{os.getpid()}-{secrets.token_hex(4)}"


def begin_swap(prefix: Path, staging: Path, backup: Path) -> None:
    """Record the swap about to happen (atomically: the journal is whole or absent)."""
    record = {
        "version": 1,
        "pid": os.getpid(),
        "prefix": prefix.name,
        "staging": staging.name,
        "backup": backup.name,
        "step": "swap",
    }
    atomic_write_text(journal_path(prefix), json.dumps(record, indent=2) + "\n")


def end_swap(prefix: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        journal_path(prefix).unlink()


def recover(prefix: Path) -> list[str]:
    """Finish or roll back a dead run's swap, then remove dead runs' leftovers.

    Call with the prefix lock held. Returns what was done, one sentence each.
    """
    done = []
    journal = journal_path(prefix)
    record = _read_journal(journal)
    if record is not None:
        backup = _own_folder(prefix, record.get("backup"), "old")
        if backup is not None and not os.path.lexists(prefix) and backup.is_dir():
            os.rename(backup, prefix)
            done.append(f"restored {prefix} from an update that was interrupted during its swap")
    for leftover in dead_leftovers(prefix):
        remove_tree(leftover)
        done.append(f"removed {leftover.name}, left by an interrupted install")
    if record is not None or journal.exists():
        end_swap(prefix)
    return done


def dead_leftovers(prefix: Path) -> list[Path]:
    """Staging and old folders of this prefix whose run is not alive."""
    found = []
    with contextlib.suppress(OSError):
        for entry in prefix.parent.iterdir():
            for kind in ("staging", "old"):
                stem = f".{prefix.name}.{kind}-"
                if not entry.name.startswith(stem):
                    continue
                match = _TOKEN.fullmatch(entry.name[len(stem) :])
                if match is None:
                    continue
                pid = int(match.group(1)) if match.group(1) else None
                if pid is None or not _alive(pid):
                    found.append(entry)
            # A journal whose atomic write was cut short (journals are written under the lock).
            journal = journal_path(prefix).name
            if entry.name.startswith(f".{journal}.") and entry.name.endswith(".tmp"):
                found.append(entry)
    return sorted(found)


def remove_tree(path: Path) -> None:
    """Delete a folder, again if something recreates it within a moment.

    py-rattler may still write ``conda-meta/`` into a staging folder after its
    ``install`` failed or was cancelled (its linking threads finish what they
    started); a single ``rmtree`` would then leave that folder behind. So the
    folder must stay gone for three checks 50 ms apart, within about two seconds
    (a failed or interrupted install pays 150 ms for it).
    """
    quiet = 0
    for _ in range(40):
        if os.path.lexists(path):
            quiet = 0
            shutil.rmtree(path, ignore_errors=True)
            if os.path.lexists(path) and not path.is_dir():
                with contextlib.suppress(OSError):
                    path.unlink()
        time.sleep(0.05)
        if os.path.lexists(path):
            quiet = 0
            continue
        quiet += 1
        if quiet == 3:
            return


def _read_journal(journal: Path) -> dict[str, object] | None:
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _own_folder(prefix: Path, name: object, kind: str) -> Path | None:
    """``name`` from the journal, if it is one of this prefix's ``kind`` folders (nothing else)."""
    if not isinstance(name, str):
        return None
    stem = f".{prefix.name}.{kind}-"
    if not name.startswith(stem) or _TOKEN.fullmatch(name[len(stem) :]) is None:
        return None
    return prefix.parent / name


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier transaction of this process, which is over
    if os.name == "nt":  # pragma: no cover - the lock alone guards on Windows
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass  # exists, owned by someone else
    with contextlib.suppress(OSError, IndexError):
        # A killed run its parent has not reaped yet is a zombie: dead, though kill() finds it.
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True
