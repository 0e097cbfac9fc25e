"""Core ML: one tower -> one ML Program `.mlpackage` (fp16, fp32, or k-means palettized weights),
checked by a numpy MIL interpreter on Linux (`converters/mil.py`) and run by `MLModel.predict`
on macOS.

Path: `torch.export.export(tower).run_decompositions({})` -> `ct.convert(convert_to="mlprogram",
minimum_deployment_target=iOS18)` -> (palettized precisions) `ct.optimize.coreml.palettize_weights`
-> saved package -> the saved package is run through the interpreter on the example and every
calibration input: NaN or Inf in any output is a ConversionError that names the first op producing
it (torch.export can constant-fold `torch.full(-inf).triu(1)` into NaN constants without any error
from the converter; only a numeric check catches it).

Precisions:
- `fp16`: fp16 weights and fp16 compute (`compute_precision=FLOAT16`), no palettization;
- `fp32`: fp32 weights and compute (the interpreter's exactness reference);
- `pal2`, `pal4`, `pal6`, `pal8`: fp16 program whose weights are k-means palettized to 2^n values
  (`CoreMLConfig.granularity`: `per_tensor`, the default, or `per_grouped_channel` with
  `group_size` output channels sharing one palette), with per-weight overrides (`overrides`: glob
  pattern over weight names -> nbits, or None to keep a weight fp16) and per-op-type overrides
  (`op_type_overrides`). Weights under 2048 elements stay fp16 (coremltools' threshold), and
  per_grouped_channel skips weights whose output channels do not divide by `group_size` (the
  text token table, the position embeddings).
- `pal4g`: pal4 in groups of 16 output channels with a per-channel scale (`per_channel_scale`):
  4-bit palettes as `pal4` with the two options that trade size for accuracy, as a precision
  name so that `export --precision coreml:pal4g` and the parity report show it beside `pal4`.
- `palmix`: calibrated mixed-bit palettization (`converters/palettize.py`): on the calibration
  data, each weight gets 3, 4, 6 or 8 bits by its measured effect on the tower's output, under a
  mean of `CoreMLConfig.mean_bits` (3.5) bits per palettized weight, and is rounded onto its k-means
  palette with GPTQ (error feedback through the layer's input statistics) instead of to the
  nearest entry; coremltools then stores each weight's own values as its palette (`unique_lut`),
  and the saved package is read back to check every weight is stored at its planned bits. Needs
  calibration inputs (at least 8); costs about a minute per tower of the shipped student. Known
  limit: a tower whose weights are mostly one table (a 49408-token vocabulary on a narrow text
  tower) cannot raise that table above 3 bits within the mean, and parity then fails it (seen on a
  seeded narrow Hugging Face CLIP: text cosine 0.83); the plan measures the rounded tower first and
  warns, naming the table and the mean that would lift it; pal4 / pal6 are the fallback.

Inputs are what an app has: the image tower takes float32 NCHW pixels in [0, 255] (normalization is
in the graph) as a tensor (`image_input="tensor"`, the default) or as a `ct.ImageType` (RGB, batch
1, scale 1, bias 0, so the program sees the same [0, 255] values); the text tower takes int32 ids.
The output is "embedding" (float32). Files: `{tower}_{precision}.mlpackage` (a folder) and
`{tower}_{precision}.json`; both are built in temporary folders beside their final names and
renamed into place only after the package passed the interpreter check, so they appear together
or not at all and an earlier artifact survives a failed conversion.

Measured on the shipped student by `python benchmarks/coreml_palettization.py` (result in
docs/coreml_palettization.json; tests/converters/test_coreml.py keeps the default honest): weight
file (weight.bin) size and cosine vs eager PyTorch, mean / min over the test split (interpreter with
fp16 compute); agreement = zero-shot top-1 agreement with eager (5 tasks, 100 samples each) with
the Core ML image and text towers together; zs = their zero-shot mean accuracy (eager: 94.4 on
these samples); convert = wall time of both towers on 2 cores, palettization included (palmix:
planning included, in a run that shared the cores with other jobs). Both packages, whole
(model.mlmodel ~78 KB of it): palmix 3.5 0.618 MB (32.2x under the teacher's 19.92 MB of fp32
weights), palmix 3.3 0.587 MB, pal4 0.695 MB, pal6 (default) 0.911 MB.

    config                       image MB  cos mean/min      text MB  cos mean/min      agree  zs %  convert
    fp16                           1.360   1.00000/1.00000   1.006   1.00000/1.00000   0.998  94.2   16 s
    pal8 per_grouped_channel g16   0.764   0.99998/0.99994   0.560   1.00000/1.00000   0.998  94.2   26 s
    pal8 per_tensor                0.702   0.99998/0.99995   0.515   0.99999/0.99999   1.000  94.4   14 s
    pal6 per_grouped_channel g16   0.541   0.99968/0.99888   0.403   0.99995/0.99993   0.996  94.8    9 s
    pal6 per_tensor (default)      0.526   0.99951/0.99699   0.385   0.99991/0.99983   0.990  94.2    7 s
    palmix mean 3.5 bits           0.311   0.99961/0.99825   0.228   0.99989/0.99965   0.994  94.2  259 s
    palmix mean 3.3 bits           0.293   0.99935/0.99735   0.215   0.99984/0.99962   0.986  94.2   64 s
    pal4 per_grouped_channel g16   0.360   0.99500/0.98470   0.272   0.99903/0.99834   0.976  93.4    6 s
    pal4 per_tensor                0.357   0.99543/0.98771   0.259   0.99826/0.99663   0.972  93.8    5 s
    pal4 per_tensor + pcs          0.564   0.99717/0.98568   0.490   0.99850/0.99741   0.978  94.6   26 s
    pal4 per_grouped_channel g16 + pcs
                                   1.711   0.99643/0.98772   1.261   0.99939/0.99895   0.980  92.8   15 s
    pal4 per_grouped_channel g1    0.429   0.99420/0.98420   0.305   0.99887/0.99813   0.966  92.4   21 s
    pal2 per_grouped_channel g16   0.189   0.82399/0.54826   0.147   0.97558/0.96236   0.718  71.2    5 s
    pal2 per_tensor                0.186   0.83593/0.58527   0.133   0.94328/0.83727   0.706  70.2    4 s

pcs = `per_channel_scale` (coremltools' `enable_per_channel_scale`). coremltools 9.0 computes that
scale as each weight's max over its output-channel axis (one scale per input channel), and at the
iOS18 target its `canonicalize_quantized_lut_pattern` pass folds the scale into the palettes (the
scale-after-palette order is only kept from iOS26), so every (group, input channel) gets its own
16-entry palette: with groups of 16 the weights come out larger than fp16 (both packages 3.06 MB
against 2.51), per tensor 1.15 MB. It buys 0.6-0.8 points of agreement over pal4 and stays under
98% per tensor. A weight it cannot palettize (output channels not divisible by the group size) it
would also leave in the program divided by its scale, which turned the text tower's cosine to 0.29;
`_palettize` gives the scale only to the weights coremltools palettizes without it.
The default's rule (the smallest k-means configuration with cosine mean >= 0.99 on both towers and
zero-shot agreement >= 0.98) picks pal6 per tensor: pal4 meets the cosine bar but flips 2.4-2.8% of
the decisions. palmix keeps 99.4% of them at 3.5 bits a weight, smaller than pal4: its bits go
where they move the output (8 to the token table and the position embeddings, 6 to the 3x3 stem
convs, 3 to the big readout projections) and its rounding follows the data. It is not the default because planning costs about
a minute per tower; `export --budget` tries it first.

coremltools is imported inside the functions that use it (it pulls TensorFlow and takes ~15 s).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fnmatch
import io
import json
import logging
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mobile_sdk.errors import ConversionError, DataError

from .base import Artifact, TensorSpec, atomic_output, describe

log = logging.getLogger(__name__)

PLATFORM = "coreml"
PRECISIONS = ("fp16", "fp32", "pal2", "pal4", "pal6", "pal8", "pal4g", "palmix")
# Chosen by measurement (table in the module docstring): the smallest configuration with cosine
# mean >= 0.99 and top-1 agreement >= 98% on the shipped student (the default's rule).
DEFAULT_PRECISION = "pal6"
GRANULARITIES = ("per_tensor", "per_grouped_channel")
IMAGE_INPUTS = ("tensor", "image")
NBITS = (1, 2, 3, 4, 6, 8)  # what coremltools' k-means palettizer supports


def _as_pairs(value, what: str) -> tuple[tuple[str, int | None], ...]:
    items = value.items() if isinstance(value, dict) else value
    out = []
    for item in items or ():
        try:
            key, nbits = item
        except (TypeError, ValueError):
            raise ConversionError(f"{what}: expected (pattern, nbits or None) pairs or a dict, got {item!r}") from None
        if nbits is not None and nbits not in NBITS:
            raise ConversionError(f"{what}[{key!r}]: nbits must be one of {NBITS} or None (keep fp16), got {nbits!r}")
        out.append((str(key), nbits))
    return tuple(out)


@dataclass(frozen=True)
class CoreMLConfig:
    precision: str = DEFAULT_PRECISION  # one of PRECISIONS
    granularity: str = "per_tensor"  # palettization: per_tensor | per_grouped_channel
    group_size: int = 16  # output channels per palette (per_grouped_channel only)
    # Per-weight overrides for palettized precisions, first match wins: glob patterns over the
    # program's weight names (e.g. "p_blocks_0_attn_q_weight_to_fp16"; also tried without the
    # "p_" prefix and "_to_fp16" suffix, so "blocks_0_*" or "*mlp*" work) -> nbits, or None to
    # keep that weight fp16. A dict is accepted and stored as pairs. A pattern matching no weight
    # is an error (a typo would silently palettize everything).
    overrides: tuple[tuple[str, int | None], ...] = ()
    op_type_overrides: tuple[tuple[str, int | None], ...] = ()  # e.g. {"conv": None}: keep convs fp16
    mean_bits: float = 3.5  # palmix: mean bits per palettized weight (3 to 8)
    # k-means palettized precisions: coremltools' per-channel scale (`enable_per_channel_scale`):
    # each weight is divided by its max over the output channels (one scale per input channel)
    # before clustering. Measured on the shipped student (module docstring): at the iOS18 target
    # coremltools folds the scale into the palettes, one palette per (group, input channel), so
    # grouped palettes come out larger than fp16; not a size win here.
    per_channel_scale: bool = False
    image_input: str = "tensor"  # image tower input: "tensor" (float32 NCHW) | "image" (ct.ImageType RGB)
    verify: bool = True  # run the saved package through the MIL interpreter (NaN / Inf check)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ConversionError(f"unknown Core ML precision {self.precision!r}; choose one of {PRECISIONS}")
        if self.granularity not in GRANULARITIES:
            raise ConversionError(f"unknown palettization granularity {self.granularity!r}; choose one of {GRANULARITIES}")
        if not isinstance(self.group_size, int) or self.group_size < 1:
            raise ConversionError(f"group_size must be a positive int, got {self.group_size!r}")
        if self.image_input not in IMAGE_INPUTS:
            raise ConversionError(f"unknown image_input {self.image_input!r}; choose one of {IMAGE_INPUTS}")
        if self.precision == "pal4g":  # pal4, grouped, with a per-channel scale
            object.__setattr__(self, "granularity", "per_grouped_channel")
            object.__setattr__(self, "per_channel_scale", True)
        object.__setattr__(self, "overrides", _as_pairs(self.overrides, "overrides"))
        object.__setattr__(self, "op_type_overrides", _as_pairs(self.op_type_overrides, "op_type_overrides"))
        if (self.overrides or self.op_type_overrides) and self.nbits is None:
            raise ConversionError(f"palettization overrides need a k-means palettized precision (pal2/pal4/pal6/pal8), "
                                  f"not {self.precision!r}" + (" (palmix picks each weight's bits itself)"
                                                               if self.precision == "palmix" else ""))
        if self.per_channel_scale and self.nbits is None:
            raise ConversionError(f"per_channel_scale needs a k-means palettized precision (pal2/pal4/pal6/pal8), "
                                  f"not {self.precision!r}")
        if not isinstance(self.mean_bits, (int, float)) or not 3 <= self.mean_bits <= 8:
            raise ConversionError(f"mean_bits must be a number from 3 to 8 (bits per palettized weight), "
                                  f"got {self.mean_bits!r}")

    @property
    def nbits(self) -> int | None:
        """The one bit width of the k-means palettized precisions (None: fp16, fp32, palmix)."""
        bits = self.precision[3:].removesuffix("g")
        return int(bits) if self.precision.startswith("pal") and bits.isdigit() else None


CONFIG = CoreMLConfig


def _tower_module(model, tower: str) -> torch.nn.Module:
    """The tower in the form this converter exports (`rewrites.export_form`: finite masks, explicit
    attention; the built-in towers as they are)."""
    from .executorch import tower_module
    from .rewrites import export_form

    return export_form(tower_module(model, tower))


def _exported(module: torch.nn.Module, example: torch.Tensor):
    """torch.export + decompositions, without the `aten.alias` nodes a no-op slice leaves
    (`position_ids[:, :seq_len]` of Hugging Face towers): coremltools 9 cannot convert them, and
    an alias is its input."""
    ep = torch.export.export(module, (example,)).run_decompositions({})
    graph = ep.graph_module.graph
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target in (torch.ops.aten.alias.default, torch.ops.aten.alias_copy.default):
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
    ep.graph_module.recompile()
    return ep


def _check_example(tower: str, x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{what}: expected a torch tensor, got {type(x).__name__}")
    if tower == "image" and (x.dtype != torch.float32 or x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3):
        raise DataError(f"{what}: the image tower takes float32 pixels (1, 3, H, W) in [0, 255], "
                        f"got {x.dtype} {tuple(x.shape)}")
    if tower == "text" and (x.dtype != torch.int32 or x.dim() != 2 or x.shape[0] != 1):
        raise DataError(f"{what}: the text tower takes int32 ids (1, T), got {x.dtype} {tuple(x.shape)}")
    return x.contiguous()


def _import_ct():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import coremltools as ct

    return ct


def _quiet():
    """coremltools draws tqdm progress bars on stderr for every pass pipeline of every conversion;
    they are shown at -vv (DEBUG) only: quiet logs by default."""
    if log.isEnabledFor(logging.DEBUG):
        return contextlib.nullcontext()
    return contextlib.redirect_stderr(io.StringIO())


def _ct_inputs(ct, tower: str, example: torch.Tensor, config: CoreMLConfig):
    shape = tuple(example.shape)
    if tower == "image":
        if config.image_input == "image":
            # Batch 1, one scalar scale: scale 1 / bias 0 keep the [0, 255] values the graph normalizes.
            return [ct.ImageType(name="pixels", shape=shape, color_layout=ct.colorlayout.RGB, scale=1.0,
                                 bias=[0.0, 0.0, 0.0], channel_first=True)]
        return [ct.TensorType(name="pixels", shape=shape, dtype=np.float32)]
    return [ct.TensorType(name="ids", shape=shape, dtype=np.int32)]


def _weight_names(prog) -> list[str]:
    """Names of the const ops holding float tensors (the weights palettization may touch)."""
    names = []
    for op in prog.functions["main"].operations:
        if op.op_type == "const":
            v = op.outputs[0].val
            if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size > 1:
                names.append(op.name)
    return names


def _match(pattern: str, name: str) -> bool:
    short = name[2:] if name.startswith("p_") else name
    for suffix in ("_to_fp16", "_to_fp32"):
        if short.endswith(suffix):
            short = short[: -len(suffix)]
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(short, pattern)


def palettization_config(ml, config: CoreMLConfig, only: set[str] | None = None):
    """The coremltools OptimizationConfig for `config` on the converted model `ml`: a global k-means
    palettizer plus per-weight (`overrides`, resolved against the program's weight names) and
    per-op-type configs (None = that weight / op type stays fp16). `only`: the weights that may be
    palettized at all; every other weight is kept fp16 explicitly."""
    from coremltools.optimize.coreml import OpPalettizerConfig, OptimizationConfig

    def pal(nbits):
        if nbits is None:
            return None
        kw = {"group_size": int(config.group_size)} if config.granularity == "per_grouped_channel" else {}
        return OpPalettizerConfig(mode="kmeans", nbits=nbits, granularity=config.granularity,
                                  enable_per_channel_scale=config.per_channel_scale, **kw)

    names = _weight_names(ml._mil_program)
    by_name, used = {}, set()
    for name in names:
        for pattern, nbits in config.overrides:
            if _match(pattern, name):
                by_name[name] = pal(nbits)
                used.add(pattern)
                break
    unused = [p for p, _ in config.overrides if p not in used]
    if unused:
        raise ConversionError(f"palettization override pattern(s) {unused} match no weight; the weights are: "
                              f"{', '.join(names)}")
    present = {op.op_type for op in ml._mil_program.functions["main"].operations}
    missing = [t for t, _ in config.op_type_overrides if t not in present]
    if missing:
        raise ConversionError(f"palettization op_type_overrides {missing}: no such op type in the program "
                              f"(op types: {', '.join(sorted(present))})")
    by_type = {t: pal(n) for t, n in config.op_type_overrides}
    if only is not None:
        by_name.update({n: None for n in names if n not in only})
    return OptimizationConfig(global_config=pal(config.nbits), op_name_configs=by_name or None,
                              op_type_configs=by_type or None)


def _palettize(ct, ml, config: CoreMLConfig):
    """`ml` with its weights k-means palettized per `config`. With `per_channel_scale`, coremltools
    9.0 divides each weight by its scale in place before it decides whether it can palettize it, so a
    weight it then skips (per_grouped_channel: output channels not divisible by the group size) is
    left in the program divided by its scale, and the model computes something else. So the weights
    it can palettize are found first, on a copy, without the scale, and only those get the scale."""
    if not config.per_channel_scale:
        return ct.optimize.coreml.palettize_weights(ml, palettization_config(ml, config))
    # palettize_weights leaves `ml` as it is; palN, as pal4g is pal4 with the scale
    plain = dataclasses.replace(config, precision=f"pal{config.nbits}", per_channel_scale=False)
    probe = ct.optimize.coreml.palettize_weights(ml, palettization_config(ml, plain))
    done = {op.name.removesuffix("_palettized") for op in probe._mil_program.functions["main"].operations
            if op.op_type == "constexpr_lut_to_dense"}
    return ct.optimize.coreml.palettize_weights(ml, palettization_config(ml, config, only=done))


def _const_name(param: str, names: list[str]) -> str | None:
    """The program's constant holding torch parameter `param` (torch.export lifts it as
    "p_" + its path with "_" for "."; fp16 programs add "_to_fp16")."""
    want = param.replace(".", "_")
    return next((n for n in names if _match(want, n.removesuffix("_palettized"))), None)


def unique_lut(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(palette, uint8 indices) of an already-rounded weight: its distinct values, padded to the
    next palette size Core ML stores. coremltools' own "unique" mode counts the values with
    np.unique on the fp16 weight, and NumPy's AVX-512 (Ice Lake) quicksort of float16 misorders
    arrays with many repeated values (NumPy 2.3 - 2.4): a 16-value weight of 16384 elements came
    out as 32 "distinct" values and was stored at 6 bits instead of 4. Counted in float32 here
    (np.unique with an inverse sorts by argsort, which is right there too)."""
    values, inverse = np.unique(weight.reshape(-1).astype(np.float32), return_inverse=True)
    nbits = next((b for b in NBITS if len(values) <= 1 << b), None)
    if nbits is None:
        raise ConversionError(f"palmix: a weight has {len(values)} distinct values, more than an 8-bit palette holds")
    lut = np.zeros(1 << nbits, dtype=weight.dtype)
    lut[:len(values)] = values.astype(weight.dtype)
    return lut, inverse.reshape(-1).astype(np.uint8)


