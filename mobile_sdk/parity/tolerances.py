"""Parity tolerances per precision, with defaults taken from the issue's acceptance bars.

A precision name maps to a family: `fp32`; `fp16` (Core ML FLOAT16 compute, TFLite fp16 weights);
`int8` (static, full-integer or CPU-variant int8 of any platform); `int8_dynamic`; `palN`, `pal4g` and
`palmix` (Core ML N-bit or mixed-bit palettized weights, fp16 compute). Override any field per family in ParityConfig.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ..errors import ConfigError


@dataclass(frozen=True)
class Tolerance:
    cosine_mean: float  # mean over rows of cos(reference, artifact), at least
    cosine_min: float  # worst row, at least
    agreement: float  # zero-shot top-1 agreement with the reference over the zero-shot samples, at least
    layer_sqnr_db: float  # localization: the first layer whose SQNR drops below this is named


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(0.99999, 0.99999, 0.99, 60.0),
    "fp16": Tolerance(0.9995, 0.998, 0.99, 30.0),
    "int8": Tolerance(0.99, 0.97, 0.98, 15.0),
    "int8_dynamic": Tolerance(0.995, 0.98, 0.99, 20.0),
    "pal": Tolerance(0.99, 0.97, 0.98, 15.0),
    # 4-bit weights (ExecuTorch int4w): the same task bar as the other compressed weights
    "int4": Tolerance(0.99, 0.97, 0.98, 12.0),
}
# Per platform overrides of the int8 bar (ExecuTorch's issue asks more of int8 than LiteRT's).
PLATFORM_TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("executorch", "int8"): Tolerance(0.995, 0.98, 0.99, 15.0),
}


def family(precision: str) -> str:
    if precision in ("fp32", "fp16", "int8_dynamic"):
        return precision
    if precision.startswith("int8"):
        return "int8"
    if precision.startswith("int4"):
        return "int4"
    if re.fullmatch(r"pal(\d+g?|mix)", precision):
        return "pal"
    raise ConfigError(f"no parity tolerance for precision {precision!r}; known families: {sorted(DEFAULT_TOLERANCES)}")


@dataclass(frozen=True)
class ParityConfig:
    n_calibration: int = 32  # calibration samples per tower for the output metrics
    n_test: int = 100  # test-split samples per task (output metrics and task metrics)
    localize: str = "on_failure"  # "on_failure" | "always" | "never"
    localize_samples: int = 4  # inputs the per-layer comparison averages over
    tolerances: dict = field(default_factory=dict)  # family or (platform, family) -> Tolerance override

    def __post_init__(self):
        if self.localize not in ("on_failure", "always", "never"):
            raise ConfigError(f"localize must be on_failure, always or never, got {self.localize!r}")
        if self.n_calibration < 1 or self.n_test < 1:
            raise ConfigError("n_calibration and n_test must be >= 1")

    def tolerance(self, platform: str, precision: str) -> Tolerance:
        fam = family(precision)
        for key in ((platform, fam), fam):
            if key in self.tolerances:
                return self.tolerances[key]
        return PLATFORM_TOLERANCES.get((platform, fam), DEFAULT_TOLERANCES[fam])


def as_dict(t: Tolerance) -> dict:
    return dataclasses.asdict(t)
