"""Where the shipped student's IMAGE tower spends its time, op by op, in ExecuTorch/XNNPACK, ONNX
Runtime and LiteRT (1 thread, batch 1), and which kernel carries each gap.

    cd REPO && TF_CPP_MIN_LOG_LEVEL=3 PYTHONPATH=. .venv/bin/python benchmarks/student_profile.py \
        [--rounds 30] [--no-litert] [--work /tmp/student-profile]

The tower (`load_checkpoint(default_checkpoint())`): 64x64 pixels, a 3x3 conv stem 3->16 (s1),
16->32 (s2), 32->32 (s1), 32->64 (s2) with ReLU, a 4x4 patch embedding to 16 tokens of 128, three
pre-norm ViT blocks (2 heads of 32, MLP 192), a 2048->128 readout over all tokens, L2 norm.

1. Whole towers, timed interleaved (round-robin, `xnnpack_kernels.interleaved`): ExecuTorch fp32
   and int8_dynamic as `converters.executorch.convert` writes them; ONNX Runtime fp32 (the file
   `mobile_sdk.bench._onnx_sessions` writes); LiteRT fp32 and int8_cpu as `converters.tflite`
   writes them; and, as a prototype, ExecuTorch fp32 with the stem's Cin=32 convs lowered as
   im2col + Linear (`Im2colConvs`, see 4).
2. Per op, interleaved: ExecuTorch's ETDump (XNNPACK's own operators inside the one delegate,
   `xnnpack_kernels.EtProfile`'s runtime) and ONNX Runtime's node profiler, each op's mean over the
   runs (ETDump ticks in whole microseconds: a mean, not a median, keeps the sub-us ops), grouped:
   stem conv 1-4, patch embedding, block Linears, attention (scale, bmm, softmax), GELU, norms
   (LayerNorm), readout (2048->128 + L2 norm), elementwise (pixel affine, position and residual
   adds) and layout (transposes, reshapes, slices, NCHW<->NHWC reorders, converts). Both profilers
   add their own cost per op, so each table also gives the profiled sum beside the unprofiled time.
3. Fixed cost per op: a chain of N tiny adds on (1, 16, 128) at N = 8 and N = 168, each runtime;
   the slope is the cost of one more op.
4. The stem's 3x3 convolutions alone (NHWC in and out), interleaved: ExecuTorch's XNNPACK conv, the
   same conv as im2col (pad, unit-stride slices, concat) + Linear in ExecuTorch, ONNX Runtime's
   MLAS conv, LiteRT's XNNPACK conv in fp32 and full-integer int8 (Keras -> TFLiteConverter,
   per-channel weights).
5. LiteRT has no per-op profiler in this Python build (ai_edge_litert 2.3 `Interpreter` takes no
   profiler; `experimental_force_delegate_node_profiling` only affects a C++-attached profiler; the
   op profile is in the C++ `benchmark_model --enable_op_profiling`, not installed). So the tower is
   cut into prefixes (pixels -> stem; -> patch embedding + ln_pre; the whole tower), each converted
   by the project's own TFLite route (ONNX -> onnx2tf -> fp32 / int8_cpu with the same calibration),
   timed interleaved; the differences give the stem, the patch embedding and the rest.

What it measures is this host's CPU (AVX2+FMA, no AVX-512/VNNI), not a phone's Arm cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.xnnpack_kernels import (EtProfile, EtRunner, One, interleaved, lower_executorch,  # noqa: E402
                                        ort_session, set_threads)

GROUPS = ("stem conv1", "stem conv2", "stem conv3", "stem conv4", "patch embedding", "block Linears",
          "attention", "GELU", "norms", "readout", "elementwise", "layout")
CALLS = 5  # calls per turn in the interleaved timings


# --------------------------------------------------------------------------- im2col prototype
class Im2colConvs(nn.Module):
    """Stem layers (3x3 conv, padding 1, stride 1 or 2, + ReLU) run channels-last as im2col + one
    Linear each: NCHW in, one permute to NHWC, per conv a pad, the kh*kw taps as unit-stride slices
    (stride 2 through a (H/2, 2, W/2, 2) view) concatenated on channels, Linear, ReLU; one permute
    back. The same function; XNNPACK runs it as Constant Pad, Slice, Concatenate and a GEMM."""

    def __init__(self, convs: list[nn.Conv2d]):
        super().__init__()
        self.meta = []
        self.linears = nn.ModuleList()
        for c in convs:
            k, s, p = c.kernel_size[0], c.stride[0], c.padding[0]
            assert c.kernel_size == (k, k) and c.stride in ((1, 1), (2, 2)) and c.padding == (p, p) and c.groups == 1
            w = c.weight.detach()
            lin = nn.Linear(w.shape[1] * k * k, w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(w.permute(0, 2, 3, 1).reshape(w.shape[0], -1))  # (Cout, kh, kw, Cin)
                lin.bias.copy_(c.bias.detach() if c.bias is not None else torch.zeros(w.shape[0]))
            self.linears.append(lin)
            self.meta.append((k, s, p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        for (k, s, p), lin in zip(self.meta, self.linears):
            b, h, w, c = x.shape
            ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            x = F.pad(x, (0, 0, p, p, p, p))
            if s == 1:
                taps = [x[:, dy:dy + ho, dx:dx + wo, :] for dy in range(k) for dx in range(k)]
            else:
                hp, wp = h + 2 * p, w + 2 * p
                x6 = x.reshape(b, hp // 2, 2, wp // 2, 2, c)
                taps = [x6[:, dy // 2:dy // 2 + ho, dy % 2:dy % 2 + 1, dx // 2:dx // 2 + wo, dx % 2:dx % 2 + 1, :]
                        .reshape(b, ho, wo, c) for dy in range(k) for dx in range(k)]
            x = torch.relu(lin(torch.cat(taps, dim=-1)))
        return x.permute(0, 3, 1, 2)


def with_im2col_stem(tower: nn.Module, first: int) -> nn.Module:
    """A copy of the built-in image tower whose stem convs from index `first` on run as Im2colConvs."""
    import copy

    out = copy.deepcopy(tower)
    layers = list(out.stem)
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    head = layers[:2 * first]
    out.stem = nn.Sequential(*head, Im2colConvs(convs[first:]))
    return out.eval()


def lower_tower(module: nn.Module, example: torch.Tensor, precision: str) -> bytes:
    """`converters.executorch.convert`'s lowering of a (modified) tower module, in memory."""
    from converters.executorch import _patch_linear
    from converters.rewrites import for_xnnpack

    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from converters import executorch as et

    m = et._prepare(for_xnnpack(module, patch_linear=_patch_linear(precision)), example, None, precision)
    edge = to_edge_transform_and_lower(torch.export.export(m, (example,)), transform_passes=[et.xnnpack_pass()],
                                       partitioner=[XnnpackPartitioner()])
    report = et.delegation_report(edge.exported_program().graph_module)
    if report["portable_nodes"] or report["delegated_subgraphs"] != 1:
        raise RuntimeError(f"not one XNNPACK delegate: {report}")
    return edge.to_executorch().buffer


