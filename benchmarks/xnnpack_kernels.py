"""Which XNNPACK kernel makes ExecuTorch's int8_dynamic CLIP towers slower than ONNX Runtime's
dynamic int8 on this CPU? Single ops at open_clip ViT-B-32 shapes, then the real towers op by op.

    cd REPO && TF_CPP_MIN_LOG_LEVEL=3 PYTHONPATH=. .venv/bin/python benchmarks/xnnpack_kernels.py \
        [--threads 1 2] [--rounds 40] [--towers | --no-towers] [--work /tmp/xnnpack-kernels]

Part 1, ops. Each op one transformer layer of ViT-B-32 runs (batch 1; image: 50 tokens x 768,
12 heads of 64, MLP 3072; text: 77 tokens x 512, 8 heads of 64, MLP 2048, causal mask), as its own
module: the four Linears (fused q/k/v, attention out, MLP fc, MLP proj), the attention core
(softmax(q k^T / 8) v, with the project's ExplicitAttention math: per-head split, 3-D bmm, the
text tower's mask-by-replacement), LayerNorm, GELU. Each is lowered four ways:
  - ExecuTorch fp32 and int8_dynamic through the project's own recipe (`converters.rewrites.for_xnnpack`,
    `converters.executorch._prepare`: XNNPACKQuantizer per-channel dynamic on nn.Linear, PT2E;
    `to_edge_transform_and_lower` with `xnnpack_pass()` and XnnpackPartitioner; checked to be one
    delegate with no portable op);
  - ONNX Runtime fp32 and `quantize_dynamic` int8 (MatMulInteger), as `mobile_sdk.bench._onnx_sessions`
    makes them.
All variants of all ops are timed interleaved (round-robin, several calls per turn) at each thread
count, so load from other jobs falls on all of them alike; p50 per variant. ONNX Runtime's sessions
do not spin their threads between runs (see `ort_session`). Then each op's time x its count per
layer x the layer count gives its share of a tower, and of the ET-vs-ORT gap, beside the towers'
own times (part 2).

Part 2, towers (`--towers`, the default): a seeded open_clip ViT-B-32 (no weights are downloaded),
each tower exported by `converters.executorch.convert` (int8_dynamic) and by `_onnx_sessions`
(quantize_dynamic int8); both timed interleaved; then both run again, interleaved, with their
per-op profilers: ExecuTorch's ETDump (`enable_etdump=True`: this wheel's XNNPACK backend is built
with its profiler, so the events are XNNPACK's own operators inside the one delegate) and ONNX
Runtime's `enable_profiling` (node events). Per inference: ms per op kind, the int8 GEMMs by
Linear role (q/k/v, attention out, MLP fc, MLP proj, other), and the 48 layer Linears against
everything else.

The 2-thread figures need two idle cores: XNNPACK's threadpool waits for every worker on every
op, so another busy process puts a scheduler slice (~8 ms here) on each op. The load average is
printed with each table. What it measures is this host's CPU, not a phone's Arm cores.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# open_clip ViT-B-32 (open_clip's model_configs/ViT-B-32.json): the shapes each tower's layers run.
TOWERS = {
    "image": dict(tokens=50, width=768, heads=12, mlp=3072, layers=12, causal=False),
    "text": dict(tokens=77, width=512, heads=8, mlp=2048, layers=12, causal=True),
}
MASK_VALUE = 30.0  # converters.rewrites.MASK_VALUE: a masked logit is the row's smallest kept one - 30


# --------------------------------------------------------------------------- the ops
class One(nn.Module):
    """A container, so that the project's module swaps (LayerNorm -> MatmulLayerNorm) reach the op."""

    def __init__(self, op: nn.Module):
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class AttentionCore(nn.Module):
    """softmax(q k^T * scale) v of one layer from its fused q/k/v projection (B, T, 3E) -> (B, T, E),
    as `converters.rewrites.ExplicitAttention.attend` computes it after `FusedQKV` (column slices,
    per-head split to (B*H, T, D), 3-D bmm, the static causal mask applied by replacement)."""

    def __init__(self, width: int, heads: int, tokens: int, causal: bool):
        super().__init__()
        self.width, self.heads, self.head_dim = width, heads, width // heads
        self.scale = self.head_dim ** -0.5
        self.causal = causal
        if causal:
            keep = torch.ones(tokens, tokens).tril()
            self.register_buffer("keep", keep, persistent=False)
            self.register_buffer("drop", 1.0 - keep, persistent=False)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.reshape(b, t, self.heads, self.head_dim).permute(0, 2, 1, 3).reshape(b * self.heads, t, self.head_dim)

    def forward(self, qkv: torch.Tensor) -> torch.Tensor:
        b, t, _ = qkv.shape
        e = self.width
        q, k, v = qkv[..., :e], qkv[..., e:2 * e], qkv[..., 2 * e:]
        q = self._split(q) * self.scale
        k, v = self._split(k), self._split(v)
        s = torch.bmm(q, k.transpose(1, 2))
        if self.causal:
            kept = s * self.keep
            s = kept + (kept.amin(dim=-1, keepdim=True) - MASK_VALUE) * self.drop
        y = torch.bmm(s.softmax(dim=-1), v)
        return y.reshape(b, self.heads, t, self.head_dim).permute(0, 2, 1, 3).reshape(b, t, e)


