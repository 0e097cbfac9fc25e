"""TFLite / LiteRT: one tower -> one `.tflite` (fp32, fp16, full-integer int8, int8_cpu), a runner on
`ai_edge_litert`, and a check of every artifact written (op list, tensor dtypes, XNNPACK partitions).

The route:
    torch.onnx.export(dynamo=True) -> ONNX checks -> onnx2tf -> SavedModel
      fp32 / fp16: the float32 / float16-weight .tflite that onnx2tf writes beside the SavedModel
      int8 / int8_cpu: TFLiteConverter.from_saved_model calibrates (calibrate-only), the activation
        ranges are re-set from percentiles of the calibration data, then the MLIR quantizer writes
        the model with int8 input and output (int32 token ids stay int32).
- `int8` is FULL-INTEGER: no float tensor and no Flex/custom op anywhere (checked after writing).
- `int8_cpu` keeps the ops LiteRT's XNNPACK delegate cannot take in int8 (softmax, GELU, the
  LayerNorm and L2-norm arithmetic) as small float islands (DEQUANTIZE -> op -> QUANTIZE, through the
  quantizer's per-node denylist), and gives the second input of every BATCH_MATMUL (K, V) a
  symmetric range so its zero point is 0, which XNNPACK needs to take an int8 BATCH_MATMUL. Each
  tower then runs as ONE XNNPACK partition (the naive int8 image tower: 42), with no change to the
  model; inputs, outputs, FULLY_CONNECTED, CONV_2D and BATCH_MATMUL stay int8, except a
  convolution of at most 32 products per output (a 3x3 conv on 3 pixel channels), kept float:
  XNNPACK runs the student's first conv 3x slower in int8 than in fp32 on an AVX2 host (256 vs 88
  us; benchmarks/student_profile.py), and its weights are few. An ADD / SUB whose input and output
  ranges differ more than XNNPACK's int8 ADD takes (ADD_SCALE_RATIO) stays float too: a residual add
  whose branch is scaled by a tiny layer scale (FastViT's 1e-5 at initialization) cut MobileCLIP2-S0's
  seeded image tower into 24 partitions; kept float, 2.
- Depthwise convs of more than 25 taps (FastViT's 7x7 token mixers and MLP convs) are exported as
  row bands of at most 25 taps (`converters.rewrites.band_depthwise`, the same function): LiteRT's
  XNNPACK runs larger depthwise convs on its general convolution. MobileCLIP2-S0's image tower, 1
  thread, interleaved with ONNX Runtime fp32 (69.1 ms): fp32 113.3 -> 69.2 ms, int8_cpu 309.1 ->
  81.7 ms, int8_cpu cosine unchanged (0.99986 mean).
- Text towers are exported with their residual stream centred and rotated
  (`converters.rewrites.rotate_residual`, the same function in float): the trained text towers
  carry a few outlier channels (the shipped student: up to |16| where most channels stay under
  1.5), and with one int8 scale per tensor the other channels keep a few steps and TF's int8
  LayerNorm squares their deviations to zero. Rotated, the outliers are spread over the whole width.
  On the shipped student's prompts: full-integer text cosine 0.9931 -> 0.9996, zero-shot agreement
  of the text tower alone (eager image tower, 400 test samples per task) 97.2% -> 98.7%. The image
  tower is not rotated: measured the same way, rotating it (ln_pre's affine and the rotation then
  become one extra FULLY_CONNECTED) changed nothing (99.0% -> 98.9%).
Measured on the shipped student (`make demo`: all 300 calibration images / captions, 100 test
samples per task), cosine vs eager mean / min on the test split: int8 image 0.9990 / 0.997, text
0.9996 / 0.995; int8_cpu image 0.9992 / 0.997, text 0.9997 / 0.996; fp32 1.00000. Zero-shot top-1
agreement with the eager model (cosine scores, as the apps score): int8 98.4%, int8_cpu 98.4% (98.8% before its first conv was kept float)
(the bar is 98%; at 400 test samples per task 98.1% and 98.6%). The remaining flips are shape
and relation decisions that the student itself nearly ties (19% of relation samples have a top-2
cosine margin under 0.005). Tried on the image tower without gain: min/max or a 99.9 percentile
instead of 99.99 (worse), and, on int8_cpu, keeping in float the stem convolutions, the patch
embedding, every ADD, every BATCH_MATMUL, every FULLY_CONNECTED, or all convolutions with every
ADD/MUL/SUB including the pixel normalization: the loss is in the int8 tensors between the ops,
which every variant keeps. More calibration samples did help it (128 -> 300: agreement of the
image tower alone 98.9% -> 99.4%).
The image towers read out all their tokens, and the LayerNorm before the blocks (`ln_pre`) sees
tokens whose variances span 3-4 orders of magnitude (flat background vs an object). With the usual
eps 1e-5 that broke the full-integer graph: one int8 scale per tensor leaves a background token's
deviations a step or two, which the LayerNorm blew up to unit variance (first divergent layer
`ln_pre`, SQNR 8 dB, cosine 0.977 on the previous student). The shipped models use eps 1.0 there
(`VisionConfig.ln_pre_eps`), which keeps flat tokens small: ln_pre SQNR 21 dB, cosine 0.9987.
- The image tower takes raw pixels in [0, 255]; onnx2tf makes the input NHWC (the runner transposes
  the reference's NCHW itself). Its int8 input range is pinned to [0, 255]: scale 1, zero point
  -128, so the int8 input is exactly `uint8_pixel - 128`.

onnx2tf's pitfalls, each handled here: it downloads a sample-image file for any 4-D image input (we
write it from the calibration images into a private working directory first), it overwrites its
input .onnx (it gets a copy), it crashes on ReduceL2 and makes Flex ops from int64 ids, and an
infinite mask constant ruins int8 (the exported ONNX is checked for all three before onnx2tf runs),
and it calls `sys.exit` (caught). onnx2tf's and TensorFlow's output, Python and C++ alike, goes to a
log file that is shown only on failure or when this module's logger is at DEBUG.

TensorFlow, onnx2tf and LiteRT are imported inside the functions that use them.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mobile_sdk.errors import ConversionError, DataError

from .base import Artifact, TensorSpec, atomic_output, describe

log = logging.getLogger(__name__)

PLATFORM = "tflite"
PRECISIONS = ("fp32", "fp16", "int8", "int8_cpu", "int4w")
SHORT_CONV = 32  # int8_cpu: convolutions with at most this many products per output stay float
ADD_SCALE_RATIO = (2.0 ** -10, 2.0 ** 8)  # XNNPACK's int8 ADD: input scale / output scale in [lo, hi)
# int4w: the fp32 model's weights in 4 bits, blocks of 32 input channels with one scale each, and
# int8 activations quantized per call (LiteRT Quantizer's dynamic_wi4b32_afp32 recipe; XNNPACK's
# qd8-f32-qb4w kernels). On the shipped student: image 1.01 MB / text 0.34 MB, test cosine 0.9992.
INT4_RECIPE = "dynamic_wi4b32_afp32"
DEFAULT_PRECISION = "int8"
INPUT_NAMES = {"image": "pixels", "text": "ids"}
# Graph output name; not "embedding": the exporter names nn.Embedding's Gather output that, and
# renaming the graph output to it as well leaves two tensors of one name (onnx2tf then breaks).
OUTPUT_NAME = "output_embedding"
# onnx2tf reads (or else downloads) this file from the working directory for any 4-D image input.
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
PIXEL_RANGE = (0.0, 255.0)  # pinned int8 input range of the image tower: scale 1, zero point -128
HUGE = 1e30  # |constant| above this is an "infinite" mask in disguise (-inf exports as -3.4e38)
LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class TFLiteConfig:
    precision: str = DEFAULT_PRECISION  # fp32 | fp16 (float16 weights) | int8 (full-integer) | int8_cpu | int4w
    # int8 activation ranges clip this percentile of the calibration values at both ends (100 =
    # plain min/max). A few rare extremes otherwise set the step of a whole tensor: on the teacher's
    # image tower min/max gives cosine 0.977 mean / 0.93 min vs eager, 99.99 gives 0.99 / 0.98.
    calibration_percentile: float = 99.99
    log_file: str | None = None  # onnx2tf / TensorFlow output; default OUT/{tower}_{precision}.log
    check_ops: bool = False  # onnx2tf's per-op ONNX-vs-TF float check (slow), summary in extra
    num_threads: int = 2  # LiteRT threads for the post-conversion checks
    # Text tower: export `converters.rewrites.rotate_residual(tower)` (same function, residual stream
    # centred and rotated so that its outlier channels are spread over the width; see there).
    residual_rotation: bool = True

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ConversionError(f"unknown TFLite precision {self.precision!r}; choose one of {PRECISIONS}")
        if not 90.0 < float(self.calibration_percentile) <= 100.0:
            raise ConversionError(f"calibration_percentile must be in (90, 100], got {self.calibration_percentile}")
        if self.num_threads < 1:
            raise ConversionError(f"num_threads must be >= 1, got {self.num_threads}")


def _tf_env() -> None:
    """Quiet TensorFlow before it is first imported (no effect afterwards)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


