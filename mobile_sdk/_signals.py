"""Ctrl-C and SIGTERM as exceptions, so every cleanup runs and nothing is left half-written.

`stoppable()` makes SIGTERM raise `Terminated` (a KeyboardInterrupt) like Ctrl-C raises
KeyboardInterrupt. Python drops an exception raised while it runs a garbage-collection callback
("Exception ignored in ..."), so the signal is also remembered: `raise_if_stopped()`, called at
every step boundary (`progress.Steps`) and before an export folder is swapped in, raises it again.
`held()` defers the signals across a critical section.
"""

from __future__ import annotations

import contextlib
import signal

_STOPPED: list[int] = []  # the signals received inside `stoppable`


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup runs."""


def _exception(signum: int) -> KeyboardInterrupt:
    return Terminated(f"signal {signum}") if signum == signal.SIGTERM else KeyboardInterrupt()


def _handler(signum, frame):
    _STOPPED.append(signum)
    raise _exception(signum)


def raise_if_stopped() -> None:
    """Raise the interrupt of a signal received earlier whose exception Python may have dropped."""
    if _STOPPED:
        raise _exception(_STOPPED[0])


@contextlib.contextmanager
def stoppable():
    """Within the block SIGINT raises KeyboardInterrupt and SIGTERM `Terminated`, and both are
    remembered for `raise_if_stopped`. A no-op outside the main thread."""
    try:
        old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    _STOPPED.clear()
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _STOPPED.clear()


@contextlib.contextmanager
def held():
    """Defer SIGINT / SIGTERM / SIGHUP across a critical section (a few renames)."""
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    except (AttributeError, ValueError, OSError):
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
