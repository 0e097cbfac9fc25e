"""`mobile-sdk bench DIR`: batch-1 latency, memory and size of each artifact, next to its peers.

For each artifact in DIR (found like the parity checker finds them) and each thread count:
median and p90 latency over at least `min_runs` runs and `min_seconds`, after warm-up, on a real
calibration input; the process's resident memory growth while loading and running it; the file
size. Beside them, in the same run: eager PyTorch for the reference model (and the shipped teacher
and student when they differ from it), ONNX Runtime fp32 and ONNX Runtime's own dynamic int8
quantization of the same towers. Each tower's FLOPs per inference (torch's FlopCounterMode) and the
achieved GFLOP/s are put next to this machine's measured peak: a large fp32 matmul (torch) and a
large int8 matmul (torch._int_mm), timed in the same run.

Core ML artifacts have no runtime on Linux (the runner there is a numpy reference interpreter):
they are listed with their size and marked skipped, with the reason.
"""

from __future__ import annotations

import logging
import os
import re
import platform as _platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from .errors import DataError
from .progress import Steps

log = logging.getLogger(__name__)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_fn(fn, x, min_runs: int = 50, min_seconds: float = 1.0, warmup: int = 5) -> dict:
    """Median / p90 / mean latency in ms of fn(x)."""
    for _ in range(warmup):
        fn(x)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
        if len(times) >= 20 * min_runs:
            break
    ms = np.array(times) * 1e3
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)), "mean_ms": float(ms.mean()),
            "runs": len(ms)}


def set_threads(n: int) -> None:
    """Thread count of torch and of the ExecuTorch XNNPACK threadpool (LiteRT takes it per runner)."""
    torch.set_num_threads(n)
    try:
        from executorch.extension.pybindings import portable_lib

        portable_lib._unsafe_reset_threadpool(n)
    except (ImportError, AttributeError, RuntimeError):  # pragma: no cover - depends on the wheel
        pass


