"""Which kernel makes LiteRT's int8_cpu ViT-B-32 towers slower than ONNX Runtime's dynamic int8 on
this CPU? LiteRT has no per-op profiler in this Python build, so the real towers' Linears are timed
as single ops at their exact shapes, beside the towers themselves, all interleaved in one run.

    cd REPO && TF_CPP_MIN_LOG_LEVEL=3 PYTHONPATH=. .venv/bin/python benchmarks/litert_kernels.py \
        --artifacts DIR [--threads 1 2] [--rounds 30] [--work /tmp/litert-kernels]

DIR holds `image_int8_cpu.tflite` / `text_int8_cpu.tflite` (and `*_fp32.tflite` when present) of a
seeded open_clip ViT-B-32, as `python benchmarks/adapters.py --models ViT-B-32 --platforms tflite
--precisions fp32 int8_cpu` writes them (OUT/ViT-B-32/tflite/tflite/). The script reads each tower's
FULLY_CONNECTED ops from that file (input and weight shapes, how many), so the single ops are the
ones the tower runs: per layer, q, k, v and attention out (onnx2tf splits open_clip's fused q/k/v
into three), MLP fc and MLP proj.

Part 1, ops. Each distinct FULLY_CONNECTED shape as its own model, four ways:
  - LiteRT fp32: a tf_keras Dense at that shape, converted by TFLiteConverter;
  - LiteRT int8: the same SavedModel through the project's int8 route (`converters.tflite._calibrate`,
    then the MLIR quantizer with int8 input and output, as `int8_cpu` writes its FULLY_CONNECTED:
    int8 activations, per-channel int8 weights), which XNNPACK runs as its QS8 GEMM;
  - ONNX Runtime fp32 and `quantize_dynamic` int8 (MatMulInteger) of the same nn.Linear, as
    `mobile_sdk.bench._onnx_sessions` makes them (`benchmarks/xnnpack_kernels.ort_sessions`).
All LiteRT interpreters use the XNNPACK delegate (LiteRT's default) with the thread count of the
table. p50 per variant over round-robin turns (`xnnpack_kernels.interleaved`); GOP/s = 2 x multiply-adds.

Part 2, towers: the real .tflite towers from DIR against ONNX Runtime's fp32 and dynamic int8 of
the same tower (seeded open_clip ViT-B-32 through `_onnx_sessions`; weights do not change the
time), interleaved. Then the ops' share: count x single-op p50, summed over the tower's
FULLY_CONNECTED ops, against the tower's p50, and the part of the LiteRT int8_cpu - ORT int8 gap the
Linears account for. What it measures is this host's CPU (AVX2, no VNNI here), not a phone's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import xnnpack_kernels as xk  # noqa: E402  (benchmarks/: the shared ORT sessions, timing, start-of-run)

VARIANTS = ("LiteRT fp32", "LiteRT int8", "ORT fp32", "ORT int8")


@dataclass
class Op:
    tower: str
    tokens: int
    k: int
    n: int
    count: int  # FULLY_CONNECTED ops of this shape in the tower
    files: dict = field(default_factory=dict)  # "fp32" / "int8" -> .tflite bytes
    module: nn.Module | None = None
    example: torch.Tensor | None = None
    runs: dict = field(default_factory=dict)  # threads -> {variant: p50 ms}

    @property
    def name(self) -> str:
        return f"{self.tokens}x{self.k}->{self.n}"

    @property
    def ops(self) -> int:
        return 2 * self.tokens * self.k * self.n


def fc_shapes(path: Path) -> Counter:
    """(tokens, in, out) -> count of the FULLY_CONNECTED ops of a .tflite with a token axis."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    shapes = {t["index"]: tuple(int(s) for s in t["shape"]) for t in it.get_tensor_details()}
    out = Counter()
    for op in it._get_ops_details():
        if op["op_name"] == "FULLY_CONNECTED":
            x, w = shapes[op["inputs"][0]], shapes[op["inputs"][1]]
            if len(x) == 3 and x[1] > 1:  # (1, tokens, in) @ (out, in)^T: the layer Linears
                out[(x[1], w[1], w[0])] += 1
    return out


