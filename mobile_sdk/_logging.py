"""Logging set-up for the CLI: quiet by default, `-v` for info, `-vv` for debug."""

from __future__ import annotations

import logging
import os

# TensorFlow reads this at import time; set it before any backend can load.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def configure(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("mobile_sdk").setLevel(level)