def unique_config(ml, nbits: dict[str, int]):
    """The OptimizationConfig that stores each already-rounded weight of `nbits` (torch parameter
    name -> bits) with its own distinct values as the palette (`unique_lut`, as coremltools'
    "unique" mode but counted in float32), and leaves every other weight fp16. A planned weight
    that is not a constant of the program (folded into another by coremltools) is a
    ConversionError: its bytes would silently stay fp16."""
    from coremltools.optimize.coreml import OpPalettizerConfig, OptimizationConfig

    names = _weight_names(ml._mil_program)
    found = {p: _const_name(p, names) for p in nbits}
    missing = [p for p, n in found.items() if n is None]
    if missing:
        raise ConversionError(f"palmix: weight(s) {missing} are not constants of the converted program "
                              f"(coremltools folded them into other ops), so they cannot be stored palettized; "
                              f"export with pal4 / pal6 instead. The program's weights are: {', '.join(names)}")
    return OptimizationConfig(global_config=None, op_name_configs={
        n: OpPalettizerConfig(mode="custom", lut_function=unique_lut, weight_threshold=1) for n in found.values()})


def _check_plan(stored: dict[str, int], nbits: dict[str, int], tower: str) -> None:
    """Every planned weight (`nbits`: torch name -> bits) is stored palettized (`stored`: the saved
    program's palettized weights -> bits) with at most its planned bits."""
    at = {p: stored.get(_const_name(p, list(stored)) or "") for p in nbits}
    wrong = {p: (b, at[p]) for p, b in nbits.items() if at[p] is None or at[p] > b}
    if wrong:
        raise ConversionError(f"Core ML palmix, {tower} tower: weights not stored at their planned bits "
                              f"(planned, stored): {wrong}")