def litert_models(op: Op, work: Path, samples: int = 16) -> None:
    """The Dense model at op's shape as fp32 and as the project's int8 (calibrated on random data)."""
    import tensorflow as tf
    import tf_keras
    from tensorflow.lite.python.convert import mlir_quantize

    from converters.tflite import _calibrate

    tf_keras.backend.clear_session()
    rng = np.random.default_rng(0)
    inp = tf_keras.Input(shape=(op.tokens, op.k), batch_size=1)
    model = tf_keras.Model(inp, tf_keras.layers.Dense(op.n)(inp))
    saved = work / f"{op.tower}-{op.name}"
    tf.saved_model.save(model, str(saved))
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    op.files["fp32"] = conv.convert()
    data = [rng.standard_normal((1, op.tokens, op.k)).astype(np.float32) for _ in range(samples)]
    calibrated = _calibrate(saved, data)
    op.files["int8"] = mlir_quantize(calibrated, fully_quantize=True, input_data_type=tf.int8,
                                     output_data_type=tf.int8)
    torch.manual_seed(0)
    op.module = xk.One(nn.Linear(op.k, op.n)).eval()
    op.example = torch.randn(1, op.tokens, op.k)


def litert_fn(model: bytes | Path, threads: int):
    """fn() -> one invoke of a LiteRT interpreter (XNNPACK delegate, `threads`) on a fixed input."""
    from ai_edge_litert.interpreter import Interpreter

    kw = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    it = Interpreter(num_threads=threads, **kw)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    rng = np.random.default_rng(0)
    if d["dtype"] == np.int8:
        x = rng.integers(-128, 128, d["shape"], dtype=np.int8)
    elif d["dtype"] == np.int32:
        x = rng.integers(1, 400, d["shape"], dtype=np.int32)
    else:
        x = rng.uniform(0, 255, d["shape"]).astype(np.float32)
    it.set_tensor(d["index"], x)
    it.invoke()
    return it.invoke


def time_ops(ops: list[Op], work: Path, threads: int, rounds: int) -> None:
    xk.set_threads(threads)
    fns = {}
    for i, op in enumerate(ops):
        ort = xk.ort_sessions(op.module, op.example, work / "ort" / f"{op.tower}-{op.name}", threads)
        x = op.example.numpy()
        fns[(i, "LiteRT fp32")] = litert_fn(op.files["fp32"], threads)
        fns[(i, "LiteRT int8")] = litert_fn(op.files["int8"], threads)
        fns[(i, "ORT fp32")] = lambda r=ort["ORT fp32"], x=x: r(x)
        fns[(i, "ORT int8")] = lambda r=ort["ORT int8"], x=x: r(x)
    for (i, v), ms in xk.interleaved(fns, rounds, 5).items():
        ops[i].runs.setdefault(threads, {})[v] = ms


def tower_fns(artifacts: Path, work: Path, towers, threads: int) -> dict:
    """{(tower, variant): fn()} for the .tflite towers in `artifacts` and ONNX Runtime's of the same
    seeded open_clip ViT-B-32."""
    from converters import executorch as et

    adapter, inputs = xk.seeded_vit_b32(work)
    fns = {}
    for tower in towers:
        for precision in ("fp32", "int8_cpu"):
            path = artifacts / f"{tower}_{precision}.tflite"
            if path.is_file():
                fns[(tower, f"LiteRT {precision}")] = litert_fn(path, threads)
        x = inputs.example[tower].contiguous()
        ort = xk.ort_sessions(et.tower_module(adapter, tower), x, work / "towers" / tower, threads)
        fns[(tower, "ORT fp32")] = lambda r=ort["ORT fp32"], x=x.numpy(): r(x)
        fns[(tower, "ORT int8")] = lambda r=ort["ORT int8"], x=x.numpy(): r(x)
    return fns