@dataclass
class Case:
    tower: str
    name: str  # the op's role in a layer
    shape: str
    module: nn.Module
    example: torch.Tensor
    per_layer: int  # how many times one layer runs it
    ops: int  # arithmetic ops (2 x multiply-adds) of the matmuls, for GOP/s; 0: not a matmul
    runs: dict = field(default_factory=dict)  # threads -> {variant: p50 ms}
    et: dict = field(default_factory=dict)  # ExecuTorch precision -> .pte bytes
    onnx_dir: Path | None = None  # its ONNX files (fp32, dynamic int8)


def cases(towers=("image", "text")) -> list[Case]:
    out = []
    g = torch.Generator().manual_seed(0)
    for tower in towers:
        c = TOWERS[tower]
        t, e, m = c["tokens"], c["width"], c["mlp"]

        def linear(name, k, n):
            torch.manual_seed(len(out))
            out.append(Case(tower, name, f"{t}x{k}->{n}", One(nn.Linear(k, n)).eval(),
                            torch.randn(1, t, k, generator=g), 1, 2 * t * k * n))

        linear("qkv", e, 3 * e)
        linear("attn out", e, e)
        linear("mlp fc", e, m)
        linear("mlp proj", m, e)
        hd = e // c["heads"]
        out.append(Case(tower, "attention core", f"{c['heads']}h x {t}x{hd}" + (" causal" if c["causal"] else ""),
                        One(AttentionCore(e, c["heads"], t, c["causal"])).eval(),
                        torch.randn(1, t, 3 * e, generator=g), 1, 2 * 2 * c["heads"] * t * t * hd))
        ln = nn.LayerNorm(e)
        with torch.no_grad():  # not the identity affine: a trained tower's LayerNorm has weights
            ln.weight.uniform_(0.5, 1.5, generator=g)
            ln.bias.uniform_(-0.1, 0.1, generator=g)
        out.append(Case(tower, "layernorm", f"{t}x{e}", One(ln).eval(), torch.randn(1, t, e, generator=g), 2, 0))
        out.append(Case(tower, "gelu", f"{t}x{m}", One(nn.GELU()).eval(), torch.randn(1, t, m, generator=g), 1, 0))
    return out


