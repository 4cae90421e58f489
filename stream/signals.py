"""SIGINT / SIGTERM: stop the run, but let it finish its files first.

The first signal raises :class:`Stopped` in the main thread, so every ``finally`` runs: the MP4
is flushed, report.json and the crops are written. A signal that arrives while files are being
finalised (inside :func:`finalising`) does not cut that short: it is remembered and raised when
the block ends. Signals after the first are ignored, so an impatient second Ctrl-C (or a
supervisor's repeated SIGTERM) cannot leave half-written outputs.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """Raised by a SIGINT / SIGTERM handler. ``code``: the exit status, 128 + signal number
    (130 for SIGINT, 143 for SIGTERM). A KeyboardInterrupt, so ``except Exception`` never eats it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.code = 128 + signum


class _State:
    stopping = False  # a signal has been received
    pending: int | None = None  # received while finalising; raised at the end of the block
    depth = 0  # nesting of finalising()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _State.stopping:
        return
    _State.stopping = True
    if _State.depth:
        _State.pending = signum
        return
    raise Stopped(signum)


@contextmanager
def finalising() -> Iterator[None]:
    """Run a block that writes final outputs without a signal interrupting it midway."""
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
        if _State.depth == 0 and _State.pending is not None:
            signum, _State.pending = _State.pending, None
            raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Install the handlers for the duration of the block (main thread only), then restore the
    previous ones, so ``main()`` can be called again in the same process (tests)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may
        yield
        return
    previous: dict[int, Callable[..., Any] | int | None] = {s: signal.getsignal(s) for s in HANDLED}
    _State.stopping, _State.pending, _State.depth = False, None, 0
    for s in HANDLED:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