# --------------------------------------------------------------------------- grouping
def group_et(seq: list[tuple[str, float]], stem_layers: int) -> dict:
    """ETDump ops of the image tower in execution order -> {group: ms}. The first `stem_layers`
    Convolution / Fully Connected ops are the stem (im2col pads / slices / concats count to the
    conv they feed), the next one is the patch embedding; a Fully Connected followed by Subtract
    opens a LayerNorm (mean as a GEMM, 9 ops); the GEMM after the last LayerNorm and the L2 norm
    after it are the readout."""
    kinds = [re.sub(r" #\d+$", "", n) for n, _ in seq]
    out = defaultdict(float)
    gemm = lambda k: k.startswith("Fully Connected") or k.startswith("Convolution")  # noqa: E731
    n_gemm, i, pending = 0, 0, 0.0
    ln_starts = [j for j in range(len(kinds) - 1) if kinds[j].startswith("Fully Connected")
                 and kinds[j + 1].startswith("Subtract")]
    last_ln = ln_starts[-1] if ln_starts else len(kinds)
    while i < len(kinds):
        k, ms = kinds[i], seq[i][1]
        if i in ln_starts:
            out["norms"] += sum(m for _, m in seq[i:i + 9])
            i += 9
            continue
        if i > last_ln:
            out["readout"] += ms
        elif gemm(k) and n_gemm < stem_layers:
            n_gemm += 1
            out[f"stem conv{n_gemm}"] += ms + pending
            pending = 0.0
        elif 0 < n_gemm < stem_layers and not k.startswith(("Multiply", "Add", "Clamp")):
            pending += ms  # im2col copies feed the next stem GEMM
        elif gemm(k) and n_gemm == stem_layers:
            n_gemm += 1
            out["patch embedding"] += ms
        elif gemm(k):
            out["block Linears"] += ms
        elif k.startswith("Batch Matrix") or k.startswith("Softmax"):
            out["attention"] += ms
        elif k.startswith("GELU"):
            out["GELU"] += ms
        elif re.match(r"(Transpose|Static Reshape|Slice|Copy|Convert|Concatenate|Constant Pad|Expand)", k):
            out["layout"] += ms
        elif k.startswith("Multiply") and i > 0 and kinds[i - 1].startswith("Static Reshape") and n_gemm > stem_layers:
            out["attention"] += ms  # q * head_dim^-0.5 between the per-head reshapes
        else:
            out["elementwise"] += ms
        i += 1
    return dict(out)