def _palettization_record(config: CoreMLConfig, plan: dict | None) -> dict | None:
    if plan is not None:
        return {"mode": "calibrated_mixed", "rounding": "gptq", "mean_bits": plan["mean_bits"],
                "target_mean_bits": plan["target_mean_bits"], "nbits": plan["nbits"],
                "calibration_n": plan["calibration_n"], "sensitivity_n": plan["sensitivity_n"],
                "planned_cosine_mean": plan["cosine_mean"], "planned_cosine_min": plan["cosine_min"]}
    if config.nbits is None:
        return None
    return {"mode": "kmeans", "nbits": config.nbits, "granularity": config.granularity,
            "group_size": int(config.group_size) if config.granularity == "per_grouped_channel" else None,
            "per_channel_scale": config.per_channel_scale,
            "overrides": [list(p) for p in config.overrides],
            "op_type_overrides": [list(p) for p in config.op_type_overrides]}


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def _verify(package: Path, inputs: list[torch.Tensor], reference: np.ndarray, tower: str,
            planned: dict[str, int] | None = None) -> dict:
    """Run the saved package through the interpreter (the program's own dtypes: fp16 programs are
    rounded to fp16 after each op, so fp16 overflow shows too). NaN / Inf -> ConversionError naming
    the first op that produced one. `planned` (palmix: torch weight name -> bits): every such weight
    must be stored at no more than its bits (`_check_plan`)."""
    from .mil import MilProgram

    try:
        prog = MilProgram(package)
    except ConversionError as e:
        raise ConversionError(f"Core ML verify step of the {tower} tower: the saved package cannot be "
                              f"interpreted: {e}") from e
    if planned is not None:  # palmix: each weight at no more than its planned bits
        _check_plan(prog.palettized, planned, tower)
    outs = []
    for i, x in enumerate(inputs):
        out = prog(x.numpy())
        if not np.isfinite(out).all():
            bad = prog.first_nonfinite(x.numpy())
            where = f"first at op {bad.name!r} ({bad.op_type}, output {bad.outputs[0]!r})" if bad else "in the output"
            const_bad = [n for n, v in prog.consts.items()
                         if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.isfinite(v).all()]
            consts = f"; non-finite constants in the program: {', '.join(const_bad[:5])}" if const_bad else ""
            raise ConversionError(f"Core ML verify step of the {tower} tower: the converted program computes "
                                  f"NaN/Inf on {'the example' if i == 0 else f'calibration input {i - 1}'}, "
                                  f"{where}{consts}. A constant folded to NaN (e.g. torch.full(-inf).triu) "
                                  f"or an fp16 overflow; eager PyTorch gives finite values")
        outs.append(out)
    cos = _cosines(np.concatenate(outs), reference)
    return {"n": len(inputs), "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()),
            "max_abs": float(np.abs(np.concatenate(outs) - reference.reshape(len(outs), -1)).max()),
            "op_types": dict(sorted(prog.op_types.items())),
            "palettized_weights": len(prog.palettized),
            "palettized_nbits": dict(sorted(Counter(prog.palettized.values()).items())),
            "dense_weights": [n for n in prog.weight_names() if prog.consts[n].size >= 2048]}


