"""coremltools' own per-op test suite (shipped inside the installed wheel), run on Linux with the
Core ML prediction step replaced by the numpy MIL interpreter (converters/mil.py).

How a wheel test runs here, unchanged: it builds a MIL program, `ct.convert`s it to an ML Program
(the real converter and pass pipeline), then calls coremltools' `compare_backend`, which predicts
and compares with the expected outputs the test computed, at the test's own tolerances (fp16
programs get coremltools' own widened fp16 tolerances). Only three things are patched, for these
tests only:
- `testing_utils._IS_MACOS` and `testing_utils.coremltoolsutils._macos_version` (the gate that
  otherwise skips the comparison off macOS);
- `MLModel.predict`: reloads the converted `.mlpackage` from disk with `MilProgram` (as a user's
  check would) and runs it.
The installed package is never edited. Parametrizations are held to the iOS18 opset and the ML
Program backend, fp32 and fp16 (`backend=mlprogram-fp32-iOS18` / `-fp16-`); everything else
(neuralnetwork backend, older opsets) is deselected and counted in the summary.

Outcomes, as the summary at the end prints them per file:
- passed: the interpreter's outputs matched the test's expected outputs (a prediction ran);
- no-pred: the test passed without predicting (builder / type-inference checks of
  coremltools itself; nothing about the interpreter is proved by it);
- failed: a wrong value, a wrong shape or a crash of the interpreter;
- unsupp: the interpreter refused the program (`InterpreterUnsupported`: an op or a feature
  it does not implement), reported as a skip whose reason starts with "unsupported by the
  interpreter:", never as a pass;
- skipped: the wheel's own skips (macOS-only checks, opset gates), with their reasons;
- xfailed: the wheel's own xfail marks (known Core ML runtime bugs); an xfail test that matches
  here counts as passed.

The default run (`make test`, `-m "not heavy"`) takes a spread sample of every test function's
parametrizations; the rest is marked `heavy` (`pytest -m heavy tests/coreml_optests`). Set
MIL_OPTESTS_SUMMARY=path.json to also write the per-file counts as JSON.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections import Counter, defaultdict

import numpy as np
import pytest

# Read by coremltools' testing_reqs when it is first imported (before the wheel's test modules).
os.environ.setdefault("PYMIL_TEST_TARGETS", "mlprogram")
os.environ.setdefault("INCLUDE_MIL_FP32_UNIT_TESTS", "1")
os.environ.setdefault("RUN_BACKWARD_COMPATIBILITY", "1")  # lets iOS14..17 tests reach the iOS18 opset

import coremltools as ct  # noqa: E402
from coremltools.converters import _converters_entry  # noqa: E402
from coremltools.converters.mil import testing_reqs, testing_utils  # noqa: E402

from converters.mil import InterpreterUnsupported, MilProgram  # noqa: E402

OPSET = ct.target.iOS18
# Keep only the iOS18 ML Program configs (in place: the wheel's test packages read these lists).
testing_reqs.backends_internal[:] = [b for b in testing_reqs.backends_internal
                                     if b.backend == "mlprogram" and b.opset_version == OPSET]
testing_reqs.backends[:] = [b for b in testing_reqs.backends if b[0] == "mlprogram"]

# How many items of one test function the default run keeps (the rest is marked heavy).
SAMPLE_PER_FUNCTION = int(os.environ.get("MIL_OPTESTS_SAMPLE", "3"))
UNSUPPORTED = "unsupported by the interpreter: "

_predicts: Counter = Counter()  # nodeid -> number of interpreter predictions
_current: list = ["", None]  # the running test's node id, and the interpreter's fp16 policy for it


def _input_array(value, shape, dtype):
    x = np.asarray(value)
    if shape is not None and x.shape != shape and x.size == int(np.prod(shape)):
        x = x.reshape(shape)  # Core ML feeds scalars as shape (1,)
    return x.astype(dtype) if dtype is not None else x


def interpreter_predict(self, data, state=None):
    """MLModel.predict for these tests: the saved package, run by the MIL interpreter."""
    _predicts[_current[0]] += 1
    if state is not None:
        pytest.skip(UNSUPPORTED + "stateful models (MLState)")
    if self.package_path is None:
        pytest.skip(UNSUPPORTED + "neuralnetwork models (only ML Programs are interpreted)")
    try:
        prog = MilProgram(self.package_path, fp16=_current[1])
    except InterpreterUnsupported as e:
        pytest.skip(UNSUPPORTED + e.feature)
    feeds = {}
    for name, (shape, dtype) in prog.inputs.items():
        if name not in data:
            raise KeyError(f"input {name!r} not given (given: {sorted(data)})")
        if not isinstance(data[name], (np.ndarray, np.generic, int, float, bool, list)):
            pytest.skip(UNSUPPORTED + f"input {name!r} of type {type(data[name]).__name__} (image inputs)")
        feeds[name] = _input_array(data[name], shape, dtype)
    try:
        out = prog.run(feeds)
    except InterpreterUnsupported as e:
        pytest.skip(UNSUPPORTED + e.feature)
    return {k: np.asarray(v) for k, v in out.items()}


class _NoGc:
    @staticmethod
    def collect(*args):
        return 0


class _MacVersion:
    """testing_utils' view of coremltools.models.utils, saying macOS 15 (the prediction gate)."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    @staticmethod
    def _macos_version():
        return (15, 0)