# --------------------------------------------------------------------------- the runtimes
def lower_executorch(module: nn.Module, example: torch.Tensor, precision: str) -> bytes:
    """`converters.executorch.convert`'s lowering of one module (without its tower lookup and files):
    the project's XNNPACK rewrites, its quantization recipe, its edge pass and partitioner."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from converters import executorch as et
    from converters.rewrites import for_xnnpack

    module = et._prepare(for_xnnpack(module), example, None, precision)
    ep = torch.export.export(module, (example,))
    edge = to_edge_transform_and_lower(ep, transform_passes=[et.xnnpack_pass()], partitioner=[XnnpackPartitioner()])
    report = et.delegation_report(edge.exported_program().graph_module)
    if report["portable_nodes"] or report["delegated_subgraphs"] != 1:
        raise RuntimeError(f"not one XNNPACK delegate: {report}")
    return edge.to_executorch().buffer


class EtRunner:
    """A .pte in memory on `executorch.runtime` (as `converters.executorch.PteRunner` runs it)."""

    def __init__(self, buffer: bytes):
        from executorch.runtime import Runtime

        self.buffer = buffer  # the runtime does not own it
        self.method = Runtime.get().load_program(buffer).load_method("forward")

    def __call__(self, x: torch.Tensor):
        return self.method.execute([x])[0]


def ort_sessions(module: nn.Module, example: torch.Tensor, work: Path, threads: int) -> dict[str, Callable]:
    """ONNX Runtime fp32 and dynamic int8 of `module`: the files as `mobile_sdk.bench._onnx_sessions`
    writes them (work/model.onnx, work/model_int8.onnx: torch.onnx dynamo export, quantize_dynamic
    QInt8 weights), each opened with `ort_session`."""
    from mobile_sdk.bench import _onnx_sessions

    work.mkdir(parents=True, exist_ok=True)
    if not (work / "model_int8.onnx").is_file():
        _onnx_sessions(module, example, work, 1)
    return {"ORT fp32": ort_session(work / "model.onnx", threads),
            "ORT int8": ort_session(work / "model_int8.onnx", threads)}


def ort_session(path: Path, threads: int, profile_prefix: str | None = None):
    """fn(x) -> output of an ONNX Runtime CPU session. Its intra-op threads do not spin between
    runs: ONNX Runtime's spinning workers hold the cores that ExecuTorch's threadpool, timed in
    turn with it, then waits for (ExecuTorch's 2-thread ops took 16 ms each, whatever their size)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = threads, 1, 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix:
        so.enable_profiling, so.profile_file_prefix = True, profile_prefix
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def run(x, sess=sess, name=name):
        return sess.run(None, {name: np.asarray(x)})[0]

    run.session = sess
    return run


def set_threads(n: int) -> None:
    from mobile_sdk.bench import set_threads as _set

    _set(n)


def interleaved(fns: dict, rounds: int, calls: int, warmup: int = 3) -> dict:
    """p50 ms of each fn(): round-robin over all of them, `calls` calls per turn, `rounds` turns
    each, the starting fn rotating each round."""
    keys = list(fns)
    times = {k: [] for k in keys}
    for k in keys:
        for _ in range(warmup):
            fns[k]()
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            f = fns[k]
            for _ in range(calls):
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) * 1e3 for k, v in times.items()}


# --------------------------------------------------------------------------- part 1: ops
VARIANTS = ("ET fp32", "ET int8", "ORT fp32", "ORT int8")


def build_ops(work: Path, towers) -> list[Case]:
    out = cases(towers)
    for i, c in enumerate(out):
        print(f"  lowering {c.tower} {c.name} {c.shape}", flush=True)
        c.et = {p: lower_executorch(c.module, c.example, p) for p in ("fp32", "int8_dynamic")}
        c.onnx_dir = work / "ops" / f"{c.tower}-{i:02d}"
    return out


def time_ops(ops: list[Case], threads: int, rounds: int, calls: int) -> None:
    set_threads(threads)
    fns = {}
    for i, c in enumerate(ops):
        x, xn = c.example.contiguous(), c.example.numpy()
        et32, et8 = EtRunner(c.et["fp32"]), EtRunner(c.et["int8_dynamic"])
        ort = ort_sessions(c.module, c.example, c.onnx_dir, threads)
        fns[(i, "ET fp32")] = lambda r=et32, x=x: r(x)
        fns[(i, "ET int8")] = lambda r=et8, x=x: r(x)
        fns[(i, "ORT fp32")] = lambda r=ort["ORT fp32"], x=xn: r(x)
        fns[(i, "ORT int8")] = lambda r=ort["ORT int8"], x=xn: r(x)
        ref = c.module(c.example).detach()  # each variant computes the op (loose: int8)
        for v, f in ((v, fns[(i, v)]) for v in VARIANTS):
            got = torch.as_tensor(np.asarray(f())).reshape(ref.shape)
            cos = F.cosine_similarity(got.flatten().double(), ref.flatten().double(), dim=0).item()
            if cos < 0.99:
                print(f"  warning: {c.tower} {c.name} {v}: cosine {cos:.4f} against eager")
    p50 = interleaved(fns, rounds, calls)
    for (i, v), ms in p50.items():
        ops[i].runs.setdefault(threads, {})[v] = ms


