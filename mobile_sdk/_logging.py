"""Logging set-up for the CLI: quiet by default, `-q` errors only, `-v` for info, `-vv` for debug.

By default only this SDK's warnings and errors reach the terminal: the backends' own chatter
(their Python warnings, and what their C++ prints: see _console.py) is hidden, and shown with `-vv`
or written to `--log-file`.
"""

from __future__ import annotations

import logging
import os
import warnings

# TensorFlow reads this at import time; set it before any backend can load.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

_NOISY = ("torchao", "torch", "executorch", "coremltools", "tensorflow", "absl", "onnx2tf", "onnxscript")


def configure(verbosity: int, log_file=None) -> None:
    """-q (-1): errors only; default (0): this SDK's warnings; -v: info; -vv: debug and the backends'
    own output. `log_file`: the backends' output and every log record (debug) also go there."""
    from pathlib import Path

    from . import _console

    _console.STATE.verbosity = verbosity
    _console.STATE.log_file = Path(log_file) if log_file else None
    level = logging.ERROR if verbosity < 0 else logging.WARNING if verbosity == 0 else \
        logging.INFO if verbosity == 1 else logging.DEBUG
    handlers = [_console.log_handler()]
    handlers[0].setLevel(level)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(fh)
    logging.basicConfig(level=logging.DEBUG if log_file else level, handlers=handlers, force=True)
    for name in ("mobile_sdk", "converters"):
        logging.getLogger(name).setLevel(logging.DEBUG if log_file else level)
    if verbosity <= 1:
        for name in _NOISY:
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|torchao|executorch|coremltools|"
                                r"onnx|onnxscript|onnx2tf|tensorflow|keras|tf_keras|transformers|timm|open_clip)\b.*")
        os.environ.setdefault("TORCH_LOGS", "-all")