@pytest.fixture(autouse=True)
def _interpreter_backend(monkeypatch, request):
    monkeypatch.setattr(testing_utils, "_IS_MACOS", True)
    monkeypatch.setattr(testing_utils, "coremltoolsutils", _MacVersion(testing_utils.coremltoolsutils))
    monkeypatch.setattr(ct.models.MLModel, "predict", interpreter_predict)
    # ct.convert ends with gc.collect(): 1.3 s per conversion in a process that has torch,
    # TensorFlow and ExecuTorch loaded, most of a test's time. The tests do not need it.
    monkeypatch.setattr(_converters_entry, "gc", _NoGc)
    # Precision: the fp32 backend runs with fp16=False (every op in float32, as Core ML's CPU
    # does even for the fp16 tensors some of these tests declare), the fp16 backend with the
    # interpreter's fp16 emulation (fp16=True: every value rounded to float16 between ops).
    b = _backend_of(request.node)
    precision = b.precision if isinstance(b, testing_reqs.BackendConfig) else (b[1] if isinstance(b, tuple) else None)
    _current[:] = [request.node.nodeid, {"fp32": False, "fp16": True}.get(precision)]
    yield


def pytest_configure(config):
    # The wheel parametrizes with itertools.product; pytest warns about it once per test.
    config.addinivalue_line("filterwarnings", "ignore:Passing a non-Collection iterable to parametrize")


def pytest_make_parametrize_id(config, val, argname):
    if isinstance(val, testing_reqs.BackendConfig):
        return f"{val.backend}-{val.precision}-{val.opset_version.name}"
    if isinstance(val, ct.ComputeUnit):
        return val.name
    return None


def _backend_of(item):
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("backend", params.get("backends"))


_deselected: dict[str, Counter] = defaultdict(Counter)
_heavy: Counter = Counter()


def _file_of(item) -> str:
    return os.path.basename(str(item.path))


# Failures that are understood and are not interpreter kernels computing the wrong thing: each is
# an xfail (non-strict: if it passes it counts as passed) with its reason. Keyed by
# "Class::function" and substrings of the parametrization id (joined by "&", all must occur).
F16_REF = ("fp32 backend on float16 tensors: the test's reference is computed in float16 arithmetic and "
           "compared at the fp32 tolerance; the interpreter computes each op in float32 (the differences "
           "are within one float16 ulp of the output)")
KNOWN = {
    ("TestConv::test_builder_to_backend_stress", "fp32"): F16_REF,
    ("TestConvTranspose::test_builder_to_backend_stress", "fp32"): F16_REF,
    ("TestNormalizationL2Norm::test_builder_to_backend_stress", "fp32"): F16_REF,
    ("TestNormalizationInstanceNorm::test_builder_to_backend_smoke", "fp32"): F16_REF,
    ("TestNormalizationInstanceNorm::test_builder_to_backend_smoke_with_gamma_and_beta", "fp32"): F16_REF,
    ("TestNormalizationBatchNorm::test_builder_to_backend_smoke", "fp32"):
        "coremltools' own MIL loader rejects the mixed fp16 / fp32 batch_norm program its converter wrote "
        "(epsilon fp32, mean fp16), so the interpreter cannot read it",
    ("TestNormalizationLocalResponseNorm::test_builder_to_backend_smoke", ""):
        "the hard-coded expected values (rank-3 input) disagree with PyTorch's LocalResponseNorm, the "
        "reference of the stress test, which passes for ranks 3-5",
    ("TestScatter::test_builder_to_backend_programmatic", "fp16&-div"):
        "fp16 emulation: a division overflows float16 to inf where the float32 reference does not",
    ("TestRange1d::test_large_array", "fp16"):
        "fp16 emulation: start / end / step rounded to float16 make a range numpy cannot allocate",
    ("TestScatter::test_ios17_invalid_indices", ""):
        "the test expects Core ML's RuntimeError; the interpreter raises DataError naming the index",
    ("TestScatterAlongAxis::test_ios17_invalid_indices", ""):
        "the test expects Core ML's RuntimeError; the interpreter raises DataError naming the index",
    ("TestScatterNd::test_ios17_invalid_indices", ""):
        "the test expects Core ML's RuntimeError; the interpreter raises DataError naming the index",
    ("TestSliceByIndex::test_efficient_type_inference", ""):
        "a wall-clock assertion (building two ops under 10 ms), not a check of any value: it fails on a "
        "loaded machine",
}


