"""Where MobileCLIP2-S0's FastViT image tower spends its time on ExecuTorch/XNNPACK (fp32 and
int8_dynamic) and on ONNX Runtime fp32: XNNPACK's own operators, summed by kind, per inference.

    cd REPO && TF_CPP_MIN_LOG_LEVEL=3 PYTHONPATH=. .venv/bin/python benchmarks/fastvit_profile.py \
        [--threads 1] [--runs 8] [--rounds 20] [--work /tmp/fastvit-profile] [--rebuild]

The tower: open_clip MobileCLIP2-S0 with seeded weights (no download; `benchmarks/adapters.py`'s
recipe), 256x256, batch 1, through the project's adapter (`load_adapter("open_clip:MobileCLIP2-S0")`).
ExecuTorch: `converters.executorch.convert` at fp32 and int8_dynamic (each checked to be one
XNNPACK island, its cosine against eager printed); ONNX Runtime: `mobile_sdk.bench._onnx_sessions`'
files (dynamo export; `quantize_dynamic` for ORT int8). Conversion takes about 3 minutes; the
.pte / .onnx files are kept in --work and reused (--rebuild to convert again).

Then, at each thread count:
  1. plain latency, all variants interleaved (round-robin, `xnnpack_kernels.interleaved`), p50;
  2. per-op profiles, interleaved one inference at a time: ETDump inside the XNNPACK delegate
     (`xnnpack_kernels.EtProfile`: this wheel's XNNPACK is built with its profiler, so each event
     is one XNNPACK operator, e.g. `Convolution (NHWC, F32) IGEMM`) and ONNX Runtime's node
     profiler (`enable_profiling`); p50 of each op over --runs runs, summed by kind.

Kinds. XNNPACK names its operators by kernel, not by layer: the convolution and fully connected
operators are matched in order to the tower's Conv2d / Linear calls (forward hooks on the module
that was lowered: `rewrites.for_xnnpack`'s copy; XNNPACK itself runs most 1x1 convolutions as fully
connected operators), so each is classed by its layer (depthwise kxk, dense 1x1, dense kxk, Linear) and its
kernel (IGEMM, GEMM, DWConv; F32 or QD8). ONNX Runtime's Conv nodes are classed by their weight
shape. The counts must agree; where they do not, the table says so and falls back to the kernel
name. Figures are this host's CPU (x86 AVX2, no VNNI), not a phone's.

What it showed (1 thread, 2-core EPYC shared with other jobs; three runs, load 2-3):
- ET int8_dynamic is not slower than ET fp32 when the two are timed interleaved (0.93-0.98x).
  int8_dynamic quantizes FastViT's 1x1 convolutions (then lowered as `PatchLinear`s, now as convs)
  and the attention / head Linears; the other convolutions run the same fp32 kernels in both. QD8 GEMMs lose to
  F32 GEMMs only at small K with many tokens (4096 x 64 -> 192: 1.24-1.49x, K 128-384: 1.03-1.15x)
  and win at K >= 512 (0.65-0.9x): about +-2 ms in all, both kernels near this core's peak.
- ET fp32 is 2.4-2.8x ONNX Runtime fp32 because of the 7x7 depthwise convolutions (21 ConvMlp
  convs + RepCPE): XNNPACK's f32 depthwise kernels here take at most 25 taps, so 7x7 (49) falls
  back to `Convolution (NHWC, F32) IGEMM`, ~113-159 ms against ORT's 5.5-9 ms (and FastViT's
  stride-2 7x7 downsampling convs, 2 outputs per input channel, IGEMM too, 9.7 vs 8.4 ms); fixed by
  `rewrites.BandedDepthwise`. Then the transposes around each 1x1 conv lowered as a Linear
  (`PatchLinear`: ~9-10 ms vs ORT < 1 ms); 1x1 convs now stay convs (transposes 1.3 ms): ET fp32
  72.6 ms, int8_dynamic 68.3, ORT fp32 69.2 (1 thread, interleaved, quiet host).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from xnnpack_kernels import (EtProfile, EtRunner, interleaved, ort_session, ort_sessions, set_threads,  # noqa: E402
                             start_run)

MODEL = "MobileCLIP2-S0"
ET_PRECISIONS = ("fp32", "int8_dynamic")


# --------------------------------------------------------------------------- build
def adapter_and_input(work: Path):
    from safetensors.torch import save_file

    from mobile_sdk.exporter import prepare_inputs
    from mobile_sdk.models._open_clip import import_open_clip
    from mobile_sdk.models.sources import load_adapter

    weights = work / f"{MODEL}-seed0.safetensors"
    if not weights.is_file():
        torch.manual_seed(0)
        m = import_open_clip().create_model(MODEL, pretrained=None)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(weights))
        del m
    adapter = load_adapter(f"open_clip:{MODEL}", weights)
    x = prepare_inputs(adapter, n=1, towers=("image",)).example["image"].contiguous()
    return adapter, x


def build(work: Path, precisions, rebuild: bool) -> tuple[dict, torch.nn.Module, torch.Tensor]:
    """{precision: .pte bytes} through `converters.executorch.convert`, the eager tower, its input."""
    from converters import executorch as et

    adapter, x = adapter_and_input(work)
    out = {}
    for p in precisions:
        path = work / "et" / f"image_{p}.pte"
        if rebuild or not path.is_file():
            t0 = time.perf_counter()
            art = et.convert(adapter, "image", x, et.ExecuTorchConfig(p, debug_twin=False), work / "et")
            rep = art.extra["delegation"]
            print(f"  ExecuTorch {p}: {time.perf_counter() - t0:.0f} s, {art.extra['bytes'] / 1e6:.1f} MB, "
                  f"{rep['delegated_subgraphs']} XNNPACK island(s), {rep['portable_nodes']} portable node(s)",
                  flush=True)
            if rep["delegated_subgraphs"] != 1 or rep["portable_nodes"]:
                raise RuntimeError(f"{p}: not one XNNPACK island: {rep}")
        out[p] = path.read_bytes()
    return out, et.tower_module(adapter, "image"), x


# --------------------------------------------------------------------------- layers, in call order
def layer_order(tower: torch.nn.Module, x: torch.Tensor, precision: str) -> dict[str, list[str]]:
    """The Conv2d and Linear calls of the module `convert` lowers at `precision` (its `for_xnnpack`
    copy), in execution order: {"conv": [kind], "fc": [(kind, (M, K, N))]}."""
    from converters import executorch as et
    from converters.rewrites import PatchLinear, for_xnnpack

    module = for_xnnpack(tower, patch_linear=et._patch_linear(precision), pointwise_linear=et._pointwise_linear(precision))
    seq = {"conv": [], "fc": []}
    owner = {m.linear: m for m in module.modules() if isinstance(m, PatchLinear)}

    def conv_kind(m: torch.nn.Conv2d) -> str:
        kh, kw = m.kernel_size
        s = "" if tuple(m.stride) == (1, 1) else f" s{m.stride[0]}"
        if m.groups == m.in_channels > 1:  # one input channel a group (FastViT's downsampling: 2 outputs each)
            mult = m.out_channels // m.groups
            return f"depthwise {kh}x{kw}{s}" + ("" if mult == 1 else f" x{mult}")
        g = "" if m.groups == 1 else f" g{m.groups}"
        return f"dense {kh}x{kw}{s}{g}"

    def hook(m, args, out):
        if isinstance(m, torch.nn.Conv2d):
            seq["conv"].append(conv_kind(m))
            return
        shape = (args[0].numel() // m.in_features, m.in_features, m.out_features)  # M x K -> N
        if m in owner:
            kh, kw = owner[m].k
            seq["fc"].append(("1x1 conv as Linear" if (kh, kw) == (1, 1) else f"{kh}x{kw} patch conv as Linear", shape))
        else:
            seq["fc"].append(("Linear", shape))

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        module(x)
    for h in handles:
        h.remove()
    return seq


# --------------------------------------------------------------------------- ExecuTorch events
def et_events(prof: EtProfile) -> tuple[list[tuple[str, float]], float | None]:
    """[(XNNPACK operator, p50 ms over the runs, the first dropped)] in execution order, and the
    delegate call's p50."""
    return prof.events()


