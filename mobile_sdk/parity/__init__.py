"""The parity checker: every artifact on its real runtime, on real data, against the eager model.

`check_folder(DIR)` runs each artifact under DIR (found by its converter metadata), computes output
metrics (cosine, max abs error, SQNR, NaN/Inf) on calibration and test inputs and task metrics
(top-1 agreement and accuracy change on the test split) with the platform's two towers together,
judges them against per-precision tolerances (`ParityConfig`), localizes the first divergent layer
of a failing artifact, and `write_reports` writes parity.json / parity.md / parity.html.
"""

from .check import check_folder, find_artifacts
from .report import write_reports
from .tolerances import DEFAULT_TOLERANCES, ParityConfig, Tolerance

__all__ = ["DEFAULT_TOLERANCES", "ParityConfig", "Tolerance", "check_folder", "find_artifacts", "write_reports"]
