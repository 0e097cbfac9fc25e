"""Loads one of coremltools' installed op-test modules for a stub module here to collect."""

from __future__ import annotations

import importlib

PACKAGE = "coremltools.converters.mil.mil.ops.tests"


def wheel_names(module: str) -> dict:
    """The public names of PACKAGE.<module> (test classes, fixtures, helpers), less the test
    classes it imports from another file (those are collected where they are defined)."""
    mod = importlib.import_module(f"{PACKAGE}.{module}")
    return {k: v for k, v in vars(mod).items()
            if not k.startswith("_") and not (isinstance(v, type) and k.startswith("Test")
                                              and v.__module__ != mod.__name__)}