def et_kind(op: str, layer: str | None) -> str:
    """A row of the table for one XNNPACK operator (and the layer it runs, where known)."""
    kernel = op[op.rfind(")") + 1:].strip()  # IGEMM, GEMM, DWConv, ...
    if op.startswith("Convolution"):
        dtype = "QD8" if "QD8" in op else ("F32" if "F32" in op else op)
        return f"conv {layer or '?'} [{dtype} {kernel}]"
    if op.startswith("Fully Connected"):
        dtype = "QD8" if "QD8" in op else "F32"
        return f"FC {layer or '?'} [{dtype}]"
    if op.startswith("Batch Matrix Multiply"):
        return "attention bmm"
    if op.startswith(("Transpose", "Copy")):
        return "transpose / copy"
    if op.startswith("Convert") or "Quantize" in op:
        return "convert / quantize"
    if op.startswith(("Static Reshape", "Reshape")):
        return "reshape (free)"
    return "other: " + re.sub(r" \(.*", "", op)


def align(kernels: list[str], layers: list[str]) -> list[str | None]:
    """The layer of each XNNPACK convolution operator (None: no Conv2d, e.g. a BatchNorm that no
    convolution precedes, which XNNPACK runs as a 1x1 depthwise convolution). An edit-distance
    alignment: a DWConv kernel goes with a depthwise layer (with one of more than 25 taps, which
    this XNNPACK runs as IGEMM, only at a cost), any other kernel with any layer."""
    def taps(layer):
        kh, kw = (int(v) for v in re.search(r"(\d+)x(\d+)", layer).groups())
        return kh * kw

    def cost(k, layer):
        if k != "DWConv":
            return 0.0
        return (0.0 if taps(layer) <= 25 else 0.5) if layer.startswith("depthwise") else 3.0

    n, m = len(kernels), len(layers)
    d = np.zeros((n + 1, m + 1))
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j - 1] + cost(kernels[i - 1], layers[j - 1]), d[i - 1, j] + 1, d[i, j - 1] + 1)
    out: list[str | None] = [None] * n
    i, j = n, m
    while i and j:
        if d[i, j] == d[i - 1, j - 1] + cost(kernels[i - 1], layers[j - 1]):
            out[i - 1] = layers[j - 1]
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return out