# --------------------------------------------------------------------------- output capture
@contextlib.contextmanager
def captured_output(log_path: Path):
    """Send everything printed while inside to `log_path`: Python's sys.stdout / sys.stderr and
    logging records, and the C++ runtimes' writes to file descriptors 1 and 2."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab", buffering=0) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", line_buffering=True, write_through=True)
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = [os.dup(1), os.dup(2)]
        handler = logging.StreamHandler(text)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        try:
            os.dup2(raw.fileno(), 1)
            os.dup2(raw.fileno(), 2)
            root.addHandler(handler)
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                yield
        finally:
            root.removeHandler(handler)
            with contextlib.suppress(Exception):
                text.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            text.detach()


def _log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n--- last {len(tail)} lines of {log_path} ---\n" + "\n".join(tail) if tail else ""


# --------------------------------------------------------------------------- ONNX
def _export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str) -> None:
    torch.onnx.export(module, (example,), str(path), input_names=[input_name], output_names=[OUTPUT_NAME],
                      dynamo=True, external_data=False)


def check_onnx(path: Path, tower: str) -> dict:
    """Refuse the ONNX graphs that onnx2tf or int8 would silently break (four known breakages):
    ReduceL2 (crashes onnx2tf: write the L2 norm as x*rsqrt(sum x^2)), non-int32 token ids (int64
    makes Flex ops LiteRT cannot run), and infinite or |x| > 1e30 constants (a -inf mask gets an
    int8 scale of ~1e36 and destroys attention). Returns op counts of the graph."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    ops = Counter(n.op_type for n in graph.node)
    produced = Counter(o for n in graph.node for o in n.output)
    twice = sorted(name for name, k in produced.items() if k > 1)
    if twice:
        raise ConversionError(f"the exported {tower} graph names several tensors {twice}; onnx2tf would mix them up")
    if ops.get("ReduceL2"):
        names = [n.name for n in graph.node if n.op_type == "ReduceL2"]
        raise ConversionError(f"the exported {tower} graph has ReduceL2 ({', '.join(names)}), which crashes onnx2tf "
                              f"with TF 2.21; write the L2 norm as x * rsqrt(sum(x * x) + eps) instead of F.normalize")
    if tower == "text":
        for i in graph.input:
            elem = i.type.tensor_type.elem_type
            if elem != onnx.TensorProto.INT32:
                raise ConversionError(f"text input {i.name!r} is {onnx.TensorProto.DataType.Name(elem)} in the ONNX "
                                      f"graph; token ids must be int32 (int64 ids become Flex ops LiteRT cannot run)")
    consts = [(t.name, t) for t in graph.initializer]
    consts += [(n.output[0], a.t) for n in graph.node if n.op_type == "Constant"
               for a in n.attribute if a.name == "value"]
    for name, tensor in consts:
        arr = numpy_helper.to_array(tensor)
        if arr.dtype.kind == "f" and arr.size and not (np.isfinite(arr).all() and np.abs(arr).max() <= HUGE):
            raise ConversionError(f"constant {name!r} of the {tower} graph holds infinite or |x| > 1e30 values (a -inf "
                                  f"attention mask?); int8 calibration would give it a scale of ~1e36 and destroy "
                                  f"attention: use a finite mask (e.g. -30) or none")
    return dict(ops)