def print_ops(ops: list[Case], threads: int) -> None:
    print(f"\n== ops, {threads} thread(s): p50 ms (interleaved); GOP/s of the int8 variants")
    head = f"{'tower':6} {'op':15} {'shape':24} {'ET fp32':>8} {'ET int8':>8} {'ORT fp32':>8} {'ORT int8':>8}" \
           f" {'ETi8/ORTi8':>10} {'ETi8/ETf32':>10} {'GOP/s ET i8':>11} {'GOP/s ORT i8':>12}"
    print(head)
    for c in ops:
        r = c.runs[threads]
        gops = (lambda ms: f"{c.ops / ms / 1e6:.1f}" if c.ops else "-")
        print(f"{c.tower:6} {c.name:15} {c.shape:24} {r['ET fp32']:8.3f} {r['ET int8']:8.3f} {r['ORT fp32']:8.3f}"
              f" {r['ORT int8']:8.3f} {r['ET int8'] / r['ORT int8']:10.2f} {r['ET int8'] / r['ET fp32']:10.2f}"
              f" {gops(r['ET int8']):>11} {gops(r['ORT int8']):>12}")


def composition(ops: list[Case], threads: int, towers_measured: dict | None) -> None:
    """Each op's per-layer time x its count per layer x the layer count: its share of the tower and
    of the ET int8 - ORT int8 gap; beside the whole tower's measured time when there is one."""
    print(f"\n== per tower from the ops, {threads} thread(s): count x layers x p50 (ms)")
    for tower in dict.fromkeys(c.tower for c in ops):
        rows = [c for c in ops if c.tower == tower]
        layers = TOWERS[tower]["layers"]
        tot = defaultdict(float)
        print(f"{tower}: {'op':15} {'n':>3} {'ET fp32':>8} {'ET int8':>8} {'ORT fp32':>8} {'ORT int8':>8}"
              f" {'gap ms':>7} {'gap share':>9}")
        gaps = {}
        for c in rows:
            n = c.per_layer * layers
            for v in VARIANTS:
                tot[v] += n * c.runs[threads][v]
            gaps[c.name] = n * (c.runs[threads]["ET int8"] - c.runs[threads]["ORT int8"])
        gap = tot["ET int8"] - tot["ORT int8"]
        for c in rows:
            n = c.per_layer * layers
            r = c.runs[threads]
            print(f"{'':7}{c.name:15} {n:3d} {n * r['ET fp32']:8.2f} {n * r['ET int8']:8.2f} {n * r['ORT fp32']:8.2f}"
                  f" {n * r['ORT int8']:8.2f} {gaps[c.name]:7.2f} {gaps[c.name] / gap if gap else float('nan'):9.0%}")
        print(f"{'':7}{'sum of ops':15} {'':3} {tot['ET fp32']:8.2f} {tot['ET int8']:8.2f} {tot['ORT fp32']:8.2f}"
              f" {tot['ORT int8']:8.2f} {gap:7.2f}   ET/ORT int8 {tot['ET int8'] / tot['ORT int8']:.2f}x")
        m = (towers_measured or {}).get((tower, threads))
        if m:
            mg = m["ET int8"] - m["ORT int8"]
            print(f"{'':7}{'tower measured':15} {'':3} {'':8} {m['ET int8']:8.2f} {'':8} {m['ORT int8']:8.2f}"
                  f" {mg:7.2f}   ET/ORT int8 {m['ET int8'] / m['ORT int8']:.2f}x;"
                  f" the ops' gap is {gap / mg:.0%} of the tower's")