def classify_et(seq: list[tuple[str, float]], layers: dict) -> tuple[dict, dict, list[str]]:
    """{kind: ms}, {(FC layer kind, (M, K, N)): [ms of each such operator]} and any warnings."""
    convs = [i for i, (op, _) in enumerate(seq) if op.startswith("Convolution")]
    fcs = [i for i, (op, _) in enumerate(seq) if op.startswith("Fully Connected")]
    names: dict[int, str] = {}
    notes = []
    kernels = [seq[i][0][seq[i][0].rfind(")") + 1:].strip() for i in convs]
    for i, layer in zip(convs, align(kernels, layers["conv"])):
        names[i] = layer or "without a Conv2d (standalone BatchNorm)"
    if len(convs) != len(layers["conv"]):
        notes.append(f"{len(convs)} XNNPACK convolutions for {len(layers['conv'])} Conv2d layers (aligned by kernel)")
    by_shape = defaultdict(list)
    if len(fcs) == len(layers["fc"]):
        for i, (layer, shape) in zip(fcs, layers["fc"]):
            names[i] = layer
            by_shape[(layer, shape)].append(seq[i][1])
    else:
        notes.append(f"{len(fcs)} XNNPACK fully connected operators but {len(layers['fc'])} Linears: by kernel only")
    kinds = defaultdict(float)
    for i, (op, ms) in enumerate(seq):
        kinds[et_kind(op, names.get(i))] += ms
    return dict(kinds), dict(by_shape), notes


# --------------------------------------------------------------------------- ONNX Runtime events
def ort_events(run) -> list[tuple[str, dict, float]]:
    """[(op type, args, p50 ms)] of one profiled ONNX Runtime session's nodes, the first run dropped."""
    events = json.loads(Path(run.session.end_profiling()).read_text())
    durs, args = defaultdict(list), {}
    for ev in events:
        if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
            durs[ev["name"]].append(ev["dur"] / 1e3)
            args[ev["name"]] = ev.get("args", {})
    return [(args[n].get("op_name", "?"), args[n], float(np.median(d[1:] or d))) for n, d in durs.items()]


def ort_gemm_shape(op: str, args: dict) -> tuple[int, int, int] | None:
    """(M, K, N) of a 1x1 dense Conv or of a MatMul / Gemm by a 2-D weight; None for others."""
    ins = [list(s.values())[0] for s in args.get("input_type_shape", [])]
    if len(ins) < 2:
        return None
    x, w = ins[0], ins[1]
    if op in ("Conv", "FusedConv") and len(w) == 4 and w[2:] == [1, 1] and len(x) == 4 and x[1] == w[1]:
        return (x[2] * x[3], w[1], w[0])
    if op in ("MatMul", "FusedMatMul") and len(w) == 2:
        return (int(np.prod(x[:-1])), w[0], w[1])
    if op == "Gemm" and len(w) == 2:
        k = x[-1]
        return (int(np.prod(x[:-1])), k, w[0] if w[1] == k else w[1])
    return None


