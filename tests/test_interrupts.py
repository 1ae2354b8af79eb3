"""Interrupts that land while an event loop is being made or closed.

The signal is real (``signal.raise_signal``), sent from inside asyncio's own loop
construction: the instant at which, on a busy machine, a SIGTERM from ``kill`` or
a CI time-out once left a half-made loop whose finaliser printed a traceback.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
import time
import warnings

import pytest

from conda_torch_plugin import interrupts


class SignalledWhileBuilt(asyncio.SelectorEventLoop):
    """The default loop, with SIGINT arriving halfway through its constructor."""

    def _make_self_pipe(self) -> None:
        signal.raise_signal(signal.SIGINT)
        super()._make_self_pipe()


class SignalledWhileClosed(asyncio.SelectorEventLoop):
    made: list[asyncio.AbstractEventLoop] = []

    def __init__(self) -> None:
        super().__init__()
        SignalledWhileClosed.made.append(self)

    def close(self) -> None:
        if not self.is_closed():
            signal.raise_signal(signal.SIGINT)
        super().close()


@pytest.fixture
def loop_class(request, monkeypatch):
    """Make ``asyncio.new_event_loop`` build ``request.param``; collect what finalisers say."""

    class Policy(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            return request.param()

    policy = Policy()
    previous = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(policy)
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield unraisable
    finally:
        signal.signal(signal.SIGINT, handler)
        asyncio.set_event_loop_policy(previous)


async def answer() -> int:
    return 42


def _interrupted_run() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        coro = answer()
        with pytest.raises(KeyboardInterrupt):
            interrupts.run(coro)
        del coro
        gc.collect()
    never_awaited = [w for w in caught if "never awaited" in str(w.message)]
    assert never_awaited == []


@pytest.mark.parametrize("loop_class", [SignalledWhileBuilt], indirect=True)
def test_an_interrupt_while_the_loop_is_built_raises_cleanly(loop_class):
    _interrupted_run()
    # A loop cut off in its constructor reports "'...EventLoop' object has no
    # attribute '_ssock'" from its finaliser; a whole one closes quietly.
    assert loop_class == []


@pytest.mark.parametrize("loop_class", [SignalledWhileClosed], indirect=True)
def test_an_interrupt_while_the_loop_closes_still_closes_it(loop_class):
    SignalledWhileClosed.made.clear()
    with pytest.raises(KeyboardInterrupt):
        interrupts.run(answer())
    [loop] = SignalledWhileClosed.made
    assert loop.is_closed()
    gc.collect()
    assert loop_class == []


def test_run_returns_the_result_and_leaves_no_loop_set():
    assert interrupts.run(answer()) == 42
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


@pytest.fixture
def sigint_raises():
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, handler)


def test_an_interrupt_mid_run_cancels_the_work_then_is_raised(sigint_raises):
    """The work winds down through its own ``finally`` blocks before the interrupt is raised."""
    events: list[str] = []

    async def background() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            events.append("background cancelled")
            raise

    async def main() -> None:
        asyncio.get_running_loop().create_task(background())
        await asyncio.sleep(0)
        signal.raise_signal(signal.SIGINT)
        events.append("still running after the signal")
        try:
            await asyncio.sleep(60)
        finally:
            events.append("main cleaned up")

    with pytest.raises(KeyboardInterrupt):
        interrupts.run(main())
    assert events == [
        "still running after the signal",
        "main cleaned up",
        "background cancelled",
    ]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_interrupt_raised_is_the_one_the_handler_raises():
    """The CLI turns SIGTERM into its own ``Terminated``; run() raises that, not a plain one."""

    class Terminated(KeyboardInterrupt):
        pass

    def terminate(_signum, _frame):
        raise Terminated

    async def main() -> None:
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(60)

    handler = signal.signal(signal.SIGTERM, terminate)
    try:
        with pytest.raises(Terminated):
            interrupts.run(main())
    finally:
        signal.signal(signal.SIGTERM, handler)


def test_a_second_interrupt_stops_waiting_for_work_that_ignores_the_first(sigint_raises, caplog):
    async def stubborn() -> None:
        signal.raise_signal(signal.SIGINT)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C again
            await asyncio.sleep(60)

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        interrupts.run(stubborn())
    assert time.monotonic() - started < 30
    gc.collect()
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_interrupt_stays_ignored():
    async def main() -> int:
        signal.raise_signal(signal.SIGINT)
        await asyncio.sleep(0.01)
        return 42

    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert interrupts.run(main()) == 42
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, handler)


def test_deferred_holds_a_signal_until_the_block_ends():
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    reached: list[str] = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts.deferred():
                signal.raise_signal(signal.SIGINT)
                reached.append("after the signal")
            reached.append("after the block")  # pragma: no cover - must not run
    finally:
        signal.signal(signal.SIGINT, handler)
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is handler


def test_deferred_puts_back_an_ignored_signal_and_drops_it():
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts.deferred():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, handler)


# -- the console script: an interrupt around the command, not inside it ----------------------

_AROUND = """
import os, signal, sys
import conda_torch_plugin.cli as cli

command = cli.main

def main(argv=None):
    status = command(["detect", "--json"])  # a whole command, its own handlers restored
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))  # lands after the command returned
    return status

cli.main = main
cli.run()
"""


@pytest.mark.parametrize(("name", "status"), [("SIGTERM", 143), ("SIGINT", 130)])
def test_an_interrupt_after_the_command_returned_is_reported_not_a_crash(
    fake_nvml_env, name, status
):
    """Before, SIGTERM there killed the process (-15) and SIGINT printed a traceback."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", _AROUND, name],
        env=fake_nvml_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == status, done.stderr
    assert done.stderr.strip().endswith("Interrupted."), done.stderr
    assert "Traceback" not in done.stderr


def test_an_interrupt_lost_in_a_weakref_callback_is_delivered_again(capsys):
    """CPython runs the handler inside the callback (here the one dropping ``thing``, as
    the import system's module locks do) and can only print its exception and go on."""
    import weakref

    from conda_torch_plugin.cli import Terminated, _terminate_as_interrupt

    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing, lambda _ref: signal.raise_signal(signal.SIGTERM))
    # Without the second delivery the command would go on working (here: five seconds of
    # waiting) and no Terminated would come out of the block.
    with pytest.raises(Terminated), _terminate_as_interrupt():
        del thing  # the callback runs here; Terminated is raised inside it and lost
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.001)
    assert ref() is None
    assert "Exception ignored" not in capsys.readouterr().err