# --------------------------------------------------------------------------- part 2: towers
def seeded_vit_b32(work: Path):
    """(adapter, example inputs) of open_clip ViT-B-32 with seed-0 weights (saved once in `work` as
    safetensors, as a user's file; nothing is downloaded)."""
    from safetensors.torch import save_file

    from mobile_sdk.exporter import prepare_inputs
    from mobile_sdk.models._open_clip import import_open_clip
    from mobile_sdk.models.sources import load_adapter

    weights = work / "ViT-B-32-seed0.safetensors"
    if not weights.is_file():
        torch.manual_seed(0)
        m = import_open_clip().create_model("ViT-B-32", pretrained=None)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(weights))
        del m
    adapter = load_adapter("open_clip:ViT-B-32", weights)
    return adapter, prepare_inputs(adapter, n=1)


def build_towers(work: Path, names) -> dict:
    """Seeded open_clip ViT-B-32 -> {tower: (pte bytes, torch module, example)} through the project's
    converter, and its ONNX files in work/towers/TOWER (via _onnx_sessions at first use)."""
    from converters import executorch as et

    adapter, inputs = seeded_vit_b32(work)
    out = {}
    for tower in names:
        print(f"  converting the {tower} tower (converters.executorch.convert, int8_dynamic)", flush=True)
        art = et.convert(adapter, tower, inputs.example[tower],
                         et.ExecuTorchConfig(precision="int8_dynamic", debug_twin=False), work / "towers" / "et")
        out[tower] = (Path(art.path).read_bytes(), et.tower_module(adapter, tower), inputs.example[tower].contiguous())
    return out


def time_towers(towers: dict, work: Path, threads: int, rounds: int) -> dict:
    set_threads(threads)
    fns = {}
    for tower, (pte, module, x) in towers.items():
        et8 = EtRunner(pte)
        ort8 = ort_sessions(module, x, work / "towers" / tower, threads)["ORT int8"]
        fns[(tower, "ET int8")] = lambda r=et8, x=x: r(x)
        fns[(tower, "ORT int8")] = lambda r=ort8, x=x.numpy(): r(x)
    p50 = interleaved(fns, rounds, 2, warmup=3)
    out = defaultdict(dict)
    for (tower, v), ms in p50.items():
        out[(tower, threads)][v] = ms
    return dict(out)


LINEAR_ROLES = ("qkv", "attn out", "mlp fc", "mlp proj")


def et_roles(kinds: list[str]) -> list[str | None]:
    """The layer role of each int8 GEMM in an XNNPACK op sequence, from its neighbours: the GEMM
    whose output goes to GELU is the MLP fc, the one after GELU the MLP proj, the one after the
    attention's softmax the attention out, the one before it q/k/v; any other (patch embedding,
    final projection) is "other". None for ops that are not int8 GEMMs."""
    gemm = [i for i, k in enumerate(kinds) if "QD8" in k]
    roles: list[str | None] = [None] * len(kinds)
    for j, i in enumerate(gemm):
        before = kinds[(gemm[j - 1] + 1 if j else 0):i]
        after = kinds[i + 1:(gemm[j + 1] if j + 1 < len(gemm) else len(kinds))]
        if i + 1 < len(kinds) and kinds[i + 1].startswith("GELU"):
            roles[i] = "mlp fc"
        elif i and kinds[i - 1].startswith("GELU"):
            roles[i] = "mlp proj"
        elif any(k.startswith("Softmax") for k in before):
            roles[i] = "attn out"
        elif any(k.startswith("Softmax") for k in after):
            roles[i] = "qkv"
        else:
            roles[i] = "other"
    return roles