def _known(item) -> str | None:
    name = f"{item.cls.__name__ if item.cls else ''}::{item.originalname}"
    pid = getattr(getattr(item, "callspec", None), "id", "")
    for (fn, part), reason in KNOWN.items():
        if fn == name and all(p in pid for p in part.split("&")):
            return reason
    return None


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    keep, drop = [], []
    groups: dict[tuple, list] = defaultdict(list)
    for item in items:
        if not str(item.path).startswith(here):
            keep.append(item)
            continue
        b = _backend_of(item)
        reason = None
        if isinstance(b, testing_reqs.BackendConfig) and (b.backend != "mlprogram" or b.opset_version != OPSET):
            reason = f"{b.backend} {b.opset_version.name} parametrization (held to mlprogram iOS18)"
        elif isinstance(b, tuple) and b and b[0] != "mlprogram":
            reason = f"{b[0]} parametrization (only ML Programs are interpreted)"
        if reason:
            _deselected[_file_of(item)][reason] += 1
            drop.append(item)
            continue
        reason = _known(item)
        if reason:
            item.add_marker(pytest.mark.xfail(reason="known: " + reason, strict=False))
        keep.append(item)
        groups[(str(item.path), item.cls.__name__ if item.cls else "", item.originalname)].append(item)
    # Default run: a spread of at most SAMPLE_PER_FUNCTION items per test function, chosen by a
    # stable hash offset so that different functions do not all keep their first parametrization.
    for key, group in groups.items():
        n = len(group)
        if n <= SAMPLE_PER_FUNCTION:
            continue
        step = n / SAMPLE_PER_FUNCTION
        off = zlib.crc32("::".join(key).encode()) % max(1, int(step))
        chosen = {min(n - 1, int(off + i * step)) for i in range(SAMPLE_PER_FUNCTION)}
        for i, item in enumerate(group):
            if i not in chosen:
                item.add_marker(pytest.mark.heavy)
                _heavy[_file_of(item)] += 1
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


_results: dict[str, Counter] = defaultdict(Counter)
_skip_reasons: dict[str, Counter] = defaultdict(Counter)
_failures: dict[str, list] = defaultdict(list)


def _classify_skip(reason: str) -> str:
    reason = reason.split("Skipped: ", 1)[-1]
    return reason


def pytest_runtest_logreport(report):
    here = os.path.dirname(__file__)
    if not str(report.fspath).startswith(os.path.relpath(here, os.getcwd())) and \
            not str(report.fspath).startswith(here):
        return
    f = os.path.basename(str(report.fspath))
    if hasattr(report, "wasxfail"):  # the wheel's own xfail marks (known Core ML bugs)
        _results[f]["xfailed" if report.skipped else "passed"] += 1
        if report.skipped:
            _skip_reasons[f]["xfail: " + report.wasxfail] += 1
        return
    if report.when == "call" and report.passed:
        _results[f]["passed" if _predicts.get(report.nodeid) else "no-pred"] += 1
    elif report.failed:
        _results[f]["failed"] += 1
        crash = getattr(report.longrepr, "reprcrash", None)
        msg = crash.message if crash is not None else str(report.longrepr).strip().splitlines()[-1]
        msg = " ".join(msg.split())
        _failures[f].append(f"{report.nodeid.split('::', 1)[-1]}: {msg[:400]}")
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = _classify_skip(reason)
        if reason.startswith(UNSUPPORTED):
            _results[f]["unsupp"] += 1
        else:
            _results[f]["skipped"] += 1
        _skip_reasons[f][reason] += 1


def summary() -> dict:
    files = sorted(set(_results) | set(_deselected))
    return {f: {"counts": dict(_results[f]), "skip_reasons": dict(_skip_reasons[f]),
                "deselected": dict(_deselected[f]), "heavy_in_default_run": _heavy[f],
                "failures": _failures[f]} for f in files}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _results:
        return
    tr = terminalreporter
    tr.section("coremltools op tests against the MIL interpreter")
    tr.write_line("passed = matched the expected outputs through the interpreter; no-pred = passed "
                  "without a prediction; unsupp = refused by the interpreter")
    cols = ["passed", "no-pred", "failed", "unsupp", "skipped", "xfailed"]
    tr.write_line(f"{'file':38s} " + " ".join(f"{c:>8s}" for c in cols))
    total = Counter()
    for f in sorted(_results):
        total.update(_results[f])
        tr.write_line(f"{f:38s} " + " ".join(f"{_results[f][c]:8d}" for c in cols))
    tr.write_line(f"{'total':38s} " + " ".join(f"{total[c]:8d}" for c in cols))
    unsup = Counter()
    for f, reasons in _skip_reasons.items():
        for r, n in reasons.items():
            if r.startswith(UNSUPPORTED):
                unsup[re.sub(r"\s*\(.*", "", r)] += n
    for r, n in unsup.most_common():
        tr.write_line(f"  {n:5d}  {r}")
    path = os.environ.get("MIL_OPTESTS_SUMMARY")
    if path:
        with open(path, "w") as fh:
            json.dump(summary(), fh, indent=1, sort_keys=True)
