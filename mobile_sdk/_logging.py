"""Logging set-up for the CLI: quiet by default, `-v` for info, `-vv` for debug.

By default only this SDK's warnings and errors reach the terminal: the backends' own chatter
(torchao's optional CUDA kernels, torch/executorch deprecation and Future warnings, TensorFlow's
C++ logs) is hidden and shown from `-v` on.
"""

from __future__ import annotations

import logging
import os
import warnings

# TensorFlow reads this at import time; set it before any backend can load.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

_NOISY = ("torchao", "torch", "executorch", "coremltools", "tensorflow", "absl", "onnx2tf", "onnxscript")


def configure(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("mobile_sdk").setLevel(level)
    logging.getLogger("converters").setLevel(level)
    if verbosity <= 0:
        for name in _NOISY:
            logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|torchao|executorch|coremltools)\b.*")
        os.environ.setdefault("TORCH_LOGS", "-all")