def convert(model, tower: str, example: torch.Tensor, config: CoreMLConfig, out_dir: Path,
            calibration: list[torch.Tensor] | None = None) -> Artifact:
    """Convert one tower to `OUT/{tower}_{precision}.mlpackage` + `.json`, verified and atomic."""
    t0 = time.perf_counter()
    module = _tower_module(model, tower)
    example = _check_example(tower, example, "example")
    calibration = [_check_example(tower, x, f"calibration input {i}") for i, x in enumerate(calibration or [])]
    if any(tuple(x.shape) != tuple(example.shape) for x in calibration):
        raise DataError(f"calibration inputs must have the example's shape {tuple(example.shape)}")
    inputs = [example] + calibration
    with torch.no_grad():
        reference = torch.cat([module(x) for x in inputs]).numpy()
    plan = None
    if config.precision == "palmix":  # round a copy's weights on the calibration data (palettize.py)
        from .palettize import palettize_mixed

        module = copy.deepcopy(module)
        plan = palettize_mixed(module, calibration, config.mean_bits)
    ct = _import_ct()
    step = "export"
    try:
        with _quiet():
            ep = _exported(module, example)
            step = "convert"
            ml = ct.convert(ep, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                            compute_precision=ct.precision.FLOAT32 if config.precision == "fp32" else ct.precision.FLOAT16,
                            inputs=_ct_inputs(ct, tower, example, config),
                            outputs=[ct.TensorType(name="embedding", dtype=np.float32)])
            if config.nbits is not None:
                step = "palettize"
                ml = _palettize(ct, ml, config)
            elif plan is not None:
                step = "palettize"
                ml = ct.optimize.coreml.palettize_weights(ml, unique_config(ml, plan["nbits"]))
    except (ConversionError, DataError):
        raise
    except Exception as e:  # name the step that failed
        raise ConversionError(f"Core ML {step} step of the {tower} tower ({config.precision}) failed: "
                              f"{type(e).__name__}: {e}") from e
    desc = describe(model, tower, config.precision, tuple(example.shape))
    _set_metadata(ml, desc, tower, config.precision)
    out_dir = Path(out_dir)
    path = out_dir / f"{tower}_{config.precision}.mlpackage"
    input_spec = TensorSpec("pixels", tuple(example.shape), "float32", "NCHW") if tower == "image" else \
        TensorSpec("ids", tuple(example.shape), "int32", "NT")
    artifact = Artifact(PLATFORM, tower, config.precision, path, [input_spec],
                        [TensorSpec("embedding", (1,) + tuple(reference.shape[1:]), "float32", "NC")])
    artifact.extra.update({
        "description": desc,
        "input_type": "image" if tower == "image" and config.image_input == "image" else "tensor",
        "compute_precision": "fp32" if config.precision == "fp32" else "fp16",
        "minimum_deployment_target": "iOS18",
        "palettization": _palettization_record(config, plan),
    })
    json_path = path.with_suffix(".json")
    # Both files are built beside their final names and renamed only when everything passed: the
    # package first (inner context), then its metadata; any error removes both temporaries.
    with atomic_output(json_path) as tmp_json, atomic_output(path) as tmp_pkg:
        try:
            ml.save(str(tmp_pkg))
            make_reproducible(tmp_pkg)
        except Exception as e:
            raise ConversionError(f"Core ML save step of the {tower} tower ({config.precision}) failed: "
                                  f"{type(e).__name__}: {e}") from e
        if config.verify:
            artifact.extra["verify"] = _verify(tmp_pkg, inputs, reference, tower, plan and plan["nbits"])
        weights = tmp_pkg / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
        artifact.extra["weights_bytes"] = weights.stat().st_size if weights.is_file() else 0
        artifact.extra["bytes"] = _dir_bytes(tmp_pkg)
        artifact.extra["convert_s"] = round(time.perf_counter() - t0, 2)
        tmp_json.write_text(json.dumps(artifact.to_dict(), indent=2) + "\n")
    return artifact


