"""What the command line shows while it works: a progress bar, and nothing from the backends.

The backends (ExecuTorch, LiteRT, TensorFlow, onnx2tf, XNNPACK) print from C++ straight to the
process's file descriptors 1 and 2, past Python's `sys.stdout`. `quiet_backends()` points those
descriptors at a file for the duration of the work, so their lines never reach the terminal: by
default a temporary file (kept, and named, when the command fails), with `--log-file` that file,
and with `-vv` nothing is redirected. This SDK's own messages (log records, progress) go to a
duplicate of the terminal's stderr taken before the redirection, so they stay visible.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator, Optional


class _State:
    verbosity: int = 0
    log_file: Optional[Path] = None
    visible: Optional[IO[str]] = None  # where our messages go while the descriptors are redirected
    native_log: Optional[Path] = None  # the file the backends' output went to in the last command


STATE = _State()


def visible_stream() -> IO[str]:
    """Where this SDK's own messages go now: the terminal, also while the backends are muted."""
    return STATE.visible or sys.stderr


class _VisibleHandler(logging.StreamHandler):
    """A log handler that always writes to `visible_stream()` (looked up at each record)."""

    @property
    def stream(self):  # type: ignore[override]
        return visible_stream()

    @stream.setter
    def stream(self, value):  # logging.StreamHandler.__init__ assigns it; the lookup above wins
        pass


def log_handler() -> logging.Handler:
    h = _VisibleHandler()
    h.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    return h


def _fd_backed(stream) -> bool:
    try:
        return stream.fileno() in (1, 2)
    except (AttributeError, OSError, ValueError):  # pytest / click's CliRunner buffers
        return False


@contextlib.contextmanager
def quiet_backends() -> Iterator[None]:
    """Send what the backends write to descriptors 1 and 2 to a file while the block runs (see
    the module docstring); a no-op with -vv or when stdout/stderr are not real descriptors."""
    if STATE.verbosity >= 2 or STATE.visible is not None or not (_fd_backed(sys.stdout) and _fd_backed(sys.stderr)):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    if STATE.log_file is not None:
        STATE.log_file.parent.mkdir(parents=True, exist_ok=True)
        sink = open(STATE.log_file, "ab")
        path = STATE.log_file
    else:
        fd, name = tempfile.mkstemp(prefix="mobile-sdk-backends-", suffix=".log")
        sink, path = os.fdopen(fd, "wb"), Path(name)
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    STATE.visible = os.fdopen(os.dup(saved[2]), "w", buffering=1, encoding="utf-8", errors="replace")
    STATE.native_log = path
    ok = False
    try:
        for fd in (1, 2):
            os.dup2(sink.fileno(), fd)
        yield
        ok = True
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, dup in saved.items():
            os.dup2(dup, fd)
            os.close(dup)
        STATE.visible.close()
        STATE.visible = None
        sink.close()
        if ok and STATE.log_file is None:
            path.unlink(missing_ok=True)
            STATE.native_log = None


class Progress:
    """Progress over the stages of a command: on a terminal, a rich bar per stage (label of the
    current step, done / total, elapsed, ETA); elsewhere (CI logs, pipes), one line per step; with
    -q, nothing. `stage(name)` returns the `on_step(label, index, total)` callback of that stage."""

    def __init__(self, verbosity: int = 0):
        self.quiet = verbosity < 0
        self.t0 = time.perf_counter()
        self._bar = None
        self._task = None
        self._stage = ""

    def _stream(self):
        return visible_stream()

    def _live(self) -> bool:
        try:
            return self._stream().isatty()
        except (AttributeError, ValueError):
            return False

    def echo(self, message: str) -> None:
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=self._stream(), flush=True)

    def stage(self, name: str):
        self._end_task()
        self._stage = name
        if not self.quiet and self._live():
            if self._bar is None:
                from rich.console import Console
                from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, SpinnerColumn,
                                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)

                self._bar = Bar(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                console=Console(file=self._stream()), transient=False)
                self._bar.start()
            self._task = self._bar.add_task(name, total=None)
        else:
            self.echo(f"[{time.perf_counter() - self.t0:6.1f}s] {name}")
        return self.step

    def step(self, label: str, index: int, total: int) -> None:
        if self.quiet:
            return
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total, completed=index, description=f"{self._stage}: {label}")
        else:
            self.echo(f"    {label} ({index + 1}/{total})")

    def _end_task(self) -> None:
        if self._bar is not None and self._task is not None:
            task = self._bar.tasks[-1]
            self._bar.update(self._task, completed=task.total or 1, total=task.total or 1, description=self._stage)
            self._task = None

    def close(self) -> None:
        self._end_task()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
