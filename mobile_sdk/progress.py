"""Progress of the long steps (conversion, parity, benchmarking) as callbacks the library calls.

A step callback is `on_step(label, index, total)`: step `index` (0-based) of `total` begins, and
`label` says what it is ("tflite image int8"). The command line shows it as a progress bar with
elapsed time and ETA (`mobile_sdk._console.Progress`); a caller of the library may pass any function.
"""

from __future__ import annotations

from typing import Callable, Optional

StepCallback = Callable[[str, int, int], None]


class Steps:
    """Counts the steps of one stage for `on_step` (None: nothing is reported)."""

    def __init__(self, on_step: Optional[StepCallback], total: int):
        self.on_step, self.total, self.index = on_step, max(int(total), 0), 0

    def __call__(self, label: str) -> None:
        from ._signals import raise_if_stopped

        raise_if_stopped()  # Ctrl-C / SIGTERM stop the run at the next step at the latest
        if self.on_step is not None:
            self.on_step(label, self.index, max(self.total, self.index + 1))
        self.index += 1