def _set_metadata(ml, desc: dict, tower: str, precision: str) -> None:
    """Author, license, version, descriptions of the model, its input and output, and the
    preprocessing (JSON, under mobile_sdk.preprocess) in the package's own metadata, where Xcode
    and `coremltools.models.MLModel(...).short_description` show them."""
    ml.author, ml.license, ml.version = desc["author"], desc["license"], desc["version"]
    ml.short_description = desc["short_description"]
    for name, text in desc["inputs"].items():
        ml.input_description[name] = text
    for name, text in desc["outputs"].items():
        ml.output_description[name] = text
    meta = {"mobile_sdk.tower": tower, "mobile_sdk.precision": precision}
    if desc.get("preprocess"):
        meta["mobile_sdk.preprocess"] = json.dumps(desc["preprocess"], sort_keys=True)
    ml.user_defined_metadata.update(meta)


def make_reproducible(package: Path) -> None:
    """Same model -> same package bytes. `MLModel.save` gives the package's two items random UUIDs
    (Manifest.json), serializes the spec's metadata map in hash order and stamps the conversion
    date; here the identifiers become name-based UUIDs, the spec is re-serialized deterministically
    and the date is dropped. The weights (weight.bin) are already deterministic."""
    import uuid

    from coremltools.proto import Model_pb2

    mlmodel = package / "Data" / "com.apple.CoreML" / "model.mlmodel"
    spec = Model_pb2.Model()
    spec.ParseFromString(mlmodel.read_bytes())
    spec.description.metadata.userDefined.pop("com.github.apple.coremltools.conversion_date", None)
    mlmodel.write_bytes(spec.SerializeToString(deterministic=True))
    manifest_path = package / "Manifest.json"
    manifest = json.loads(manifest_path.read_text())
    ids = {old: str(uuid.uuid5(uuid.NAMESPACE_URL, f"mobile-sdk/{entry['path']}"))
           for old, entry in manifest["itemInfoEntries"].items()}
    manifest["itemInfoEntries"] = dict(sorted((ids[k], v) for k, v in manifest["itemInfoEntries"].items()))
    manifest["rootModelIdentifier"] = ids[manifest["rootModelIdentifier"]]
    manifest_path.write_text(json.dumps(manifest, indent=4) + "\n")