def print_ops(ops: list[Op], threads: int) -> None:
    print(f"\n== FULLY_CONNECTED ops, {threads} thread(s): p50 ms (interleaved); GOP/s")
    print(f"{'tower':6} {'shape':18} {'n':>3} " + " ".join(f"{v:>11}" for v in VARIANTS)
          + f" {'LRTi8/ORTi8':>11} {'LRTi8/f32':>9} {'GOP/s LRT i8':>12} {'GOP/s ORT i8':>12}")
    for op in ops:
        r = op.runs[threads]
        print(f"{op.tower:6} {op.name:18} {op.count:3d} " + " ".join(f"{r[v]:11.3f}" for v in VARIANTS)
              + f" {r['LiteRT int8'] / r['ORT int8']:11.2f} {r['LiteRT int8'] / r['LiteRT fp32']:9.2f}"
              f" {op.ops / r['LiteRT int8'] / 1e6:12.1f} {op.ops / r['ORT int8'] / 1e6:12.1f}")


def composition(ops: list[Op], towers: dict, threads: int) -> None:
    """The Linears' sum (count x single-op p50) against each tower's measured p50, and their part of
    the LiteRT int8_cpu - ORT int8 gap."""
    print(f"\n== towers, {threads} thread(s): measured p50 ms, and the FULLY_CONNECTED ops' sum (count x p50)")
    for tower in dict.fromkeys(op.tower for op in ops):
        t = towers.get((tower, threads), {})
        mine = [op for op in ops if op.tower == tower]
        s = {v: sum(op.count * op.runs[threads][v] for op in mine) for v in VARIANTS}
        print(f"{tower}: " + ", ".join(f"{v} {ms:.2f}" for v, ms in t.items()))
        print(f"  Linears ({sum(op.count for op in mine)} ops): " + ", ".join(f"{v} {ms:.2f}" for v, ms in s.items()))
        lrt, ort = t.get("LiteRT int8_cpu"), t.get("ORT int8")
        if lrt and ort:
            gap, lin_gap = lrt - ort, s["LiteRT int8"] - s["ORT int8"]
            print(f"  LiteRT int8_cpu / ORT int8: tower {lrt / ort:.2f}x, Linears {s['LiteRT int8'] / s['ORT int8']:.2f}x;"
                  f" Linears are {s['LiteRT int8'] / lrt:.0%} of LiteRT's tower and {s['ORT int8'] / ort:.0%} of ORT's;"
                  f" gap {gap:.2f} ms, of which the Linears {lin_gap:.2f} ({lin_gap / gap:.0%})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, required=True, help="folder with TOWER_int8_cpu.tflite of ViT-B-32")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=30, help="round-robin turns per variant (ops: 5 calls a turn)")
    ap.add_argument("--only", choices=["image", "text"], nargs="+", default=["image", "text"])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "litert-kernels")
    args = ap.parse_args()
    xk.start_run(args.work)
    t0 = time.perf_counter()
    ops = []
    for tower in args.only:
        path = args.artifacts / f"{tower}_int8_cpu.tflite"
        if not path.is_file():
            sys.exit(f"{path} not found: make it with benchmarks/adapters.py --models ViT-B-32 --platforms tflite "
                     f"--precisions fp32 int8_cpu (see this script's docstring)")
        for (tokens, k, n), count in sorted(fc_shapes(path).items()):
            ops.append(Op(tower, tokens, k, n, count))
    for op in ops:
        print(f"  building {op.tower} {op.name} (x{op.count})", flush=True)
        litert_models(op, args.work)
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    for threads in args.threads:
        print(f"\n[{threads} thread(s): load average before timing {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs]")
        time_ops(ops, args.work, threads, args.rounds)
        fns = tower_fns(args.artifacts, args.work, args.only, threads)
        towers = {}
        for (tower, v), ms in xk.interleaved(fns, max(8, args.rounds // 3), 2).items():
            towers.setdefault((tower, threads), {})[v] = ms
        print(f"[load average after timing {os.getloadavg()[0]:.2f}]")
        print_ops(ops, threads)
        composition(ops, towers, threads)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