class EtProfile:
    """A .pte on the pybindings runtime with ETDump on: XNNPACK's own per-op timings inside the
    delegate (this wheel's XNNPACK backend is built with its profiler)."""

    def __init__(self, pte: bytes):
        from executorch.extension.pybindings import portable_lib

        self.mod = portable_lib._load_for_executorch_from_buffer(pte, enable_etdump=True)

    def __call__(self, x: torch.Tensor) -> None:
        self.mod.forward((x,))

    def events(self, reduce=None, keep_index: bool = False) -> tuple[list[tuple[str, float]], float | None]:
        """[(XNNPACK operator, ms)] in execution order and the delegate call's ms, each reduced
        over the runs so far by `reduce` (default: p50 with the first run dropped); operator names
        lose their " #k" suffix unless `keep_index`."""
        from executorch.devtools import Inspector

        reduce = reduce or (lambda raw: float(np.median(raw[1:] or raw)))
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "run.etdp"
            self.mod.write_etdump_result_to_file(str(path))
            inspector = Inspector(etdump_path=str(path))
        seq, delegate = [], None
        for block in inspector.event_blocks:
            if block.name != "Execute":
                continue
            for ev in block.events:
                if not ev.perf_data:
                    continue
                ms = reduce(list(ev.perf_data.raw))
                if ev.name == "DELEGATE_CALL":
                    delegate = ms
                elif ev.is_delegated_op:
                    seq.append((ev.name if keep_index else re.sub(r" #\d+$", "", ev.name), ms))
        return seq, delegate

    def result(self) -> dict:
        """{op kind: ms}, {int8 GEMM role: ms} per inference (p50 of each op over the runs, the
        first dropped), and the delegate call's p50."""
        seq, delegate = self.events()  # (kind, ms) in execution order
        kinds, roles = defaultdict(float), defaultdict(float)
        for (kind, ms), role in zip(seq, et_roles([k for k, _ in seq])):
            kinds[kind] += ms
            if role:
                roles[role] += ms
        return {"kinds": dict(kinds), "roles": dict(roles), "delegate_ms": delegate}


ORT_INT8_GEMMS = ("DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulInteger", "ConvInteger")


class OrtProfile:
    """An ONNX file on ONNX Runtime with its node profiler on."""

    def __init__(self, path: Path, threads: int, shapes: dict):
        self.dir = tempfile.TemporaryDirectory()
        self.run = ort_session(path, threads, profile_prefix=str(Path(self.dir.name) / "ort"))
        self.shapes = shapes  # (K, N) -> Linear role

    def __call__(self, x: np.ndarray) -> None:
        self.run(x)

    def result(self) -> dict:
        """{op type: ms}, {int8 GEMM role: ms} per inference (p50 of each node over the runs, the
        first dropped), the role from the node's (K, N)."""
        events = json.loads(Path(self.run.session.end_profiling()).read_text())
        self.dir.cleanup()
        durs, args = defaultdict(list), {}
        for ev in events:
            if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
                durs[ev["name"]].append(ev["dur"] / 1e3)
                args[ev["name"]] = ev.get("args", {})
        kinds, roles = defaultdict(float), defaultdict(float)
        for node, d in durs.items():
            op = args[node].get("op_name", "?")
            ms = float(np.median(d[1:] or d))
            kinds[op] += ms
            if op in ORT_INT8_GEMMS:
                ins, outs = args[node].get("input_type_shape", []), args[node].get("output_type_shape", [])
                k = list(ins[0].values())[0][-1] if ins else None
                n = list(outs[0].values())[0][-1] if outs else None
                roles[self.shapes.get((k, n), "other") if op != "ConvInteger" else "other"] += ms
        return {"kinds": dict(kinds), "roles": dict(roles)}