# ---------------------------------------------------------------------------------------------
# Intermediates (divergence localization)
# ---------------------------------------------------------------------------------------------

# FX ops that only re-view a tensor (same elements, same order). coremltools may drop them, so a
# layer whose last node is one of these is also looked up under the node before it.
_VIEW_OPS = frozenset({"view", "reshape", "_unsafe_view", "clone", "contiguous", "alias", "flatten",
                       "squeeze", "unsqueeze"})
# coremltools keeps an FX node's name for the MIL value computing it; in fp16 programs with a suffix.
_MIL_SUFFIXES = ("", "_cast_fp16", "_cast_fp32")


def _aten_name(node) -> str:
    parts = str(node.target).split(".")  # "aten.view.default" -> "view"
    return parts[1] if len(parts) > 1 and parts[0] == "aten" else parts[0]


def layer_nodes(module: torch.nn.Module, example: torch.Tensor) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """For each layer of `mobile_sdk.parity.localize.layer_paths(module)`: the FX nodes of the graph
    the converter exports (`torch.export.export(module, (example,)).run_decompositions({})`) that
    hold the layer's output, as (node name, shape): the last node inside the layer's module (per
    `nn_module_stack`), followed by the nodes before it while those are mere re-views."""
    from mobile_sdk.parity.localize import in_module_stack, layer_points

    points = layer_points(module)
    ep = _exported(module, example)
    inside: dict[str, list] = {p: [] for p in points}
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        for p in in_module_stack(node, points):
            inside[p].append(node)
    out = {}
    for p, nodes in inside.items():
        cands = []
        for node in reversed(nodes):
            val = node.meta.get("val")
            if not hasattr(val, "shape"):
                break
            cands.append((node.name, tuple(int(s) for s in val.shape)))
            if _aten_name(node) not in _VIEW_OPS:
                break
        if cands:
            out[p] = cands
    return out


