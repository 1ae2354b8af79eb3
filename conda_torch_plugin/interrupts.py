"""Ctrl-C and SIGTERM where Python cannot take them at any instant.

An interrupt is a ``KeyboardInterrupt`` (or the CLI's ``Terminated``) raised
wherever the main thread happens to be. Almost everywhere that is what we want:
the install's ``try``/``finally`` blocks remove the staging folder and leave the
prefix as it was. Two kinds of place must not be cut in half:

- the swap's renames and the removal of the old environment
  (``install/_transaction.py``): ``deferred()`` holds the signals until the
  block ends, then delivers them;
- asyncio's event loop, which runs py-rattler's downloads, solves and links.
  An exception raised inside the loop's own machinery can leave it unable to
  finish: a half-made loop whose finaliser prints a traceback, or cancelled
  tasks that never complete, so the command hangs after "Interrupted.".
  ``run()`` is ``asyncio.run`` in which an interrupt cancels the work instead
  (as ``asyncio.Runner`` does for Ctrl-C from Python 3.11 on, here for SIGTERM
  too); the interrupt is raised once the loop is closed. A second interrupt
  while the work is still being cancelled is raised at once.

A signal that was ignored when the block began (``nohup``, a shell's background
job) stays ignored.

Python runs a signal's handler wherever the main thread is, also inside a
weakref callback or a ``__del__`` (the import system's module locks have one),
where an exception cannot propagate: CPython prints "Exception ignored in ..."
and carries on, so the interrupt is lost and the command runs to its end.
``lost_interrupts_redelivered()`` catches such an interrupt in
``sys.unraisablehook`` and delivers the signal again a moment later, in code
that can raise it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Coroutine, Iterator

T = TypeVar("T")


class _Catcher:
    """SIGINT/SIGTERM handlers that record each signal; on leaving, the old handlers come
    back and each recorded signal is delivered through them.

    ``react(signum)`` runs in the handler after the signal is recorded. Only the main
    thread can set handlers (and only it runs them): elsewhere this does nothing.
    """

    def __init__(self, react: Callable[[int], None] | None = None) -> None:
        self.received: list[int] = []
        self._react = react
        self._previous: dict[int, Any] = {}
        self._delivered = False

    def __enter__(self) -> _Catcher:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return self
        # One at a time, each recorded before it is replaced: whatever was replaced
        # is put back even if a signal lands in the middle of this loop.
        try:
            for sig in _interrupt_signals():
                handler = signal.getsignal(sig)
                if handler == signal.SIG_IGN:
                    continue
                self._previous[sig] = handler
                signal.signal(sig, self._handle)
        except BaseException:
            self._restore()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self._restore()
        if not self._delivered:
            self._delivered = True
            for signum in self.received:
                # Through the handler now back in place: KeyboardInterrupt (or the CLI's
                # Terminated) is raised here; SIG_DFL ends the process as the signal would.
                _deliver(signum)

    def deliver_now(self, signum: int) -> None:
        """Stop waiting: put the old handlers back and deliver ``signum`` through them."""
        self._restore()
        self._delivered = True
        _deliver(signum)

    def _handle(self, signum: int, _frame: object) -> None:
        self.received.append(signum)
        if self._react is not None:
            self._react(signum)

    def _restore(self) -> None:
        import signal

        while self._previous:
            sig, handler = self._previous.popitem()
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back inside the block; each acts as soon as it ends."""
    with _Catcher():
        yield


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, where SIGINT/SIGTERM cancel ``coro`` and are raised afterwards."""
    import asyncio

    loop: asyncio.AbstractEventLoop | None = None
    main: asyncio.Task[T] | None = None
    closing = False

    def react(signum: int) -> None:
        if closing or loop is None or main is None:
            return  # recorded; acted on once there is work to cancel, or raised at the end
        if len(catcher.received) > 1:
            catcher.deliver_now(signum)  # asked twice: stop waiting for the work to wind down
        else:
            loop.call_soon_threadsafe(main.cancel)

    catcher = _Catcher(react)
    cancelled = False
    try:
        with catcher:
            loop = asyncio.new_event_loop()
            try:
                asyncio.set_event_loop(loop)
                main = loop.create_task(coro)
                if catcher.received:  # a signal while the loop was being made
                    main.cancel()
                try:
                    result = loop.run_until_complete(main)
                except asyncio.CancelledError:
                    if not catcher.received:
                        raise
                    cancelled = True
            finally:
                try:
                    _wind_down(loop, wait=len(catcher.received) < 2)
                finally:
                    closing = True
                    if main is not None and main.done() and not main.cancelled():
                        main.exception()  # it propagates from here; asyncio need not log it
                    asyncio.set_event_loop(None)
                    loop.close()
    finally:
        # Interrupted before the loop started it, the coroutine never ran; closing
        # it spares a "coroutine ... was never awaited" warning. Once run, it is
        # finished and this does nothing.
        with contextlib.suppress(RuntimeError):
            coro.close()
    if cancelled:  # the interrupt's own handler did not raise; still, the work was stopped
        raise KeyboardInterrupt
    return result


def _wind_down(loop: asyncio.AbstractEventLoop, *, wait: bool) -> None:
    """What ``asyncio.run`` does before it closes the loop: cancel what is left and wait.

    ``wait=False`` after a second interrupt: something did not stop when cancelled,
    and the user asked not to wait for it.
    """
    import asyncio

    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if wait:
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())


def ignore() -> None:
    """Ignore SIGINT/SIGTERM from here on (a command whose status is known, about to exit)."""
    import signal

    for sig in _interrupt_signals():
        signal.signal(sig, signal.SIG_IGN)


def _deliver(signum: int) -> None:
    import signal

    signal.raise_signal(signum)


@contextlib.contextmanager
def lost_interrupts_redelivered() -> Iterator[None]:
    """Inside the block, an interrupt raised where Python can only ignore it is sent again."""
    import sys

    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        error = unraisable.exc_value
        if not isinstance(error, KeyboardInterrupt):
            previous(unraisable)
            return
        import signal
        import threading

        signum = getattr(error, "signum", signal.SIGINT)  # the CLI's Terminated carries one
        # Not from here: this hook is Python code too, and a handler run inside it
        # would be lost the same way. A moment later the main thread is past it.
        resend = threading.Timer(_RESEND_AFTER_S, _interrupt_main, args=(signum,))
        resend.daemon = True
        resend.start()

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


_RESEND_AFTER_S = 0.01


def _interrupt_main(signum: int) -> None:
    import _thread
    import signal

    # Runs the main thread's handler for ``signum`` as if the signal had arrived; does
    # nothing where the signal is ignored or left to its default by then.
    _thread.interrupt_main(signal.Signals(signum))


def _interrupt_signals() -> tuple[int, ...]:
    import signal

    return (signal.SIGINT, signal.SIGTERM) if hasattr(signal, "SIGTERM") else (signal.SIGINT,)