def group_ort(nodes: list[tuple[str, str, list, float]]) -> dict:
    """ONNX Runtime nodes (op, name, output shape, ms) in order -> {group: ms}."""
    out = defaultdict(float)
    convs = 0
    readout = False
    for op, _name, shape, ms in nodes:
        if op in ("Conv", "FusedConv"):
            convs += 1
            out[f"stem conv{convs}" if convs <= 4 else "patch embedding"] += ms
        elif op in ("ReorderInput", "ReorderOutput", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Cast"):
            out["layout"] += ms
        elif op in ("LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization"):
            out["norms"] += ms
        elif op in ("Gemm", "MatMul", "FusedMatMul") and shape and len(shape) == 2 and shape[0] == 1:
            readout = True
            out["readout"] += ms
        elif readout:
            out["readout"] += ms
        elif op in ("Gemm",) or (op in ("MatMul", "FusedMatMul") and shape and len(shape) == 2):
            out["block Linears"] += ms
        elif op in ("MatMul", "FusedMatMul", "Softmax"):
            out["attention"] += ms
        elif op in ("Gelu", "FastGelu", "BiasGelu"):
            out["GELU"] += ms
        else:
            out["elementwise"] += ms
    return dict(out)


def _mean(v: list[float]) -> float:
    a = np.asarray(v[1:] or v, dtype=float)
    return float(a[a <= np.percentile(a, 95)].mean())  # the first run and the top 5% (preemption) dropped


class EtOps(EtProfile):
    """A .pte with ETDump on; `result()` -> [(op, ms)] in execution order, the delegate call's ms."""

    def __init__(self, pte: bytes):
        self.pte = pte  # the runtime does not own it
        super().__init__(pte)

    def result(self):
        return self.events(reduce=_mean, keep_index=True)


class OrtOps:
    def __init__(self, path: Path):
        self.dir = tempfile.TemporaryDirectory()
        self.run = ort_session(path, 1, profile_prefix=str(Path(self.dir.name) / "ort"))

    def __call__(self, x):
        self.run(x)

    def result(self):
        events = json.loads(Path(self.run.session.end_profiling()).read_text())
        self.dir.cleanup()
        durs, args, order = defaultdict(list), {}, []
        runs = []
        for ev in events:
            if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
                if ev["name"] not in args:
                    order.append(ev["name"])
                durs[ev["name"]].append(ev["dur"] / 1e3)
                args[ev["name"]] = ev.get("args", {})
            elif ev.get("name") == "model_run":
                runs.append(ev["dur"] / 1e3)
        nodes = []
        for n in order:
            shape = args[n].get("output_type_shape") or [{}]
            nodes.append((args[n].get("op_name", "?"), n, list(shape[0].values())[0] if shape[0] else [],
                          _mean(durs[n])))
        return nodes, _mean(runs)


# --------------------------------------------------------------------------- LiteRT
def tflite_variants(module: nn.Module, example: torch.Tensor, calibration: list[torch.Tensor], work: Path,
                    precisions=("fp32", "int8_cpu")) -> dict[str, bytes]:
    """`converters.tflite.convert_many`'s route for any image module (a tower prefix): ONNX export,
    onnx2tf, fp32 as onnx2tf writes it, int8_cpu through the project's calibration and quantizer."""
    from converters import tflite as tl

    work.mkdir(parents=True, exist_ok=True)
    out = {}
    with tl.captured_output(work / "convert.log"):
        onnx_path = work / "m.onnx"
        tl._export_onnx(module, example, onnx_path, tl.INPUT_NAMES["image"])
        saved = tl._run_onnx2tf(onnx_path, work, "image", calibration, False)
        for p in precisions:
            if p == "fp32":
                out[p] = sorted(saved.glob("*_float32.tflite"))[0].read_bytes()
            else:
                out[p] = tl._quantize(saved, "image", calibration, tl.TFLiteConfig(precision=p))
    return out


class Lite:
    """A .tflite in memory on LiteRT (1 thread), fed NHWC float32 pixels (quantized if the input is)."""

    def __init__(self, blob: bytes):
        from ai_edge_litert.interpreter import Interpreter

        self.blob = blob
        self.it = Interpreter(model_content=blob, num_threads=1)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]

    def prepare(self, x_nchw: np.ndarray) -> np.ndarray:
        x = x_nchw.transpose(0, 2, 3, 1) if len(self.inp["shape"]) == 4 and self.inp["shape"][-1] == 3 else x_nchw
        scale, zp = self.inp["quantization"]
        if np.dtype(self.inp["dtype"]).kind == "i" and scale:
            x = np.clip(np.round(x / scale) + zp, -128, 127)
        return np.ascontiguousarray(x, dtype=self.inp["dtype"])

    def __call__(self, x):
        self.it.set_tensor(self.inp["index"], x)
        self.it.invoke()

    def output(self) -> np.ndarray:
        y = self.it.get_tensor(self.out["index"]).astype(np.float32)
        scale, zp = self.out["quantization"]
        return (y - zp) * scale if np.dtype(self.out["dtype"]).kind == "i" and scale else y