def _resolve_values(cands: dict[str, list[tuple[str, tuple[int, ...]]]], values: dict[str, np.ndarray]) \
        -> dict[str, tuple[str, tuple[int, ...]]]:
    """layer -> (MIL value name, layer output shape): the first candidate FX node whose name (with
    or without coremltools' cast suffix) is a value of the program with the node's shape."""
    chosen = {}
    for layer, nodes in cands.items():
        shape = nodes[0][1]
        for node, node_shape in nodes:
            hit = next((node + s for s in _MIL_SUFFIXES
                        if node + s in values and tuple(np.shape(values[node + s])) == node_shape), None)
            if hit is not None:
                chosen[layer] = (hit, shape)
                break
        else:
            log.info("Core ML intermediates: no MIL value for layer %s (FX nodes %s)", layer, [n for n, _ in nodes])
    return chosen


def intermediates(model, tower: str, precision: str, inputs: torch.Tensor,
                  calibration: list[torch.Tensor] | None = None, artifact_path: str | Path | None = None,
                  fp16: bool | None = None) -> dict[str, np.ndarray]:
    """Each layer's output (`mobile_sdk.parity.localize.layer_paths` + `embedding`) as the saved
    package computes it, for the parity checker's divergence localization.

    The artifact itself is read, not rebuilt: the package at `artifact_path` is run by the MIL
    interpreter (`converters/mil.py`, with the runner's default precision policy `fp16=None`: the
    program's own dtypes, so an fp16 / palettized program is rounded to fp16 after every op) with
    every value kept. coremltools names each MIL value after the torch.export FX node it comes from
    (fp16 programs add `_cast_fp16`), so a layer's output is the value named after the last FX node
    of the layer's module in the graph the converter exports (`layer_nodes`), accepted only if its
    shape is that node's. A layer whose value coremltools fused away or renamed is left out (logged);
    on the shipped towers every layer maps (tests/converters/test_coreml.py checks the fp32 values
    against the eager hooks). `embedding` is the program's output, what `CoreMLRunner` returns with
    the interpreter. `precision` and `calibration` are not needed (the package holds its weights).
    On macOS the values still come from the interpreter: MLModel.predict exposes only the outputs.
    `fp16` overrides the interpreter's precision policy (True: fp16 everywhere, False: fp32).
    """
    from .mil import MilProgram

    if precision not in PRECISIONS:
        raise ConversionError(f"unknown Core ML precision {precision!r}; choose one of {PRECISIONS}")
    if artifact_path is None:
        raise ConversionError("Core ML intermediates read the artifact itself: pass its artifact_path")
    inputs = torch.as_tensor(inputs)
    if inputs.dim() < 2 or len(inputs) == 0:
        raise DataError(f"inputs: expected a batch (n, ...) of raw tower inputs, got shape {tuple(inputs.shape)}")
    module = _tower_module(model, tower)
    example = _check_example(tower, inputs[:1], "inputs")
    try:
        cands = layer_nodes(module, example)
    except Exception as e:
        raise ConversionError(f"Core ML intermediates: torch.export of the {tower} tower failed: "
                              f"{type(e).__name__}: {e}") from e
    prog = MilProgram(artifact_path, fp16=fp16)
    output = prog.outputs[0]
    chosen: dict[str, tuple[str, tuple[int, ...]]] | None = None
    got: dict[str, list[np.ndarray]] = {}
    for i in range(len(inputs)):
        values = prog.run(np.ascontiguousarray(inputs[i:i + 1].numpy()), keep_all=True)
        if chosen is None:
            chosen = _resolve_values(cands, values)
            got = {layer: [] for layer in chosen}
            got["embedding"] = []
        for layer, (name, shape) in chosen.items():
            got[layer].append(np.asarray(values[name], np.float32).reshape(shape))
        got["embedding"].append(np.asarray(values[output], np.float32))
    return {k: np.concatenate(v) for k, v in got.items()}