def _onnx2tf_sample(tower: str, images: list[torch.Tensor]) -> np.ndarray:
    """(20, 128, 128, 3) float32 in [0, 1] from our own images (NCHW, [0, 255]), nearest upsampled."""
    nhwc = np.concatenate([x.detach().cpu().numpy().transpose(0, 2, 3, 1) for x in images]) / 255.0
    reps = -(-20 // len(nhwc))
    nhwc = np.concatenate([nhwc] * reps)[:20]
    h, w = nhwc.shape[1:3]
    rows = (np.arange(128) * h // 128)
    cols = (np.arange(128) * w // 128)
    return np.ascontiguousarray(nhwc[:, rows][:, :, cols], dtype=np.float32)


def _run_onnx2tf(onnx_path: Path, work: Path, tower: str, sample: list[torch.Tensor] | None,
                 check_ops: bool) -> Path:
    """onnx2tf on a COPY of `onnx_path` (it overwrites its input), with cwd = `work` (where it
    looks for its sample-image file instead of downloading it). Returns the SavedModel folder."""
    _tf_env()
    try:
        import onnx2tf
    except ImportError as e:  # onnx2tf's own imports (onnx_graphsurgeon, sng4onnx, psutil)
        raise ConversionError(f"cannot import onnx2tf ({e}); install onnx2tf with its dependencies "
                              f"(pip install onnx2tf onnx-graphsurgeon sng4onnx psutil)") from e
    if tower == "image":
        np.save(work / ONNX2TF_SAMPLE_FILE, _onnx2tf_sample(tower, sample))
    copy = work / "onnx2tf_input.onnx"
    shutil.copyfile(onnx_path, copy)
    out = work / "saved_model"
    # onnx2tf builds a tf_keras model, whose layer names ("model_83/tf.strided_slice_1/...") come
    # from process-wide counters and end up as tensor names in the .tflite: reset them so the
    # same graph gives the same bytes however many conversions ran before in this process.
    import tf_keras

    tf_keras.backend.clear_session()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        onnx2tf.convert(input_onnx_file_path=str(copy), output_folder_path=str(out), not_use_onnxsim=True,
                        verbosity="info" if check_ops else "error",
                        check_onnx_tf_outputs_elementwise_close_full=check_ops,
                        check_onnx_tf_outputs_sample_data_normalization="denorm")
    except SystemExit as e:  # onnx2tf exits on errors instead of raising
        raise ConversionError(f"onnx2tf failed on the {tower} graph (exit status {e.code})") from e
    except (ConversionError, DataError):
        raise
    except Exception as e:
        raise ConversionError(f"onnx2tf failed on the {tower} graph: {type(e).__name__}: {e}") from e
    finally:
        os.chdir(cwd)
    if not (out / "saved_model.pb").is_file():
        raise ConversionError(f"onnx2tf wrote no SavedModel for the {tower} graph")
    return out


# --------------------------------------------------------------------------- int8
def _representative(tower: str, calibration: list[torch.Tensor]) -> list[np.ndarray]:
    """Calibration inputs in the SavedModel's format: NHWC float32 pixels, int32 ids."""
    if tower == "image":
        return [np.ascontiguousarray(x.detach().cpu().numpy().transpose(0, 2, 3, 1), dtype=np.float32)
                for x in calibration]
    return [x.detach().cpu().numpy().astype(np.int32) for x in calibration]


def _calibrate(saved_model: Path, samples: list[np.ndarray]) -> bytes:
    """A float .tflite whose tensors carry calibrated min/max (TFLiteConverter, calibrate-only)."""
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([s] for s in samples)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    conv._experimental_calibrate_only = True  # ranges now, quantization below
    return conv.convert()


def _percentile_ranges(calibrated: bytes, samples: list[np.ndarray],
                       percentile: float) -> dict[str, tuple[float, float]]:
    """Per activation tensor, the (100 - p)th and pth percentiles of its values over all samples,
    computed exactly by keeping the running top / bottom k values (k = the clipped count)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=calibrated, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    details = [t for t in it.get_tensor_details() if t["dtype"] == np.float32 and t["shape"].size]
    producers = {o for op in it._get_ops_details() for o in op["outputs"]}
    details = [t for t in details if t["index"] in producers]  # activations, not weights
    inp = it.get_input_details()[0]
    frac = 1.0 - percentile / 100.0
    top: dict[int, np.ndarray] = {}
    bot: dict[int, np.ndarray] = {}
    for s in samples:
        it.set_tensor(inp["index"], s)
        it.invoke()
        for t in details:
            v = it.get_tensor(t["index"]).ravel()
            k = min(int(frac * v.size * len(samples)) + 1, v.size)
            hi = np.concatenate([top.get(t["index"], v[:0]), np.partition(v, v.size - k)[v.size - k:]])
            lo = np.concatenate([bot.get(t["index"], v[:0]), np.partition(v, k - 1)[:k]])
            top[t["index"]] = np.partition(hi, hi.size - k)[hi.size - k:]
            bot[t["index"]] = np.partition(lo, k - 1)[:k]
    return {t["name"]: (float(bot[t["index"]].max()), float(top[t["index"]].min())) for t in details}


def _model_ranges(calibrated: bytes) -> dict[str, tuple[float, float]]:
    """The calibrated (min, max) of every tensor that has one."""
    from tensorflow.lite.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(calibrated))
    out = {}
    for graph in model.subgraphs:
        for t in graph.tensors:
            q = t.quantization
            if q is not None and q.min is not None and len(q.min) == 1:
                out[_name(t.name)] = (float(q.min[0]), float(q.max[0]))
    return out


def _name(raw) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _set_ranges(calibrated: bytes, ranges: dict[str, tuple[float, float]]) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(calibrated))
    for graph in model.subgraphs:
        for t in graph.tensors:
            q = t.quantization
            if _name(t.name) in ranges and q is not None and q.min is not None and len(q.min) == 1:
                lo, hi = ranges[_name(t.name)]
                q.min, q.max = np.array([min(lo, 0.0)], np.float32), np.array([max(hi, 0.0)], np.float32)
    return bytes(fb.convert_object_to_bytearray(model))


def _zero_point_0_rhs(calibrated: bytes, ranges: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """XNNPACK takes an int8 BATCH_MATMUL only when its second input (K in Q.K^T, V in P.V) has
    zero point 0. Give that input, and the reshapes / transposes it comes through (which share its
    quantization), the symmetric range [-m * 128/127, m]: scale m/127, zero point exactly 0."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=calibrated,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    ops = it._get_ops_details()
    producer = {o: op for op in ops for o in op["outputs"]}
    out = {}
    for op in ops:
        if op["op_name"] != "BATCH_MATMUL":
            continue
        chain, t = [], op["inputs"][1]
        while True:
            chain.append(names[t])
            src = producer.get(t)
            if src is None or src["op_name"] not in ("RESHAPE", "TRANSPOSE"):
                break
            t = src["inputs"][0]
        m = max((abs(v) for n in chain if n in ranges for v in ranges[n]), default=0.0)
        if m > 0:
            out.update({n: (-m * 128.0 / 127.0, m) for n in chain})
    return out


def _float_islands(calibrated: bytes) -> list[str]:
    """int8_cpu: the nodes (named by their output tensors) to keep in float, so that XNNPACK takes
    the whole graph: ops it does not run in int8, and the LayerNorm / L2-norm
    arithmetic whose int8 ADD/SUB fail its scale-ratio check."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=calibrated,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    details = it.get_tensor_details()
    names = {t["index"]: t["name"] for t in details}
    shapes = {t["index"]: tuple(t["shape"]) for t in details}
    ops = it._get_ops_details()
    fp32_only = {"SOFTMAX", "GELU", "RSQRT", "SQRT", "DIV", "MAXIMUM", "SQUARED_DIFFERENCE", "MEAN", "SUM"}
    keep = [names[op["outputs"][0]] for op in ops if op["op_name"] in fp32_only]
    # A convolution of at most SHORT_CONV products per output (a 3x3 conv on 3 pixel channels: 27)
    # runs 3x slower in XNNPACK's int8 than in its fp32 on this host (the student's first conv: 256
    # vs 88 us, benchmarks/student_profile.py); patch embeddings (3 x 16 x 16 and up) stay int8.
    keep += [names[op["outputs"][0]] for op in ops if op["op_name"] == "CONV_2D"
             and int(np.prod(shapes[op["inputs"][1]][1:])) <= SHORT_CONV]
    # The arithmetic right after a normalizer (x * rsqrt, * gamma, + beta, var + eps) stays float too.
    producer = {o: op for op in ops for o in op["outputs"]}
    floaty = {op["outputs"][0] for op in ops if op["op_name"] in fp32_only}
    changed = True
    while changed:
        changed = False
        for op in ops:
            out = op["outputs"][0]
            if out in floaty or op["op_name"] not in ("ADD", "SUB", "MUL"):
                continue
            if any(i in floaty for i in op["inputs"] if i in producer):
                floaty.add(out)
                keep.append(names[out])
                changed = True
    # An int8 ADD / SUB whose input and output scales differ by more than XNNPACK takes (an input
    # scale under 2^-10 or at least 2^8 times the output's) cuts the partition; in float it does
    # not. A residual add whose branch is scaled down by a tiny layer scale (FastViT's, 1e-5 at
    # initialization) is one: MobileCLIP2-S0's seeded image tower fell into 24 partitions.
    ranges = _model_ranges(calibrated)

    def width(i):  # the int8 range spans zero
        lo, hi = ranges.get(_name(names[i]), (None, None))
        return None if lo is None else max(hi, 0.0) - min(lo, 0.0)

    for op in ops:
        if op["op_name"] not in ("ADD", "SUB") or names[op["outputs"][0]] in keep:
            continue
        w_out = width(op["outputs"][0])
        ratios = [w / w_out for w in (width(i) for i in op["inputs"] if i >= 0) if w and w_out]
        if any(not ADD_SCALE_RATIO[0] <= r < ADD_SCALE_RATIO[1] for r in ratios):
            keep.append(names[op["outputs"][0]])
    return keep


def _quantize(saved_model: Path, tower: str, calibration: list[torch.Tensor], config: TFLiteConfig) -> bytes:
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    samples = _representative(tower, calibration)
    calibrated = _calibrate(saved_model, samples)
    ranges = _model_ranges(calibrated)
    if config.calibration_percentile < 100.0:
        ranges.update(_percentile_ranges(calibrated, samples, config.calibration_percentile))
    if tower == "image":  # exactly uint8_pixel - 128 in int8, whatever the calibration images span
        ranges[_input_name(calibrated)] = PIXEL_RANGE
    if config.precision == "int8_cpu":
        ranges.update(_zero_point_0_rhs(calibrated, ranges))
    calibrated = _set_ranges(calibrated, ranges)
    denylist = _float_islands(calibrated) if config.precision == "int8_cpu" else None
    return mlir_quantize(calibrated, fully_quantize=True, input_data_type=tf.int8, output_data_type=tf.int8,
                         denylisted_nodes=denylist)


def _input_name(model: bytes) -> str:
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=model).get_input_details()[0]["name"]


# --------------------------------------------------------------------------- inspection
def inspect_tflite(model: bytes | str | Path) -> dict:
    """Ops and tensor dtypes of a .tflite, read from its flatbuffer (so a model LiteRT cannot load,
    say one with Flex ops, is still described)."""
    _tf_env()
    from tensorflow.lite.tools import flatbuffer_utils as fb

    try:
        data = model if isinstance(model, bytes) else Path(model).read_bytes()
        m = fb.read_model_from_bytearray(bytearray(data))
    except Exception as e:
        raise ConversionError(f"cannot read the model as a TFLite flatbuffer ({type(e).__name__}: {e})") from e
    ops, dtypes, floats = Counter(), Counter(), []
    for graph in m.subgraphs:
        for op in graph.operators:
            code = m.operatorCodes[op.opcodeIndex]
            name = fb.opcode_to_name(m, op.opcodeIndex)
            if name == "CUSTOM":  # Flex ops are custom ops named "Flex<TF op>"
                custom = code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
                name = f"CUSTOM:{custom}"
            ops[name] += 1
        for t in graph.tensors:
            dtype = (fb.type_to_name(t.type) or str(t.type)).lower()
            dtypes[dtype] += 1
            if dtype.startswith("float") or dtype.startswith("complex"):
                floats.append(t.name.decode() if isinstance(t.name, bytes) else str(t.name))
    return {
        "ops": dict(ops),
        "nodes": sum(ops.values()),
        "tensor_dtypes": dict(dtypes),
        "float_tensors": len(floats),
        "float_tensor_names": floats,
        "flex_or_custom_ops": sorted(n for n in ops if n.startswith("CUSTOM") or n.startswith("Flex")
                                     or n == "DELEGATE"),
    }


def _quantize_int4w(fp32_path: Path) -> bytes:
    """The fp32 model with 4-bit blockwise weights and dynamic int8 activations (INT4_RECIPE)."""
    try:
        from ai_edge_quantizer import quantizer, recipe
    except ImportError:
        raise ConversionError('TFLite int4w needs the LiteRT Quantizer: pip install "mobile-sdk[tflite]" '
                              '(ai-edge-quantizer)') from None
    qt = quantizer.Quantizer(str(fp32_path))
    qt.load_quantization_recipe(getattr(recipe, INT4_RECIPE)())
    return bytes(qt.quantize().quantized_model)


def xnnpack_partitions(path: str | Path, num_threads: int = 2) -> int:
    """How many XNNPACK partitions LiteRT cuts the graph into: DELEGATE nodes after delegation."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=num_threads)
    it.allocate_tensors()
    return sum(op["op_name"] == "DELEGATE" for op in it._get_ops_details())


def verify(report: dict, precision: str, where: str = "the model") -> None:
    """Refuse Flex/custom ops always, and any float tensor in a full-integer (`int8`) model."""
    if report["flex_or_custom_ops"]:
        raise ConversionError(f"{where} has Flex/custom ops {report['flex_or_custom_ops']} that LiteRT's builtin "
                              f"op set cannot run")
    if precision == "int8" and report["float_tensors"]:
        names = report["float_tensor_names"]
        raise ConversionError(f"{where} is not full-integer: {len(names)} float tensors, e.g. {names[:5]}")


# --------------------------------------------------------------------------- convert
def name_tensors(blob: bytes, input_name: str) -> bytes:
    """The model with its input and output tensors, and its signature's output, named as in the
    manifest (`pixels` / `ids` -> `embedding`) instead of the converter's `serving_default_pixels:0`
    and `StatefulPartitionedCall:0`: an app can look them up by name (`getInputIndex("pixels")`,
    `runSignature(..., "serving_default")` with output `embedding`). Only names change; checked."""
    from tensorflow.lite.tools import flatbuffer_utils as fu

    model = fu.convert_bytearray_to_object(bytearray(blob))
    if len(model.subgraphs) != 1:
        raise ConversionError(f"expected one subgraph in the TFLite model, found {len(model.subgraphs)}")
    sg = model.subgraphs[0]
    if len(sg.inputs) != 1 or len(sg.outputs) != 1:
        raise ConversionError(f"expected one input and one output, found {len(sg.inputs)} and {len(sg.outputs)}")
    ends = {sg.inputs[0]: input_name.encode(), sg.outputs[0]: b"embedding"}
    for i, t in enumerate(sg.tensors):  # keep the two names unique (nn.Embedding's lookup may be "embedding...")
        if i not in ends and t.name in ends.values():
            t.name = t.name + b"_" + str(i).encode()
    for i, name in ends.items():
        sg.tensors[i].name = name
    for sig in model.signatureDefs or []:
        for t in sig.inputs or []:
            t.name = input_name.encode()
        for t in sig.outputs or []:
            t.name = b"embedding"
    out = bytes(fu.convert_object_to_bytearray(model))
    check = fu.convert_bytearray_to_object(bytearray(out)).subgraphs[0]
    names = (check.tensors[check.inputs[0]].name, check.tensors[check.outputs[0]].name)
    if names != (input_name.encode(), b"embedding"):
        raise ConversionError(f"renaming the TFLite tensors failed: got {names}")
    return out


def _tensor_specs(model_path: Path, tower: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(model_path))

    def spec(d, name, layout):
        scale, zp = d["quantization"]
        quantized = np.dtype(d["dtype"]).name in ("int8", "uint8") and scale
        return TensorSpec(name, tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"]).name, layout,
                          float(scale) if quantized else None, int(zp) if quantized else None)

    (i,), (o,) = it.get_input_details(), it.get_output_details()
    layout = "NHWC" if tower == "image" else "NT"
    return [spec(i, INPUT_NAMES[tower], layout)], [spec(o, "embedding", "NC")]


def convert(model, tower: str, example: torch.Tensor, config: TFLiteConfig, out_dir: Path,
            calibration: list[torch.Tensor] | None = None) -> Artifact:
    """Convert one tower to `OUT/{tower}_{precision}.tflite` (+ `.json` metadata), atomically."""
    return convert_many(model, tower, example, [config], out_dir, calibration)[0]


def convert_many(model, tower: str, example: torch.Tensor, configs: list[TFLiteConfig], out_dir: Path,
                 calibration: list[torch.Tensor] | None = None) -> list[Artifact]:
    """`convert` for several precisions of one tower, sharing one ONNX export and one onnx2tf run
    (the slow step). Each config brings its precision, calibration_percentile and num_threads; the
    first one's `log_file` (default `OUT/{tower}_{p1}_{p2}....log`), `check_ops` and
    `residual_rotation` apply to the shared steps. No .tflite / .json is written unless every precision succeeds."""
    from .executorch import tower_module
    from .rewrites import band_depthwise, export_form

    configs = list(configs)
    if not configs or not all(isinstance(c, TFLiteConfig) for c in configs):
        raise ConversionError(f"expected one or more TFLiteConfig, got {configs!r}")
    precisions = [c.precision for c in configs]
    if len(set(precisions)) != len(precisions):
        raise ConversionError(f"each precision once, got {precisions}")
    head = configs[0]
    module = band_depthwise(export_form(tower_module(model, tower)))
    rotated = tower == "text" and head.residual_rotation
    if rotated:
        from .rewrites import NotRotatable, rotate_residual
        try:
            module = rotate_residual(module)
        except NotRotatable as e:  # (such as the tests' hand-made towers): exported as they are
            log.info("text tower exported without residual rotation: %s", e)
            rotated = False
    needs_calibration = [p for p in precisions if p in ("int8", "int8_cpu")]
    if needs_calibration and not calibration:
        raise DataError(f"TFLite {needs_calibration[0]} needs calibration inputs (calibration_data/); got none")
    example = example.detach().contiguous()
    if tower == "text" and example.dtype != torch.int32:
        raise DataError(f"text example ids must be int32 (int64 ids become Flex ops), got {example.dtype}")
    calibration = [x.detach().contiguous() for x in calibration] if calibration else []
    bad = [i for i, x in enumerate(calibration) if x.shape != example.shape or x.dtype != example.dtype]
    if bad:
        x = calibration[bad[0]]
        raise DataError(f"calibration input {bad[0]} is {tuple(x.shape)} {x.dtype}; expected the example's "
                        f"{tuple(example.shape)} {example.dtype} (batch-1 raw inputs, as the eager tower takes)")
    out_dir = Path(out_dir)
    stem = f"{tower}_{'_'.join(precisions)}"
    log_path = Path(head.log_file) if head.log_file else out_dir / f"{stem}.log"
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    shared: dict = {"residual_rotation": rotated}
    results = []
    with tempfile.TemporaryDirectory(prefix="tflite-") as tmp:
        work = Path(tmp)
        step, what = "ONNX export", "/".join(precisions)
        try:
            with captured_output(log_path):
                onnx_path = work / f"{tower}.onnx"
                _export_onnx(module, example, onnx_path, INPUT_NAMES[tower])
                step = "ONNX check"
                shared["onnx_ops"] = check_onnx(onnx_path, tower)
                step = "onnx2tf"
                saved = _run_onnx2tf(onnx_path, work, tower, calibration or [example], head.check_ops)
                shared["onnx2tf_s"] = round(time.perf_counter() - t0, 2)
                if head.check_ops:
                    shared["onnx2tf_check"] = _per_op_summary(log_path)
                for config in configs:
                    t1, what = time.perf_counter(), config.precision
                    step = "reading onnx2tf's output"
                    if config.precision in ("fp32", "fp16", "int4w"):
                        suffix = "_float16.tflite" if config.precision == "fp16" else "_float32.tflite"
                        found = sorted(saved.glob(f"*{suffix}"))
                        if not found:
                            raise ConversionError(f"onnx2tf wrote no *{suffix}")
                        blob = found[0].read_bytes()
                        if config.precision == "int4w":  # from the fp32 model with its tensors named: the
                            # quantizer's output keeps the names, and re-serializing it would lose its buffers
                            step = "4-bit weight quantization (LiteRT Quantizer)"
                            named = work / "fp32_named.tflite"
                            named.write_bytes(name_tensors(blob, INPUT_NAMES[tower]))
                            blob = _quantize_int4w(named)
                    else:
                        step = "calibration and quantization"
                        blob = _quantize(saved, tower, calibration, config)
                    step = "verification"
                    report = inspect_tflite(blob)
                    verify(report, config.precision, f"the {tower} {config.precision} model")
                    results.append((config, blob, report, time.perf_counter() - t1))
        except (ConversionError, DataError) as e:
            raise type(e)(f"TFLite {what} conversion of the {tower} tower failed at {step}: {e}"
                          f"{_log_tail(log_path)}") from e
        except Exception as e:
            raise ConversionError(f"TFLite {what} conversion of the {tower} tower failed at {step}: "
                                  f"{type(e).__name__}: {e}{_log_tail(log_path)}") from e
        artifacts = []
        results = [(c, b if c.precision == "int4w" else name_tensors(b, INPUT_NAMES[tower]), r, t)
                   for c, b, r, t in results]
        with captured_output(log_path):  # LiteRT prints when it applies XNNPACK
            for config, blob, report, seconds in results:
                checked = work / f"{config.precision}.tflite"
                checked.write_bytes(blob)
                inputs, outputs = _tensor_specs(checked, tower)
                if config.precision in ("int8", "int8_cpu") and (
                        outputs[0].dtype != "int8" or inputs[0].dtype != ("int8" if tower == "image" else "int32")):
                    raise ConversionError(f"the {tower} {config.precision} model takes {inputs[0].dtype} and gives "
                                          f"{outputs[0].dtype}; expected int8 (int32 ids) in and int8 out")
                report.pop("float_tensor_names")
                extra = dict(shared, **report, xnnpack_partitions=xnnpack_partitions(checked, config.num_threads),
                             bytes=len(blob), precision_s=round(seconds, 2),
                             log=log_path.name if log_path.parent == out_dir else str(log_path),
                             description=describe(model, tower, config.precision, tuple(example.shape)))
                if config.precision in ("int8", "int8_cpu"):
                    extra.update(calibration_samples=len(calibration),
                                 calibration_percentile=config.calibration_percentile)
                path = out_dir / f"{tower}_{config.precision}.tflite"
                artifacts.append(Artifact(PLATFORM, tower, config.precision, path, inputs, outputs, extra))
    if log.isEnabledFor(logging.DEBUG):
        log.debug("onnx2tf / TensorFlow output (%s):\n%s", log_path, log_path.read_text(errors="replace"))
    for artifact, (_, blob, _, _) in zip(artifacts, results):
        with atomic_output(artifact.path) as tmp:  # each file appears whole or not at all
            tmp.write_bytes(blob)
        with atomic_output(artifact.path.with_suffix(".json")) as tmp:
            tmp.write_text(json.dumps(artifact.to_dict(), indent=2) + "\n")
    return artifacts


_CHECK_LINE = re.compile(r"onnx_output_name: (\S+) .*validate_result:\s+(Matches|Unmatched|Skipped)"
                         r"(?:\s+max_abs_error: (\S+))?")


def _per_op_summary(log_path: Path) -> dict:
    """onnx2tf's per-op ONNX-vs-TF check (float graph, atol 1e-4), read back from its output:
    verdict counts and the worst unmatched tensors with their max abs error."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", log_path.read_text(errors="replace"))
    counts, unmatched = Counter(), {}
    for line in text.splitlines():
        m = _CHECK_LINE.search(line)
        if m:
            counts[m.group(2).lower()] += 1
            if m.group(2) == "Unmatched":
                with contextlib.suppress(TypeError, ValueError):
                    unmatched[m.group(1)] = float(m.group(3))
    worst = dict(sorted(unmatched.items(), key=lambda kv: -kv[1])[:10])
    return {"checked": sum(counts.values()), **dict(counts), "worst_unmatched": worst}


# --------------------------------------------------------------------------- intermediates
_ALIAS_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})  # same values, another dtype (int8_cpu float islands)
_VIEW_OPS = _ALIAS_OPS | {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}  # same values in the same order
_SLICE_OPS = _VIEW_OPS | {"STRIDED_SLICE", "SLICE"}


def layer_tensors(ops: list[dict], paths: list[str]) -> dict[str, int]:
    """Map the layers of `mobile_sdk.parity.localize.layer_paths` to tensor indices of a .tflite
    made by this converter, from the graph's structure (onnx2tf names tensors after Keras layers,
    not after the ONNX / FX nodes, so names cannot be mapped). `ops`: LiteRT's op details (index,
    op_name, inputs, outputs) in execution order, delegate nodes left out.

    onnx2tf writes each LayerNorm as MEAN(x), SQUARED_DIFFERENCE(x, mean), ...: the x of every such
    pair is a LayerNorm input, in graph order (QUANTIZE / DEQUANTIZE looked through, so float islands
    in int8 graphs change nothing). The towers are pre-norm: [ln_pre], then ln1 and ln2 of each
    block, then the final norm (ln_post / ln_final) on the class-token slice. Hence `ln_pre`'s output
    and each `blocks.i`'s output (i < last) are the inputs of the next block's ln1, the last block's
    output is the tensor the final norm's slice reads, and the final norm's output is the input of
    the last FULLY_CONNECTED (the projection). Each block is checked to be two residual ADDs chained
    through those LayerNorm inputs; a graph that does not fit raises ConversionError rather than
    being guessed at."""
    ops = [dict(op, inputs=[int(t) for t in op["inputs"]], outputs=[int(t) for t in op["outputs"]]) for op in ops]
    producer = {t: op for op in ops for t in op["outputs"]}

    def back(t: int, through: frozenset | set) -> int:
        while (op := producer.get(t)) is not None and op["op_name"] in through and op["inputs"][0] >= 0:
            t = op["inputs"][0]
        return t

    norm_in = []
    for op in ops:
        if op["op_name"] != "SQUARED_DIFFERENCE":
            continue
        a, b = op["inputs"][:2]
        for x, m in ((a, b), (b, a)):
            mean = producer.get(back(m, _ALIAS_OPS))
            if mean is not None and mean["op_name"] == "MEAN" and \
                    back(mean["inputs"][0], _ALIAS_OPS) == back(x, _ALIAS_OPS):
                norm_in.append(back(x, _ALIAS_OPS))
                break
    pre = 1 if "ln_pre" in paths else 0
    depth = sum(p.startswith("blocks.") for p in paths)
    final = [p for p in paths if p in ("ln_post", "ln_final")]
    if len(norm_in) != pre + 2 * depth + len(final) or len(final) != 1:
        raise ConversionError(f"cannot map the layers of this .tflite: found {len(norm_in)} LayerNorms, expected "
                              f"{pre + 2 * depth + len(final)} ({'ln_pre, ' if pre else ''}2 per block x {depth} "
                              f"blocks, {final[0] if final else 'a final norm'})")
    last_block = back(norm_in[-1], _SLICE_OPS)  # the final norm reads a class-token slice of it
    fcs = [op for op in ops if op["op_name"] == "FULLY_CONNECTED"]
    if not fcs:
        raise ConversionError("cannot map the layers of this .tflite: no FULLY_CONNECTED projection")
    stream = norm_in[pre:pre + 2 * depth] + [last_block]  # block i reads stream[2i], its ln2 stream[2i+1]
    for i in range(depth):
        for k in (2 * i + 1, 2 * i + 2):  # each half of the block: x + f(norm(x))
            add = producer.get(back(stream[k], _ALIAS_OPS))
            if add is None or add["op_name"] != "ADD" or \
                    stream[k - 1] not in {back(t, _ALIAS_OPS) for t in add["inputs"][:2]}:
                raise ConversionError(f"cannot map the layers of this .tflite: blocks.{i} is not two residual ADDs "
                                      f"around its LayerNorms (tensor {stream[k]})")
    out = {}
    if pre:
        out["ln_pre"] = stream[0]
    for i in range(depth):
        out[f"blocks.{i}"] = stream[2 * i + 2]
    out[final[0]] = back(fcs[-1]["inputs"][0], _VIEW_OPS)
    return out


def _read(interpreter, detail: dict, width: int) -> np.ndarray | None:
    """A tensor's float value as (1, tokens, width), the eager layers' layout (int8 dequantized with
    the tensor's own scale and zero point; a (1, width, tokens) layout transposed), or None if its
    size does not fit."""
    x = interpreter.get_tensor(detail["index"])
    scale, zp = detail["quantization"]
    if x.dtype.kind in "iu" and scale:
        x = (x.astype(np.float32) - zp) * np.float32(scale)
    x = np.asarray(x, np.float32)
    if x.ndim == 3 and x.shape[2] != width and x.shape[1] == width:
        x = x.transpose(0, 2, 1)
    if x.size % width:
        return None
    return x.reshape(1, -1, width).copy()


def intermediates(model, tower: str, precision: str, inputs: torch.Tensor,
                  calibration: list[torch.Tensor] | None = None,
                  artifact_path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Each layer's output (`mobile_sdk.parity.localize.layer_paths` + `embedding`) as LiteRT computes
    it from the artifact, for the parity checker's divergence localization.

    The artifact itself is read, not rebuilt: LiteRT runs it with `experimental_preserve_all_tensors`
    (the default XNNPACK delegate then takes each op on its own, so every intermediate tensor is
    written; on the shipped towers the output is bit-identical to the runner's, fp32 within 3e-8),
    and the tensors `layer_tensors` finds by graph structure are read, int8 ones dequantized with
    their own scale and zero point. `embedding` is what `TFLiteRunner` returns for the same inputs.
    Each layer comes back as (n, tokens, width) (ln_post / ln_final: one token), as the eager hooks
    give it. `precision` and `calibration` are not needed (the file holds its quantization). Every
    layer of the shipped towers maps; a layer whose tensor size is not a multiple of the tower's
    width is left out (logged).

    A text tower exported with `residual_rotation` (its .json says so) carries its residual stream
    centred and rotated, and its LayerNorms without their affine: each `blocks.i` is rotated back
    (it then equals the eager stream less its per-token mean, which no layer reads; the parity
    checker compares the stream mean-free), and the final norm gets the eager LayerNorm's weight and
    bias applied after rotating back, exact float steps on the artifact's own values.
    """
    from mobile_sdk.parity.localize import layer_points

    from .executorch import tower_module

    if precision not in PRECISIONS:
        raise ConversionError(f"unknown TFLite precision {precision!r}; choose one of {PRECISIONS}")
    if artifact_path is None:
        raise ConversionError("TFLite intermediates read the artifact itself: pass its artifact_path")
    inputs = torch.as_tensor(inputs)
    module = tower_module(model, tower)
    points = layer_points(module)
    paths = list(points)
    if not paths:
        raise ConversionError(f"the {tower} tower names no intermediate points to localize")
    if inputs.dim() < 2 or len(inputs) == 0:
        raise DataError(f"inputs: expected a batch (n, ...) of raw tower inputs, got shape {tuple(inputs.shape)}")
    final = dict(module.named_modules())[points[paths[-1]]]  # the final LayerNorm: its width is the stream's
    width = int(final.normalized_shape[-1]) if hasattr(final, "normalized_shape") else int(module.cfg.width)
    runner = TFLiteRunner(artifact_path)
    tapped = TFLiteRunner(artifact_path, preserve_all_tensors=True)
    it = tapped.interpreter
    ops = [op for op in it._get_ops_details() if op["op_name"] != "DELEGATE"]
    mapped = layer_tensors(ops, paths)
    details = {d["index"]: d for d in it.get_tensor_details()}
    got: dict[str, list[np.ndarray]] = {p: [] for p in mapped}
    emb, gap = [], 0.0
    for i in range(len(inputs)):
        x = inputs[i:i + 1].numpy()
        emb.append(runner(x))
        gap = max(gap, float(np.max(np.abs(tapped(x) - emb[-1]))))
        for p, t in mapped.items():
            got[p].append(_read(it, details[t], width))
    if gap:  # op-by-op delegation rounded differently somewhere (not seen on the shipped towers)
        log.info("TFLite intermediates: the tensor-preserving run's output differs from the runner's by up to %.3g",
                 gap)
    out = {p: np.concatenate(v) for p, v in got.items() if all(a is not None for a in v)}
    left = sorted(set(mapped) - set(out))
    if left:
        log.info("TFLite intermediates: left out %s (tensor sizes do not fit the tower width)", left)
    if _rotated(artifact_path, tower):
        from .rewrites import unrotate_stream
        for p in out:
            out[p] = unrotate_stream(out[p], width)
            if p == paths[-1]:  # the final norm, which lost its affine to the projection
                out[p] = out[p] * final.weight.detach().numpy() + final.bias.detach().numpy()
    out["embedding"] = np.concatenate(emb)
    return out


def _rotated(artifact_path: str | Path, tower: str) -> bool:
    """Whether an artifact's residual stream was rotated at export: its .json metadata says (older
    artifacts, without the key, were not); without a .json, the converter's default."""
    meta = Path(artifact_path).with_suffix(".json")
    if meta.is_file():
        return bool(json.loads(meta.read_text()).get("extra", {}).get("residual_rotation", False))
    return tower == "text" and TFLiteConfig().residual_rotation


# --------------------------------------------------------------------------- runner
class TFLiteRunner:
    """Runs a `.tflite` on LiteRT with the eager tower's raw inputs: float32 NCHW pixels in
    [0, 255] (transposed to the artifact's NHWC here) or integer token ids; int8 inputs are
    quantized and int8 outputs dequantized with the tensors' own scale and zero point.
    `preserve_all_tensors` keeps every intermediate tensor readable after a call (`intermediates`)."""

    def __init__(self, path: str | Path, num_threads: int = 2, preserve_all_tensors: bool = False):
        _tf_env()
        from ai_edge_litert.interpreter import Interpreter

        path = self.path = Path(path)
        if not path.is_file():
            raise ConversionError(f"TFLite model not found: {path}")
        try:
            with warnings.catch_warnings():  # LiteRT warns that preserving tensors is for debugging
                warnings.simplefilter("ignore", UserWarning)
                self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads,
                                               experimental_preserve_all_tensors=preserve_all_tensors)
            self.interpreter.allocate_tensors()
            (self._in,), (self._out,) = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        except Exception as e:
            raise ConversionError(f"cannot load {path} as a TFLite model ({type(e).__name__}: {e}); is it a "
                                  f".tflite written by this converter and intact?") from e
        shape = tuple(int(s) for s in self._in["shape"])
        self.layout = "NHWC" if len(shape) == 4 and shape[-1] in (1, 3) else ("NCHW" if len(shape) == 4 else "NT")
        meta = path.with_suffix(".json")
        if meta.is_file():
            with contextlib.suppress(ValueError, KeyError, IndexError):
                self.layout = json.loads(meta.read_text())["inputs"][0]["layout"] or self.layout
        # the shape the caller passes: the eager tower's (NCHW for images)
        self.shape = (shape[0], shape[3], shape[1], shape[2]) if self.layout == "NHWC" else shape
        self.image = len(shape) == 4

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        x = np.asarray(inputs)
        if tuple(x.shape) != self.shape:
            raise DataError(f"expected input shape {self.shape} ({'NCHW pixels' if self.image else 'token ids'}), "
                            f"got {tuple(x.shape)}")
        if self.image:
            if x.dtype.kind != "f":
                raise DataError(f"pixels: expected float32 in [0, 255], got dtype {x.dtype}")
            if self.layout == "NHWC":
                x = x.transpose(0, 2, 3, 1)
        elif x.dtype.kind not in "iu":
            raise DataError(f"ids: expected integer token ids (int32), got dtype {x.dtype}")
        dtype = np.dtype(self._in["dtype"])
        scale, zp = self._in["quantization"]
        if dtype.kind in "iu" and scale:  # quantized input: q = round(x / s) + zp
            info = np.iinfo(dtype)
            x = np.clip(np.round(x.astype(np.float32) / scale) + zp, info.min, info.max)
        self.interpreter.set_tensor(self._in["index"], np.ascontiguousarray(x, dtype=dtype))
        try:
            self.interpreter.invoke()
        except RuntimeError as e:  # a kernel refused, e.g. an int8 DIV whose divisor quantized to zero
            raise ConversionError(f"LiteRT could not run {self.path.name}: {e}. The artifact is unusable on these "
                                  f"inputs; check its calibration data (`mobile-sdk parity` localizes the layer) "
                                  f"or choose another precision") from e
        y = self.interpreter.get_tensor(self._out["index"])
        scale, zp = self._out["quantization"]
        if np.dtype(self._out["dtype"]).kind in "iu" and scale:
            return ((y.astype(np.float32) - zp) * scale).astype(np.float32)
        return y.astype(np.float32, copy=True)


def load(path: str | Path, num_threads: int = 2) -> TFLiteRunner:
    return TFLiteRunner(path, num_threads)


CONFIG = TFLiteConfig  # the config class mobile_sdk.exporter builds per precision