def flops(tower: torch.nn.Module, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        tower(x)
    return int(counter.get_total_flops())


def machine_peak(threads: int, n: int = 1024) -> dict:
    """GFLOP/s of a large fp32 matmul and GOP/s of a large int8 matmul on this machine."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    t = time_fn(lambda _: torch.mm(a, b), None, min_runs=10, min_seconds=0.5)
    out = {"fp32_gflops": 2 * n ** 3 / (t["median_ms"] * 1e-3) / 1e9}
    try:
        qa = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        qb = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        t = time_fn(lambda _: torch._int_mm(qa, qb), None, min_runs=10, min_seconds=0.5)
        out["int8_gops"] = 2 * n ** 3 / (t["median_ms"] * 1e-3) / 1e9
    except (RuntimeError, AttributeError) as e:  # pragma: no cover - depends on the build
        out["int8_gops"] = None
        out["int8_note"] = f"torch._int_mm unavailable: {e}"
    return out


def _onnx_sessions(tower_mod: torch.nn.Module, x: torch.Tensor, work: Path, threads: int) -> dict:
    """ONNX Runtime fp32 and its dynamic int8 quantization of one tower: {name: (run fn, bytes)}."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    import contextlib
    import io

    fp32 = work / "model.onnx"
    if not fp32.is_file():
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # onnxruntime.quantization advises pre-processing on the root logger
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
                torch.onnx.export(tower_mod, (x,), str(fp32), input_names=["x"], output_names=["y"], dynamo=True,
                                  external_data=False)
                quantize_dynamic(str(fp32), str(work / "model_int8.onnx"), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
    out = {}
    for name, path in (("onnxruntime fp32", fp32), ("onnxruntime int8 (dynamic)", work / "model_int8.onnx")):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        out[name] = (lambda a, s=sess: s.run(None, {"x": a})[0], path.stat().st_size)
    return out


def bench_folder(folder: str | Path, threads=(1, 2), checkpoint=None, peers: bool = True, on_step=None,
                 model=None, weights=None) -> dict:
    from converters import backends, platform_module

    from .checkpoint import assets_dir, load_checkpoint
    from .data.calibration import load_calibration
    from .exporter import DEFAULT_CALIBRATION, square_size
    from .models.sources import load_reference
    from .folder import ExportFolder

    folder = Path(folder)
    export_folder = ExportFolder.open(folder)  # manifest, sidecars, files and export.json checked
    record, metas = export_folder.record, export_folder.artifacts
    if not metas:
        raise DataError(f"no artifacts in {folder} (its manifest lists none); run `mobile-sdk export` first")
    model = load_reference(record, model, weights, checkpoint)
    meta = getattr(model, "meta", {"name": model.name})
    checkpoint = Path(model.weights) if model.weights else None
    cal = load_calibration(record.get("calibration") or DEFAULT_CALIBRATION, square_size(model), 1)
    tok = model.tokenizer
    inputs = {"image": torch.from_numpy(cal.images).permute(0, 3, 1, 2).float().contiguous(),
              "text": torch.from_numpy(np.ascontiguousarray(tok(cal.captions[:1] or ["a red circle"]), np.int32))}
    towers = {"image": model.image, "text": model.text}
    tower_flops = {t: flops(towers[t], inputs[t]) for t in towers}
    rows: list[dict] = []

    def add(name, kind, tower, precision, size, fn, x, n_threads, rss0):
        t = time_fn(fn, x)
        gflops = tower_flops[tower] / (t["median_ms"] * 1e-3) / 1e9
        rows.append({"name": name, "kind": kind, "tower": tower, "precision": precision, "bytes": size,
                     "threads": n_threads, **t, "gflops": gflops, "rss_growth_mb": max(0.0, _rss_mb() - rss0)})

    eager = {"reference": checkpoint}
    for name in ("teacher", "student"):  # the built-in family's own peers
        p = assets_dir() / f"{name}.safetensors"
        if model.family == "builtin" and p.is_file() and (checkpoint is None or p.resolve() != checkpoint.resolve()):
            eager[name] = p
    timed = [m for m in metas if m["platform"] != "coreml"]
    tick = Steps(on_step, len(threads) * (len(timed) + (len(towers) * (len(eager) + 1) if peers else 0)))
    peaks = {}
    for n in threads:
        set_threads(n)
        peaks[n] = machine_peak(n)
        for m in metas:
            f = Path(m["file"])
            size = f.stat().st_size if f.is_file() else sum(p.stat().st_size for p in f.rglob("*") if p.is_file())
            label = f"{m['platform']} {m['tower']} {m['precision']}"
            if m["platform"] != "coreml":
                tick(f"{label}, {n} thread(s)")
            gone = backends()[m["platform"]].missing() if m["platform"] in backends() else []
            if gone and m["platform"] != "coreml":
                rows.append({"name": label, "kind": "artifact", "tower": m["tower"], "precision": m["precision"],
                             "bytes": size, "threads": n, "skipped": f"runtime not installed: "
                             f"{backends()[m['platform']].install_hint()}"})
                continue
            if m["platform"] == "coreml":
                rows.append({"name": label, "kind": "artifact", "tower": m["tower"], "precision": m["precision"],
                             "bytes": size, "threads": n, "skipped": "Core ML runs only on Apple devices; the Linux "
                             "runner is a numpy reference interpreter, not a latency measure"})
                continue
            rss0 = _rss_mb()
            mod = platform_module(m["platform"])
            runner = mod.load(f, num_threads=n) if m["platform"] == "tflite" else mod.load(f)
            x = inputs[m["tower"]].numpy()
            add(label, "artifact", m["tower"], m["precision"], size, runner, x, n, rss0)
            del runner
        if not peers:
            continue
        for name, path in eager.items():
            em, emeta = (model, meta) if path == checkpoint else load_checkpoint(path)
            for tower in towers:
                tick(f"eager {name} {tower}, {n} thread(s)")
                mod_t = em.tower(tower) if hasattr(em, "tower") else (em.visual if tower == "image" else em.text)
                rss0 = _rss_mb()
                nbytes = 4 * sum(p.numel() for p in mod_t.parameters())

                def run(a, mod_t=mod_t):
                    with torch.no_grad():
                        return mod_t(a)
                label = emeta.get("name") or (path.stem if path else model.name)
                add(f"eager PyTorch {name} ({label}) {tower}", "eager", tower, "fp32", nbytes,
                    run, inputs[tower], n, rss0)
        with tempfile.TemporaryDirectory() as tmp:
            for tower in towers:
                work = Path(tmp) / tower
                work.mkdir(exist_ok=True)
                tick(f"onnxruntime {tower}, {n} thread(s)")
                rss0 = _rss_mb()
                try:
                    sessions = _onnx_sessions(towers[tower], inputs[tower], work, n)
                except Exception as e:  # a peer failing must not hide the artifacts' figures
                    rows.append({"name": f"onnxruntime {tower}", "kind": "peer", "tower": tower, "threads": n,
                                 "skipped": f"{type(e).__name__}: {e}"})
                    continue
                for name, (fn, size) in sessions.items():
                    add(f"{name} {tower}", "peer", tower, "int8" if "int8" in name else "fp32", size, fn,
                        inputs[tower].numpy(), n, rss0)
    return {"schema": 1, "folder": str(folder), "checkpoint": str(checkpoint or model.name),
            "machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                        "peak": {str(k): v for k, v in peaks.items()}},
            "flops": tower_flops, "rows": rows}


def render_table(result: dict) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"batch-1 latency, {result['folder']}")
    for h in ("name", "threads", "size", "median ms", "p90 ms", "GFLOP/s", "% of peak", "RSS growth MB"):
        table.add_column(h, justify="left" if h == "name" else "right")
    for r in sorted(result["rows"], key=lambda r: (r["threads"], r["tower"], r["kind"] != "artifact", r["name"])):
        if "skipped" in r:
            table.add_row(r["name"], str(r["threads"]), f"{r.get('bytes', 0) / 1e6:.2f} MB" if r.get("bytes") else "-",
                          "skipped", "", "", "", "")
            continue
        peaks = result["machine"]["peak"][str(r["threads"])]
        # int8 rows against the int8 matmul peak, the others against fp32
        peak = peaks.get("int8_gops") if r["precision"].startswith("int8") and peaks.get("int8_gops") else peaks["fp32_gflops"]
        table.add_row(r["name"], str(r["threads"]), f"{r['bytes'] / 1e6:.2f} MB", f"{r['median_ms']:.3f}",
                      f"{r['p90_ms']:.3f}", f"{r['gflops']:.1f}", f"{100 * r['gflops'] / peak:.1f}%",
                      f"{r['rss_growth_mb']:.1f}")
    buf = StringIO()
    Console(file=buf, width=160, color_system=None).print(table)
    peaks = ", ".join(f"{k} thread(s): fp32 {v['fp32_gflops']:.1f} GFLOP/s, int8 "
                      f"{v['int8_gops']:.1f} GOP/s" if v.get("int8_gops") else f"{k}: fp32 {v['fp32_gflops']:.1f}"
                      for k, v in result["machine"]["peak"].items())
    fl = ", ".join(f"{t} {v / 1e6:.1f} MFLOP" for t, v in result["flops"].items())
    return buf.getvalue().rstrip() + f"\nmachine peak (1024^3 matmul): {peaks}\nFLOPs per inference: {fl}"


def cpu_name() -> str:
    """This host's CPU model and the SIMD extensions that matter for the kernels, e.g.
    "AMD EPYC 7B13 (avx2, fma; no avx512f, no avx_vnni)"."""
    model, flags = _platform.processor() or _platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    if not flags:
        return model
    isa = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    have = [f for f in isa if f in flags]
    lack = [f for f in isa[:5] if f not in flags]
    return f"{model} ({', '.join(have) or 'no AVX2'}" + (f"; no {', no '.join(lack)}" if lack else "") + ")"


def _agreements(parity: dict | None) -> dict[str, float]:
    out = {}
    for a in (parity or {}).get("artifacts", []):
        ag = (a.get("tasks") or {}).get("agreement") or {}
        v = ag.get("zeroshot", ag.get("retrieval"))
        if v is not None:
            out[f"{a['platform']} {a['tower']} {a['precision']}"] = v
    return out


def _place_labels(ax, points: list[tuple[float, float, str]]) -> None:
    """Annotate each point with its label at the first of several offsets whose box overlaps no
    label placed before it (a label that fits nowhere takes its last candidate)."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    placed = []
    offsets = [(6, 6), (6, -12), (-6, 6), (-6, -12), (6, 18), (6, -24), (-6, 18), (-6, -24), (6, 30), (6, -36)]
    for x, y, text in sorted(points, key=lambda p: (p[1], p[0])):
        for k, (dx, dy) in enumerate(offsets):
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=7,
                              ha="left" if dx > 0 else "right", arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "grey"})
            box = ann.get_window_extent(renderer).expanded(1.05, 1.15)
            if not any(box.overlaps(b) for b in placed) or k == len(offsets) - 1:
                placed.append(box)
                break
            ann.remove()


def tradeoff_png(result: dict, parity: dict | None) -> bytes | None:
    """One chart per tower: median batch-1 latency on this host (x) against zero-shot agreement with
    eager PyTorch (y), marker area proportional to the artifact's size; the eager and ONNX Runtime
    peers (no agreement of their own) as dotted vertical lines. None when nothing was timed."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    timed = [r for r in result["rows"] if "skipped" not in r]
    if not timed:
        return None
    agree = _agreements(parity)
    n = max(r["threads"] for r in timed)
    towers = [t for t in ("image", "text") if any(r["tower"] == t for r in timed)]
    fig, axes = plt.subplots(1, len(towers), figsize=(6.5 * len(towers), 4.8), dpi=110, squeeze=False)
    for ax, tower in zip(axes[0], towers):
        rows = [r for r in timed if r["threads"] == n and r["tower"] == tower]
        points = []
        peers = sorted((r for r in rows if r["kind"] != "artifact"), key=lambda r: r["median_ms"])
        for k, r in enumerate(peers):  # neighbours' labels at staggered heights, so they do not overlap
            ax.axvline(r["median_ms"], color="grey", ls=":", lw=0.9)
            label = re.sub(r" \(.*\)$", "", r["name"].replace(f" {tower}", "").replace("eager PyTorch ", "eager "))
            ax.text(r["median_ms"], 1.0 - 0.5 * (k % 2), " " + label, rotation=90,
                    fontsize=6.5, va="top", ha="right", color="dimgrey", transform=ax.get_xaxis_transform())
        for r in rows:
            if r["kind"] != "artifact":
                continue
            y = 100 * agree.get(r["name"], float("nan"))
            ax.scatter(r["median_ms"], y, s=40 + 400 * r["bytes"] / max(x["bytes"] for x in rows), alpha=0.6)
            points.append((r["median_ms"], y, f"{r['name'].replace(f' {tower}', '')}, {r['bytes'] / 1e6:.2f} MB"))
        ax.set_xlabel(f"median latency, batch 1, {n} thread(s), on this host (ms, log scale)")
        ax.set_ylabel("zero-shot agreement with eager PyTorch (%)")
        ax.set_title(f"{tower} tower", fontsize=10)
        lo = min([p[1] for p in points if p[1] == p[1]] or [95.0])
        ax.set_ylim(min(lo - 1.0, 97.0), 100.6)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        _place_labels(ax, [p for p in points if p[1] == p[1]])
    fig.suptitle(f"size (marker area), latency and agreement; CPU: {result.get('machine', {}).get('cpu', '?')}",
                 fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_plot(result: dict, parity: dict | None, path: Path) -> Path | None:
    """bench.png: the trade-off chart (`tradeoff_png`); None when nothing was timed."""
    png = tradeoff_png(result, parity)
    if png is None:
        return None
    Path(path).write_bytes(png)
    return Path(path)