def keras_conv(conv: nn.Conv2d, h: int, int8: bool, samples: list[np.ndarray]) -> bytes:
    """One 3x3 conv + ReLU as a LiteRT model (NHWC), fp32 or full-integer int8 (per-channel)."""
    import tensorflow as tf

    s, cin = conv.stride[0], conv.in_channels
    inp = tf.keras.Input((h, h, cin), batch_size=1)
    y = tf.keras.layers.ZeroPadding2D(1)(inp) if s == 2 else inp
    layer = tf.keras.layers.Conv2D(conv.out_channels, 3, s, padding="valid" if s == 2 else "same", activation="relu")
    km = tf.keras.Model(inp, layer(y))
    layer.set_weights([conv.weight.detach().permute(2, 3, 1, 0).numpy(), conv.bias.detach().numpy()])
    c = tf.lite.TFLiteConverter.from_keras_model(km)
    if int8:
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = lambda: ([s_] for s_ in samples)
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = c.inference_output_type = tf.int8
    return c.convert()


# --------------------------------------------------------------------------- parts
def cosine(a, b) -> float:
    a, b = torch.as_tensor(np.asarray(a)).flatten().double(), torch.as_tensor(np.asarray(b)).flatten().double()
    return F.cosine_similarity(a, b, dim=0).item()