def profile_towers(towers: dict, work: Path, threads: int, runs: int, measured: dict) -> None:
    set_threads(threads)
    print(f"\n== towers op by op, {threads} thread(s): ms per inference (ETDump inside the XNNPACK delegate;"
          f" ONNX Runtime's node profiler), p50 of each op over {runs} runs")
    for tower, (pte, module, x) in towers.items():
        c = TOWERS[tower]
        e, m = c["width"], c["mlp"]
        shapes = {(e, 3 * e): "qkv", (e, e): "attn out", (e, m): "mlp fc", (m, e): "mlp proj"}
        et, ort = EtProfile(pte), OrtProfile(work / "towers" / tower / "model_int8.onnx", threads, shapes)
        for _ in range(runs + 1):  # interleaved, as the timings are
            et(x)
            ort(x.numpy())
        pe, po = et.result(), ort.result()
        et_sum, ort_sum = sum(pe["kinds"].values()), sum(po["kinds"].values())
        t = measured.get((tower, threads), {})
        print(f"{tower}: ET: sum of ops {et_sum:.2f} (delegate call {pe['delegate_ms']:.2f}, timed tower "
              f"{t.get('ET int8', float('nan')):.2f}); ORT: sum of nodes {ort_sum:.2f} (timed tower "
              f"{t.get('ORT int8', float('nan')):.2f})")
        print(f"  {'ExecuTorch XNNPACK op':44} {'ms':>7}   {'ONNX Runtime op':24} {'ms':>7}")
        a = sorted(pe["kinds"].items(), key=lambda kv: -kv[1])
        b = sorted(po["kinds"].items(), key=lambda kv: -kv[1])
        for i in range(min(12, max(len(a), len(b)))):
            left = f"{a[i][0][:44]:44} {a[i][1]:7.2f}" if i < len(a) else " " * 52
            right = f"{b[i][0][:24]:24} {b[i][1]:7.2f}" if i < len(b) else ""
            print(f"  {left}   {right}")
        print(f"  {'int8 GEMM by role':24} {'ET ms':>7} {'ORT ms':>7} {'ET/ORT':>6} {'ET-ORT':>7}")
        for role in LINEAR_ROLES + ("other",):
            em, om = pe["roles"].get(role, 0.0), po["roles"].get(role, 0.0)
            print(f"  {role:24} {em:7.2f} {om:7.2f} {em / om if om else float('nan'):6.2f} {em - om:7.2f}")
        el, ol = (sum(p["roles"].get(r, 0.0) for r in LINEAR_ROLES) for p in (pe, po))
        print(f"  {'= the 48 layer Linears':24} {el:7.2f} {ol:7.2f} {el / ol:6.2f} {el - ol:7.2f}")
        print(f"  {'everything else':24} {et_sum - el:7.2f} {ort_sum - ol:7.2f} {(et_sum - el) / (ort_sum - ol):6.2f}"
              f" {(et_sum - el) - (ort_sum - ol):7.2f}")
        print(f"  {'total':24} {et_sum:7.2f} {ort_sum:7.2f} {et_sum / ort_sum:6.2f} {et_sum - ort_sum:7.2f}")


# --------------------------------------------------------------------------- main
def start_run(work: Path) -> None:
    """Quiet backends, the work folder, and a line naming the versions and the CPU count."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    work.mkdir(parents=True, exist_ok=True)
    import onnxruntime

    import executorch.version

    print(f"torch {torch.__version__}, executorch {executorch.version.__version__}, onnxruntime "
          f"{onnxruntime.__version__}; {os.cpu_count()} CPUs; work {work}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=40, help="round-robin turns per variant (ops: 5 calls a turn)")
    ap.add_argument("--towers", action=argparse.BooleanOptionalAction, default=True,
                    help="also convert, time and profile the real ViT-B-32 towers (a few minutes)")
    ap.add_argument("--only", choices=["image", "text"], nargs="+", default=["image", "text"])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "xnnpack-kernels")
    args = ap.parse_args()
    start_run(args.work)
    t0 = time.perf_counter()
    ops = build_ops(args.work, args.only)
    towers = build_towers(args.work, args.only) if args.towers else {}
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    measured = {}
    for n in args.threads:
        # Other processes on these cores make 2-thread figures unreliable (a pthreadpool waits for
        # every worker each op): the load average is printed with each table.
        print(f"\n[{n} thread(s): load average before timing {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs]")
        time_ops(ops, n, args.rounds, 5)
        if towers:
            measured.update(time_towers(towers, args.work, n, max(10, args.rounds // 2)))
        print(f"[load average after timing {os.getloadavg()[0]:.2f}]")
        print_ops(ops, n)
        composition(ops, n, measured)
        if towers:
            profile_towers(towers, args.work, n, 20, measured)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