def ort_kind(op: str, args: dict) -> str:
    ins = [list(s.values())[0] for s in args.get("input_type_shape", [])]
    if op in ("Conv", "FusedConv", "ConvInteger", "QLinearConv", "NhwcFusedConv") and len(ins) >= 2:
        x, w = ins[0], ins[1]
        kh, kw = (w[-2], w[-1]) if len(w) == 4 else (1, 1)
        groups = x[1] // w[1] if len(x) == 4 and w[1] else 1
        if groups > 1 and groups == x[1]:
            layer = f"depthwise {kh}x{kw}" + ("" if w[0] == groups else f" x{w[0] // groups}")
        else:
            layer = f"dense {kh}x{kw}" + ("" if groups == 1 else f" g{groups}")
        return f"conv {layer} [{op}]"
    if op in ("MatMul", "FusedMatMul", "Gemm", "MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"):
        # The Linears multiply by a 2-D weight; attention multiplies two activations (4-D).
        if len(ins) >= 2 and len(ins[1]) == 2:
            return f"FC Linear [{op}]"
        return "attention bmm"
    if op in ("Transpose", "Reorder", "ReorderInput", "ReorderOutput"):
        return "transpose / copy"
    if op in ("DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear"):
        return "convert / quantize"
    if op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
        return "reshape (free)"
    return "other: " + op


# --------------------------------------------------------------------------- report
def cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def table(cols: dict[str, dict[str, float]], totals: dict[str, str]) -> None:
    names = list(cols)
    rows = sorted({k for c in cols.values() for k in c}, key=lambda k: -max(c.get(k, 0.0) for c in cols.values()))
    w = max(len(r) for r in rows + ["kind"])
    print(f"  {'kind':{w}} " + " ".join(f"{n:>14}" for n in names))
    for r in rows:
        vals = [cols[n].get(r) for n in names]
        if all(v is None or v < 0.005 for v in vals):
            continue
        print(f"  {r:{w}} " + " ".join(f"{v:14.2f}" if v is not None else f"{'-':>14}" for v in vals))
    print(f"  {'sum of ops':{w}} " + " ".join(f"{sum(cols[n].values()):14.2f}" for n in names))
    for label, line in totals.items():
        print(f"  {label:{w}} {line}")


def coarse(kinds: dict[str, float]) -> dict[str, float]:
    """The kinds without their kernel: depthwise / 1x1 / kxk convolutions, Linears, the rest."""
    out = defaultdict(float)
    for k, ms in kinds.items():
        if k.startswith("conv ") or k.startswith("FC "):
            layer = re.sub(r" \[.*", "", k)
            if "1x1" in layer:
                layer = "conv 1x1 (dense)"
            elif "depthwise" in layer:
                layer = "conv depthwise " + re.search(r"\d+x\d+", layer).group(0)
            elif "dense" in layer or "patch" in layer:
                layer = "conv kxk (dense)"
            elif "Linear" in layer:
                layer = "Linear (attention, head)"
            if "QD8" in k or "Integer" in k:
                layer += " int8"
            out[layer] += ms
        else:
            out[k] += ms
    return dict(out)