def table(title: str, cols: list[str], rows: dict[str, dict[str, float]]) -> None:
    print(f"\n== {title}")
    print(f"  {'group':18}" + "".join(f"{c:>16}" for c in cols))
    for g in GROUPS:
        if any(rows[c].get(g, 0.0) for c in cols):
            print(f"  {g:18}" + "".join(f"{rows[c].get(g, 0.0):16.3f}" for c in cols))
    print(f"  {'sum of ops':18}" + "".join(f"{sum(rows[c].values()):16.3f}" for c in cols))


def op_overhead(work: Path, rounds: int) -> None:
    """Fixed cost per op: chains of tiny adds (each on (1, 16, 128)) at two lengths."""
    class Chain(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.register_buffer("c", torch.randn(n, 1, 1, 128) * 0.01)

        def forward(self, x):
            for i in range(self.c.shape[0]):
                x = x + self.c[i]
            return x

    x = torch.randn(1, 16, 128)
    fns, keep = {}, []
    for n in (8, 168):
        m = Chain(n).eval()
        pte = lower_executorch(One(m), x, "fp32")
        keep.append(pte)
        r = EtRunner(pte)
        fns[("ET", n)] = lambda r=r: r(x)
        d = work / f"chain{n}"
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "m.onnx").is_file():
            torch.onnx.export(m, (x,), str(d / "m.onnx"), input_names=["x"], dynamo=True, external_data=False)
        o = ort_session(d / "m.onnx", 1)
        fns[("ORT", n)] = lambda o=o, xn=x.numpy(): o(xn)
    p = interleaved(fns, rounds, CALLS)
    print("\n== fixed cost per op (chain of adds on 1x16x128, 8 vs 168 ops; us per added op)")
    for rt in ("ET", "ORT"):
        print(f"  {rt:4} 8 ops {p[(rt, 8)] * 1e3:7.1f} us, 168 ops {p[(rt, 168)] * 1e3:7.1f} us -> "
              f"{(p[(rt, 168)] - p[(rt, 8)]) * 1e3 / 160:.2f} us/op")


def conv_kernels(tower: nn.Module, calibration: list[torch.Tensor], work: Path, rounds: int) -> None:
    """Each stem conv alone, NHWC in and out, on every runtime (part 4)."""
    class ConvNHWC(nn.Module):
        def __init__(self, conv):
            super().__init__()
            self.conv = conv

        def forward(self, x):
            return torch.relu(self.conv(x.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)

    # each conv's real input: the calibration images through the stem before it
    acts, x = [], torch.cat(calibration[:16])
    with torch.no_grad():
        x = x * tower.pixel_scale + tower.pixel_shift
        for m in tower.stem:
            if isinstance(m, nn.Conv2d):
                acts.append((m, x.permute(0, 2, 3, 1).contiguous()))
            x = m(x)
    fns, keep, info = {}, [], {}
    for i, (conv, a) in enumerate(acts, 1):
        x1 = a[:1].contiguous()
        ref = ConvNHWC(conv)(x1).detach()
        h = a.shape[1]
        flops = 2 * ref.numel() * conv.in_channels * 9
        info[i] = (f"conv{i} {conv.in_channels}->{conv.out_channels} s{conv.stride[0]} {h}x{h}", flops)
        for name, pte in (("ET conv", lower_executorch(ConvNHWC(conv).eval(), x1, "fp32")),
                          ("ET im2col", lower_executorch(Im2colNHWC(conv).eval(), x1, "fp32"))):
            keep.append(pte)
            r = EtRunner(pte)
            assert cosine(r(x1), ref) > 0.9999, name
            fns[(i, name)] = lambda r=r, x1=x1: r(x1)
        d = work / f"conv{i}"
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "m.onnx").is_file():
            torch.onnx.export(ConvNHWC(conv).eval(), (x1,), str(d / "m.onnx"), input_names=["x"], dynamo=True,
                              external_data=False)
        o = ort_session(d / "m.onnx", 1)
        fns[(i, "ORT")] = lambda o=o, xn=x1.numpy(): o(xn)
        samples = [a[j:j + 1].numpy() for j in range(len(a))]
        for name, int8 in (("LiteRT fp32", False), ("LiteRT int8", True)):
            lite = Lite(keras_conv(conv, h, int8, samples))
            keep.append(lite)
            xin = x1.numpy()
            scale, zp = lite.inp["quantization"]
            if int8:
                xin = np.clip(np.round(xin / scale) + zp, -128, 127)
            xin = np.ascontiguousarray(xin, dtype=lite.inp["dtype"])
            lite(xin)
            assert cosine(lite.output(), ref) > (0.999 if int8 else 0.9999), name
            fns[(i, name)] = lambda lite=lite, xin=xin: lite(xin)
    p = interleaved(fns, rounds, CALLS)
    cols = ("ET conv", "ET im2col", "ORT", "LiteRT fp32", "LiteRT int8")
    print("\n== stem convs alone (NHWC in/out, +ReLU), 1 thread: us (GFLOP/s)")
    print(f"  {'conv':26}" + "".join(f"{c:>20}" for c in cols))
    for i, (name, flops) in info.items():
        print(f"  {name:26}" + "".join(f"{p[(i, c)] * 1e3:11.1f} ({flops / p[(i, c)] / 1e6:4.0f})" for c in cols))
    print(f"  {'sum':26}" + "".join(f"{sum(p[(i, c)] for i in info) * 1e3:11.1f}{'':9}" for c in cols))


