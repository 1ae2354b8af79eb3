"""Hostile input files: alias bombs, FIFOs, devices, deep nesting, tags, huge files, ESC sequences.

Each file is handed to the real command line in a subprocess, with a time limit
(a FIFO must not block) and, for the alias bombs, an address-space limit of 1 GiB
(a regression fails with a MemoryError instead of eating the machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from support.cli import run_main

from conda_torch_plugin.condalock.envspec import read_environment, read_virtual_packages
from conda_torch_plugin.condalock.lockfile import read_lockfile
from conda_torch_plugin.errors import EnvFileError, LockError
from conda_torch_plugin.inputs import ENVIRONMENT_FILE, LOCK_FILE, MiB

if TYPE_CHECKING:
    from pathlib import Path

ADDRESS_SPACE = 1024 * MiB
WRITE_MACHINE = ["--cuda", "12.4", "--gpu-arch", "8.6", "--platform", "linux-64"]
ENVIRONMENT = (
    "name: t\nchannels:\n  - conda-forge\nplatforms:\n  - linux-64\ndependencies:\n  - numpy\n"
)
VIRTUAL_PACKAGES = 'subdirs:\n  linux-64:\n    packages:\n      __glibc: "2.28"\n'
LOCK_HEAD = (
    "version: 1\nmetadata:\n  content_hash:\n    linux-64: abc\n  channels:\n"
    "  - url: conda-forge\n    used_env_vars: []\n  platforms:\n  - linux-64\n"
    "  sources:\n  - environment.yml\n"
)


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_limited(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess with at most 1 GiB of address space and ``timeout`` seconds."""
    env = {k: v for k, v in os.environ.items() if k != "CONDA_OVERRIDE_CUDA"}
    env["CONDA_TORCH_ENV_CACHE_DIR"] = str(cwd / "cache")
    return subprocess.run(
        [sys.executable, "-m", "conda_torch_plugin", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit_memory,  # noqa: PLW1509 - no threads started yet in the test
        check=False,
    )


def assert_refused(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr[-2000:]


def alias_bomb(item: str = "a{i}: ") -> str:
    """Nine levels of nine aliases each: some 570 bytes that expand to 9**9 strings."""
    first = item.format(i=0) + '&a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
    lines = [first]
    lines += [item.format(i=i) + f"&a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# alias bombs


def test_alias_bomb_in_environment_file_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    # `name` is str()-ed: 9**9 strings of text unless the aliases are refused.
    text = "name:\n" + alias_bomb("  - ") + "dependencies:\n  - numpy\n"
    assert len(text) < 600
    (tmp_path / "environment.yml").write_text(text)
    result = run_limited("lock", "-f", "environment.yml", cwd=tmp_path)
    assert_refused(result, "environment.yml, line 2:", "anchors and aliases")


def test_alias_bomb_in_virtual_packages_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_text(ENVIRONMENT)
    # A version that is not a string is shown in the message: its repr is gigabytes.
    bomb = alias_bomb() + "subdirs:\n  linux-64:\n    packages:\n      __cuda: *a8\n"
    (tmp_path / "virtual-packages.yml").write_text(bomb)
    result = run_limited("lock", "-f", "environment.yml", cwd=tmp_path)
    assert_refused(result, "virtual-packages.yml, line 1:", "anchors and aliases")


def test_alias_bomb_in_lock_file_is_refused(tmp_path: Path) -> None:
    # A package's name is str()-ed for its messages.
    lock = LOCK_HEAD + alias_bomb() + "package:\n- name: *a8\n  platform: linux-64\n"
    (tmp_path / "conda-lock.yml").write_text(lock)
    result = run_limited("install", "--dry-run", "--yes", "-p", str(tmp_path / "env"), cwd=tmp_path)
    assert_refused(result, "conda-lock.yml, line 12:", "anchors and aliases")


@pytest.mark.parametrize(
    "text",
    [
        "name: t\nbase: &b\n  - numpy\ndependencies: *b\n",
        "name: t\ndependencies:\n  - &n numpy\n  - *n\n",
        "name: t\ndependencies:\n  - {<<: &m {a: 1}}\n",
    ],
    ids=["alias-of-a-list", "anchor-on-an-item", "merge-key"],
)
def test_any_anchor_in_an_environment_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "environment.yml"
    path.write_text(text)
    with pytest.raises(EnvFileError, match="anchors and aliases"):
        read_environment(path)


def test_an_anchor_inside_a_quoted_string_is_text(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text('name: "&x *y"\nchannels: ["&c"]\ndependencies:\n  - "numpy # *z"\n')
    spec = read_environment(path, platforms=["linux-64"])
    assert spec.name == "&x *y" and spec.channels == ("&c",)


# --------------------------------------------------------------------------------------
# FIFOs and devices


@pytest.fixture
def fifo(tmp_path: Path):
    def make(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        return path

    return make


def test_fifo_as_environment_file_for_lock(tmp_path: Path, fifo) -> None:
    fifo(tmp_path / "environment.yml")
    result = run_limited("lock", "-f", "environment.yml", cwd=tmp_path, timeout=30)
    assert_refused(result, "environment.yml is a FIFO (named pipe), not a file")
    assert "not found" not in result.stderr


def test_fifo_as_environment_file_for_write(tmp_path: Path, fifo) -> None:
    fifo(tmp_path / "environment.yml")
    result = run_limited("write", "-f", "environment.yml", *WRITE_MACHINE, cwd=tmp_path, timeout=30)
    assert_refused(result, "is a FIFO (named pipe), not a file")
    assert not (tmp_path / "virtual-packages.yml").exists()


def test_fifo_as_virtual_packages_file(tmp_path: Path, fifo) -> None:
    (tmp_path / "environment.yml").write_text(ENVIRONMENT)
    fifo(tmp_path / "virtual-packages.yml")
    result = run_limited("lock", "-f", "environment.yml", cwd=tmp_path, timeout=30)
    assert_refused(result, "virtual-packages.yml is a FIFO (named pipe), not a file")


def test_fifo_as_virtual_package_spec_is_not_called_missing(tmp_path: Path, fifo) -> None:
    (tmp_path / "environment.yml").write_text(ENVIRONMENT)
    fifo(tmp_path / "vp" / "spec.yml")
    result = run_limited(
        "lock", "-f", "environment.yml", "--virtual-package-spec", "vp/spec.yml",
        cwd=tmp_path, timeout=30,
    )  # fmt: skip
    assert_refused(result, "spec.yml is a FIFO (named pipe), not a file")


@pytest.mark.parametrize("verb", ["install", "lock-check"])
def test_fifo_as_lock_file(tmp_path: Path, fifo, verb: str) -> None:
    fifo(tmp_path / "conda-lock.yml")
    if verb == "install":
        args = ["install", "--dry-run", "--yes", "-p", str(tmp_path / "env")]
    else:
        (tmp_path / "environment.yml").write_text(ENVIRONMENT)
        args = ["lock", "--check", "-f", "environment.yml"]
    result = run_limited(*args, cwd=tmp_path, timeout=30)
    assert_refused(result, "conda-lock.yml is a FIFO (named pipe), not a file")


@pytest.mark.parametrize(
    ("reader", "expected"),
    [
        (
            "from conda_torch_plugin.doctor._prefix import read_records\n"
            "records, problems = read_records(prefix)\n"
            "print(sorted(records)); print(problems[0].message)\n",
            ["['numpy']", "evil-1-0.json", "FIFO"],
        ),
        (
            "from conda_torch_plugin.install._workflow import installed_packages\n"
            "print(sorted(installed_packages(prefix)))\n",
            ["['numpy']"],
        ),
    ],
    ids=["doctor", "install-update"],
)
def test_fifo_as_conda_meta_record_is_skipped_not_a_hang(
    tmp_path: Path, fifo, reader: str, expected: list[str]
) -> None:
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    record = {"name": "numpy", "version": "2.0", "build": "0", "channel": "conda-forge"}
    (prefix / "conda-meta" / "numpy-2.0-0.json").write_text(json.dumps(record))
    fifo(prefix / "conda-meta" / "evil-1-0.json")
    code = "import sys; from pathlib import Path; prefix = Path(sys.argv[1])\n" + reader
    done = subprocess.run(
        [sys.executable, "-c", code, str(prefix)],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    for phrase in expected:
        assert phrase in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["lock", "-f", "/dev/zero"],
        ["lock", "-f", "environment.yml", "--virtual-package-spec", "/dev/zero"],
        ["install", "--dry-run", "--yes", "--lockfile", "/dev/zero", "-p", "env"],
        ["write", "-f", "/dev/zero", *WRITE_MACHINE],
    ],
    ids=["environment", "virtual-packages", "lock", "write"],
)
def test_dev_zero_is_refused_as_a_device(tmp_path: Path, args: list[str]) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    (tmp_path / "environment.yml").write_text(ENVIRONMENT)
    result = run_limited(*args, cwd=tmp_path, timeout=30)
    assert_refused(result, "/dev/zero is a character device, not a file")


def test_folder_as_lock_file(tmp_path: Path) -> None:
    (tmp_path / "conda-lock.yml").mkdir()
    with pytest.raises(LockError, match="is a folder, not a file"):
        read_lockfile(tmp_path / "conda-lock.yml")


# --------------------------------------------------------------------------------------
# nesting, size, number of values


def _deep_block(depth: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + f"{'  ' * depth}v\n"


@pytest.mark.parametrize(
    "extra",
    ["nested: " + "[" * 300 + "]" * 300 + "\n", _deep_block(300).replace("k0:", "nested:", 1)],
    ids=["flow", "block"],
)
def test_300_deep_nesting_in_an_environment_file(tmp_path: Path, extra: str) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("dependencies:\n  - numpy\n" + extra)
    with pytest.raises(EnvFileError, match="nested more than 64 levels deep"):
        read_environment(path)


@pytest.mark.parametrize(
    "extra",
    ["nested: " + "[" * 300 + "]" * 300 + "\n", _deep_block(300).replace("k0:", "nested:", 1)],
    ids=["flow", "block"],
)
def test_300_deep_nesting_in_a_lock_file(tmp_path: Path, extra: str) -> None:
    path = tmp_path / "conda-lock.yml"
    path.write_text(LOCK_HEAD + extra + "package: []\n")
    with pytest.raises(LockError, match="nested more than 64 levels deep"):
        read_lockfile(path)


def test_300_deep_nesting_is_an_error_not_a_traceback_in_the_cli(capsys, tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_text("dependencies: " + "[" * 300 + "]" * 300 + "\n")
    status, _, err = run_main(capsys, "lock", "-f", str(tmp_path / "environment.yml"))
    assert status == 1 and "Traceback" not in err
    assert "nested more than 64 levels deep" in err


def test_200k_dependencies_stop_at_the_documented_cap(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("dependencies:\n" + "".join(f"  - p{i}\n" for i in range(200_000)))
    with pytest.raises(EnvFileError, match=f"more than {ENVIRONMENT_FILE.max_nodes:,} values"):
        read_environment(path)


def test_an_environment_file_over_the_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("dependencies:\n  - numpy\n" + "#" * (ENVIRONMENT_FILE.max_bytes + 1))
    with pytest.raises(EnvFileError, match="larger than 4 MiB"):
        read_environment(path)


def test_a_lock_file_over_the_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "conda-lock.yml"
    with path.open("w") as stream:
        stream.truncate(LOCK_FILE.max_bytes + 1)  # sparse: no disk used
    with pytest.raises(LockError, match="larger than 64 MiB"):
        read_lockfile(path)


def test_a_virtual_packages_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "virtual-packages.yml"
    path.write_bytes(VIRTUAL_PACKAGES.encode() + b"# \xff\n")
    with pytest.raises(EnvFileError, match="is not UTF-8 text"):
        read_virtual_packages(path)


# --------------------------------------------------------------------------------------
# tags


@pytest.mark.parametrize(
    "text",
    [
        "name: t\nchannels: !foo [conda-forge]\ndependencies:\n  - numpy\n",
        "name: t\nchannels:\n  - conda-forge\ndependencies:\n  - !!python/name:os.system x\n",
    ],
    ids=["local-tag", "python-tag"],
)
def test_write_refuses_a_tag_and_leaves_both_files(capsys, tmp_path: Path, text: str) -> None:
    env_file = tmp_path / "environment.yml"
    env_file.write_text(text)
    (tmp_path / "virtual-packages.yml").write_text(VIRTUAL_PACKAGES)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    status, _, err = run_main(capsys, "write", "-f", str(env_file), *WRITE_MACHINE)
    assert status == 1 and "Traceback" not in err
    assert "the YAML tag" in err and "is not allowed" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_tag_in_an_environment_file_for_lock(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("name: t\nchannels: !foo [conda-forge]\ndependencies:\n  - numpy\n")
    with pytest.raises(EnvFileError, match=r"environment.yml, line 2: the YAML tag !foo"):
        read_environment(path)


def test_standard_tags_are_still_read(tmp_path: Path) -> None:
    path = tmp_path / "environment.yml"
    path.write_text("name: !!str t\nchannels: !!seq [conda-forge]\ndependencies:\n  - numpy\n")
    assert read_environment(path, platforms=["linux-64"]).channels == ("conda-forge",)


# --------------------------------------------------------------------------------------
# terminal escape sequences


def test_esc_sequence_from_a_lock_file_reaches_stderr_escaped(tmp_path: Path) -> None:
    lock = LOCK_HEAD + 'package:\n- name: "evil\\e]0;pwned\\a\\e[2J"\n  platform: linux-64\n'
    (tmp_path / "conda-lock.yml").write_text(lock)
    result = run_limited("install", "--dry-run", "--yes", "-p", str(tmp_path / "env"), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "evil" in result.stderr
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b[2J" in result.stderr


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("bell\x07", "bell\\x07"),
        ("csi\x9b31m", "csi\\x9b31m"),
        ("over\rwrite", "over\\x0dwrite"),
        ("lines\nand\ttabs\r\n", "lines\nand\ttabs\r\n"),
        ("\rprogress \x1b[1m", "\rprogress \\x1b[1m"),
        ("naïve — ünïcode", "naïve — ünïcode"),
    ],
    ids=["esc", "bel", "c1-csi", "lone-cr", "newline-tab-crlf", "progress-redraw", "unicode"],
)
def test_terminal_safe(text: str, shown: str) -> None:
    from conda_torch_plugin.cli.render import terminal_safe

    assert terminal_safe(text) == shown


def test_everything_a_verb_prints_is_filtered(capsys) -> None:
    from conda_torch_plugin.cli.render import terminal_safe_output

    with terminal_safe_output():
        print("table row evil\x1b]0;title\x07")
        print("warning: \x1b[2Jgone", file=sys.stderr)
    out, err = capsys.readouterr()
    assert out == "table row evil\\x1b]0;title\\x07\n"
    assert err == "warning: \\x1b[2Jgone\n"
    print("after\x1b")  # the streams are given back
    assert capsys.readouterr().out == "after\x1b\n"