def fc_table(shapes: dict, threads: int) -> None:
    """The fully connected operators (Linears and 1x1 convolutions) by shape: ET fp32 against ET
    int8_dynamic (F32 GEMM against QD8 GEMM), beside ONNX Runtime fp32's node of the same shape."""
    et32, et8 = shapes.get("ET fp32", {}), shapes.get("ET int8_dynamic", {})
    if not et32 or not et8:
        return
    print(f"\n== {threads} thread(s): fully connected operators by shape (M tokens x K -> N), ms summed over layers")
    print(f"  {'layer':20} {'M x K -> N':>18} {'n':>3} {'ET fp32':>8} {'ET int8':>8} {'int8/fp32':>9}"
          f" {'GFLOP/s f32':>11} {'GOP/s qd8':>9} {'ORT fp32':>8}")
    tot = defaultdict(float)
    for (layer, (m, k, nn_)), t32 in sorted(et32.items(), key=lambda kv: (kv[0][1][1], -kv[0][1][0])):
        t8 = et8.get((layer, (m, k, nn_)))
        if t8 is None:
            continue
        a, b = sum(t32), sum(t8)
        ort = shapes.get("ORT fp32", {}).get((m, k, nn_))
        flop = 2 * m * k * nn_ * len(t32)
        tot["f32"] += a
        tot["qd8"] += b
        tot["ort"] += ort or 0.0
        print(f"  {layer:20} {f'{m} x {k} -> {nn_}':>18} {len(t32):3d} {a:8.3f} {b:8.3f} {b / a:9.2f}"
              f" {flop / a / 1e6:11.1f} {flop / b / 1e6:9.1f} {ort if ort is not None else float('nan'):8.3f}")
    print(f"  {'total':20} {'':18} {'':3} {tot['f32']:8.3f} {tot['qd8']:8.3f} {tot['qd8'] / tot['f32']:9.2f}"
          f" {'':11} {'':9} {tot['ort']:8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--runs", type=int, default=8, help="profiled inferences per variant (interleaved)")
    ap.add_argument("--rounds", type=int, default=20, help="round-robin turns of the plain latency timing")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fastvit-profile")
    ap.add_argument("--rebuild", action="store_true", help="convert again (after a converter change)")
    args = ap.parse_args()
    start_run(args.work)
    ptes, tower, x = build(args.work, ET_PRECISIONS, args.rebuild)
    layers = {p: layer_order(tower, x, p) for p in ET_PRECISIONS}
    with torch.no_grad():
        ref = tower(x).numpy()
    onnx_dir = args.work / "onnx"
    for n in args.threads:
        set_threads(n)
        ort = ort_sessions(tower, x, onnx_dir, n)
        ets = {p: EtRunner(b) for p, b in ptes.items()}
        xn = x.numpy()
        fns = {f"ET {p}": (lambda r=r: r(x)) for p, r in ets.items()}
        fns.update({k: (lambda r=r: r(xn)) for k, r in ort.items()})
        cos = {k: cosine(f(), ref) for k, f in fns.items()}
        print(f"\n[{n} thread(s): load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs]")
        print("  cosine vs eager: " + ", ".join(f"{k} {c:.6f}" for k, c in cos.items()))
        p50 = interleaved(fns, args.rounds, 1, warmup=2)
        print("  latency p50 ms (interleaved): " + ", ".join(f"{k} {v:.1f}" for k, v in p50.items()), flush=True)

        # profiles, interleaved one inference at a time
        etp = {p: EtProfile(b) for p, b in ptes.items()}
        prof_dir = tempfile.TemporaryDirectory()
        ortp = {"ORT fp32": ort_session(onnx_dir / "model.onnx", n, str(Path(prof_dir.name) / "fp32")),
                "ORT int8": ort_session(onnx_dir / "model_int8.onnx", n, str(Path(prof_dir.name) / "int8"))}
        for _ in range(args.runs + 1):
            for p in etp:
                etp[p](x)
            for r in ortp.values():
                r(xn)
        cols, shapes, notes = {}, {}, []
        for p, prof in etp.items():
            seq, _ = et_events(prof)
            cols[f"ET {p}"], shapes[f"ET {p}"], bad = classify_et(seq, layers[p])
            notes += [f"ET {p}: {b}" for b in bad]
        for k, r in ortp.items():
            acc, by_shape = defaultdict(float), defaultdict(float)
            for op, a, ms in ort_events(r):
                acc[ort_kind(op, a)] += ms
                shape = ort_gemm_shape(op, a)
                if shape:
                    by_shape[shape] += ms
            cols[k], shapes[k] = dict(acc), dict(by_shape)
        prof_dir.cleanup()
        names = list(cols)
        totals = {"timed p50 (no profiler)": " ".join(f"{p50[k]:14.2f}" for k in names)}
        print(f"\n== {n} thread(s): ms per inference by operator kind and kernel (p50 of each op over {args.runs} "
              f"interleaved runs)")
        table(cols, totals)
        print(f"\n== {n} thread(s): the same by layer kind")
        table({k: coarse(v) for k, v in cols.items()}, totals)
        for note in notes:
            print("  note: " + note)
        fc_table(shapes, n)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