class Im2colNHWC(Im2colConvs):
    """One conv as Im2colConvs, NHWC in and out (part 4)."""

    def __init__(self, conv):
        super().__init__([conv])

    def forward(self, x):
        return super().forward(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


# --------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30, help="round-robin turns per variant (5 calls a turn)")
    ap.add_argument("--litert", action=argparse.BooleanOptionalAction, default=True,
                    help="also convert the tower and its prefixes to LiteRT (onnx2tf, a few minutes)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "student-profile")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    args.work.mkdir(parents=True, exist_ok=True)

    from converters import executorch as et
    from mobile_sdk.bench import _onnx_sessions
    from mobile_sdk.checkpoint import default_checkpoint, load_checkpoint
    from mobile_sdk.exporter import prepare_inputs

    model, _ = load_checkpoint(default_checkpoint())
    tower = et.tower_module(model, "image")
    inputs = prepare_inputs(model, n=64, towers=("image",))
    x, calibration = inputs.example["image"].contiguous(), inputs.calibration["image"]
    test = torch.cat(calibration[-16:])
    stem_layers = sum(isinstance(m, nn.Conv2d) for m in tower.stem)
    print(f"student image tower: stem {[m.out_channels for m in tower.stem if isinstance(m, nn.Conv2d)]}, "
          f"{len(tower.blocks)} blocks; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    set_threads(1)

    # ---- build
    t0 = time.perf_counter()
    pte = {}
    for p in ("fp32", "int8_dynamic"):
        art = et.convert(model, "image", x, et.ExecuTorchConfig(precision=p, debug_twin=False), args.work / "et")
        pte[f"ET {p}"] = Path(art.path).read_bytes()
    convs = [m for m in tower.stem if isinstance(m, nn.Conv2d)]
    first = next((i for i, c in enumerate(convs) if c.in_channels >= 32), len(convs))  # where im2col wins (part 4)
    proto = with_im2col_stem(tower, first)
    pte["ET fp32 im2col"] = lower_tower(proto, x, "fp32")  # (int8_dynamic would quantize its Linears: the
    # XNNPACK lowering refuses the second one, "Weight and Input should both be quantized")
    onnx_dir = args.work / "onnx"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    if not (onnx_dir / "model.onnx").is_file():
        _onnx_sessions(tower, x, onnx_dir, 1)
    lite = {}
    if args.litert:
        from converters import tflite as tl

        arts = tl.convert_many(model, "image", x, [tl.TFLiteConfig(precision=p, num_threads=1)
                                                   for p in ("fp32", "int8_cpu")], args.work / "tflite", calibration)
        for a in arts:
            lite[("tower", a.precision)] = Path(a.path).read_bytes()

        class Prefix(nn.Module):
            def __init__(self, t, upto):
                super().__init__()
                self.t, self.upto = t, upto

            def forward(self, px):
                t = self.t
                y = t.stem(px * t.pixel_scale + t.pixel_shift)
                if self.upto == "stem":
                    return y
                y = t.patch(y).flatten(2).transpose(1, 2)
                return t.ln_pre(y + t.pos)

        for upto in ("stem", "patch"):
            for prec, blob in tflite_variants(Prefix(tower, upto).eval(), x, calibration,
                                              args.work / f"tflite-{upto}").items():
                lite[(upto, prec)] = blob
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)

    # ---- accuracy of what is timed (cosine vs eager on 16 calibration images)
    with torch.no_grad():
        ref = tower(test)
    runners = {k: EtRunner(v) for k, v in pte.items()}
    ort = ort_session(onnx_dir / "model.onnx", 1)
    print("\n== cosine vs eager (16 images, mean / min)")
    for k, r in runners.items():
        c = [cosine(r(test[i:i + 1]), ref[i]) for i in range(len(test))]
        print(f"  {k:28} {np.mean(c):.6f} / {np.min(c):.6f}")
    lites = {k: Lite(b) for k, b in lite.items()}
    for (upto, prec), lt in lites.items():
        if upto == "tower":
            c = []
            for i in range(len(test)):
                lt(lt.prepare(test[i:i + 1].numpy()))
                c.append(cosine(lt.output(), ref[i]))
            print(f"  {'LiteRT ' + prec:28} {np.mean(c):.6f} / {np.min(c):.6f}")

    # ---- 1. whole towers
    xn = x.numpy()
    fns = {k: (lambda r=r: r(x)) for k, r in runners.items()}
    fns["ORT fp32"] = lambda: ort(xn)
    for (upto, prec), lt in lites.items():
        xin = lt.prepare(xn)
        fns[f"LiteRT {prec} {upto}"] = lambda lt=lt, xin=xin: lt(xin)
    p50 = interleaved(fns, args.rounds, CALLS)
    print(f"\n== whole towers and LiteRT prefixes, 1 thread, p50 ms (interleaved; load {os.getloadavg()[0]:.2f})")
    for k, v in p50.items():
        print(f"  {k:34} {v:7.3f}   x ORT fp32 {v / p50['ORT fp32']:.2f}")
    if lites:
        print("\n== LiteRT by difference of prefixes (ms): stem | patch embedding + ln_pre | blocks + readout")
        for prec in ("fp32", "int8_cpu"):
            s, pa, t = (p50[f"LiteRT {prec} {u}"] for u in ("stem", "patch", "tower"))
            print(f"  {prec:9} {s:7.3f} | {pa - s:7.3f} | {t - pa:7.3f}   (tower {t:.3f})")

    # ---- 2. per op, interleaved
    profs = {k: EtOps(v) for k, v in pte.items()}
    ortp = OrtOps(onnx_dir / "model.onnx")
    for _ in range(max(40, args.rounds * 2)):
        for pr in profs.values():
            pr(x)
        ortp(xn)
    rows, extra = {}, {}
    for k, pr in profs.items():
        seq, call = pr.result()
        rows[k] = group_et(seq, stem_layers)
        extra[k] = (len(seq), call)
    nodes, run_ms = ortp.result()
    rows["ORT fp32"] = group_ort(nodes)
    extra["ORT fp32"] = (len(nodes), run_ms)
    cols = list(rows)
    table("per op group, ms per inference (ETDump / ORT node profiler, mean over runs)", cols, rows)
    print(f"  {'ops':18}" + "".join(f"{extra[c][0]:16d}" for c in cols))
    print(f"  {'profiled call':18}" + "".join(f"{extra[c][1]:16.3f}" for c in cols))
    print(f"  {'unprofiled p50':18}" + "".join(f"{p50[c]:16.3f}" for c in cols))

    # ---- 3. and 4.
    op_overhead(args.work, args.rounds)
    conv_kernels(tower, calibration, args.work, args.rounds)


if __name__ == "__main__":
    main()