# ---------------------------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------------------------

def predict_available() -> tuple[bool, str]:
    """(True, "") where `MLModel.predict` can run an iOS18 ML Program, else (False, why)."""
    if sys.platform != "darwin":
        return False, f"Core ML prediction needs macOS (this is {sys.platform})"
    major = int((platform.mac_ver()[0] or "0").split(".")[0])
    if major < 15:
        return False, f"iOS18 ML Programs need macOS 15 or later (this is macOS {platform.mac_ver()[0]})"
    try:
        _import_ct()
        import coremltools.libcoremlpython  # noqa: F401
    except ImportError:
        return False, "coremltools has no native Core ML bridge (libcoremlpython) in this install"
    return True, ""


_SPEC_DTYPES = {"FLOAT32": "float32", "INT32": "int32", "FLOAT16": "float16", "DOUBLE": "float64"}


def _package_input(spec) -> tuple[TensorSpec, bool]:
    """The package's (single) input as a TensorSpec, and whether it is an image input."""
    desc = spec.description.input
    if len(desc) != 1:
        raise ConversionError(f"expected a single-input model, got inputs {[d.name for d in desc]}")
    d = desc[0]
    kind = d.type.WhichOneof("Type")
    if kind == "imageType":
        img = d.type.imageType
        channels = 1 if img.colorSpace == img.GRAYSCALE else 3
        return TensorSpec(d.name, (1, channels, int(img.height), int(img.width)), "float32", "NCHW"), True
    if kind == "multiArrayType":
        arr = d.type.multiArrayType
        name = arr.DESCRIPTOR.fields_by_name["dataType"].enum_type.values_by_number[arr.dataType].name
        dtype = _SPEC_DTYPES.get(name)
        if dtype is None:
            raise ConversionError(f"input {d.name}: unsupported multiarray data type {name}")
        shape = tuple(int(s) for s in arr.shape)
        return TensorSpec(d.name, shape, dtype, "NCHW" if len(shape) == 4 else "NT"), False
    raise ConversionError(f"input {d.name}: unsupported Core ML input type {kind!r}")


class CoreMLRunner:
    """Runs a `.mlpackage`: `MLModel.predict` where Core ML can predict (macOS 15+), the numpy MIL
    interpreter elsewhere (`backend="auto"`; force one with "predict" / "interpreter"). Inputs are
    the eager tower's: float32 NCHW pixels in [0, 255] (also for ImageType packages) or int32 ids;
    output: float32 embeddings. `fp16` is the interpreter's precision policy (`mil.MilProgram`)."""

    def __init__(self, path: str | Path, fp16: bool | None = None, backend: str = "auto"):
        path = Path(path)
        if not path.exists():
            raise ConversionError(f"Core ML package not found: {path}")
        if backend not in ("auto", "predict", "interpreter"):
            raise ConversionError(f"unknown backend {backend!r}; choose auto, predict or interpreter")
        if backend == "auto":
            backend = "predict" if predict_available()[0] else "interpreter"
        elif backend == "predict" and not predict_available()[0]:
            raise ConversionError(f"cannot predict with Core ML here: {predict_available()[1]}")
        self.path, self.backend = path, backend
        from .mil import MilProgram, load_program

        if backend == "interpreter":
            self.program = MilProgram(path, fp16=fp16)
            spec = self.program.spec
        else:
            _, spec = load_program(path)
            ct = _import_ct()
            try:
                self.model = ct.models.MLModel(str(path))
            except Exception as e:
                raise ConversionError(f"cannot load {path} with Core ML ({type(e).__name__}: {e})") from e
        self.spec, self.image_input = _package_input(spec)
        self.output = spec.description.output[0].name

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        if not isinstance(inputs, np.ndarray):
            raise DataError(f"input {self.spec.name}: expected a numpy array, got {type(inputs).__name__}")
        if tuple(inputs.shape) != tuple(self.spec.shape):
            raise DataError(f"input {self.spec.name}: expected shape {tuple(self.spec.shape)}, got {tuple(inputs.shape)}")
        if inputs.dtype != np.dtype(self.spec.dtype):
            raise DataError(f"input {self.spec.name}: expected dtype {self.spec.dtype}, got {inputs.dtype}")
        if self.backend == "interpreter":
            return self.program(inputs)
        feed = self._image(inputs) if self.image_input else np.ascontiguousarray(inputs)
        out = self.model.predict({self.spec.name: feed})[self.output]
        return np.asarray(out, np.float32)

    def _image(self, pixels: np.ndarray):
        from PIL import Image

        if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(pixels, np.round(pixels)):
            raise DataError(f"input {self.spec.name}: an ImageType package takes whole pixel values in [0, 255]")
        hwc = pixels[0].transpose(1, 2, 0).astype(np.uint8)
        return Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc, "L" if hwc.shape[-1] == 1 else "RGB")


def load(path: str | Path) -> CoreMLRunner:
    return CoreMLRunner(path)
