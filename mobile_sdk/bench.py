"""`mobile-sdk bench DIR`: batch-1 latency, memory and size of each artifact, next to its peers.

For each artifact in DIR (read through `folder.ExportFolder`) and each thread count: p50 / p90 /
p95 / p99 latency over at least `min_runs` runs and `min_seconds`, after warm-up, on a real
calibration input; load time; the process's resident-memory growth and peak while loading and
running it; the file size. Beside them, in the same run: eager PyTorch for the reference model (and
the shipped teacher and student when they differ from it), ONNX Runtime fp32 and ONNX Runtime's
own dynamic and static (QDQ, calibrated on the export's calibration data) int8 quantizations of the
same towers, and, with `runtime_peers`, each runtime's fp32 artifact the folder lacks. Each tower's
FLOPs per inference (torch's FlopCounterMode) and the achieved GFLOP/s are put next to this
machine's measured peak, timed in the same run with the fastest kernel at hand: a large fp32
matmul (torch.mm) and a large int8 matmul (FBGEMM / QNNPACK quantized linear, ONNX Runtime's
MatMulInteger, torch._int_mm: the best of them). The CPU is named with its SIMD extensions.

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
import warnings
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
    p50, p90, p95, p99 = (float(v) for v in np.percentile(ms, [50, 90, 95, 99]))
    return {"median_ms": p50, "p50_ms": p50, "p90_ms": p90, "p95_ms": p95, "p99_ms": p99, "mean_ms": float(ms.mean()),
            "runs": len(ms)}


def _reset_peak_rss() -> bool:
    """Reset this process's resident-memory high-water mark (Linux: /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float | None:
    """The resident-memory high-water mark (VmHWM) since the last `_reset_peak_rss`, in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


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
    """GFLOP/s of a large fp32 matmul and GOP/s of a large int8 matmul on this machine, each with
    the fastest kernel at hand: torch.mm (oneDNN / MKL) for fp32; for int8, the best of FBGEMM's
    (x86) or QNNPACK's (Arm) quantized linear (u8 x s8 -> s32, `vpmaddubsw` on AVX2, VNNI where the
    CPU has it), ONNX Runtime's MatMulInteger (MLAS) and torch._int_mm."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    t = time_fn(lambda _: torch.mm(a, b), None, min_runs=10, min_seconds=0.5)
    ops = 2 * n ** 3
    out = {"fp32_gflops": ops / (t["median_ms"] * 1e-3) / 1e9, "fp32_kernel": "torch.mm"}
    best, notes = {}, []
    for name, make in (("torch.ops.quantized.linear", _qlinear_fn), ("onnxruntime MatMulInteger", _ort_matmul_integer_fn),
                       ("torch._int_mm", _int_mm_fn)):
        try:
            fn = make(n, threads)
            fn(None)
            t0 = time.perf_counter()
            fn(None)
            once = time.perf_counter() - t0
        except Exception as e:  # a kernel missing from this build: the others stand
            notes.append(f"{name}: {type(e).__name__}")
            continue
        # A kernel ten times slower than fp32 (torch._int_mm's CPU fallback takes 1.6 s here) cannot
        # be the peak: one call is its figure, instead of 15 more.
        slow = once > 10 * t["median_ms"] * 1e-3
        best[name] = ops / ((once if slow else time_fn(fn, None, min_runs=10, min_seconds=0.5)["median_ms"] * 1e-3)
                            ) / 1e9
    if best:
        kernel = max(best, key=best.get)
        out.update(int8_gops=best[kernel], int8_kernel=kernel, int8_kernels={k: round(v, 1) for k, v in best.items()})
    else:
        out.update(int8_gops=None, int8_note="no int8 matmul kernel ran: " + "; ".join(notes))
    return out


def _qlinear_fn(n: int, threads: int):
    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("x86", "fbgemm", "qnnpack") if e in engines), None)
    if engine is None:
        raise RuntimeError("no quantized engine")
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():  # torch marks its quantized tensors deprecated; the kernel is current
        warnings.simplefilter("ignore", UserWarning)
        w = torch.quantize_per_tensor(torch.randn(n, n), 0.05, 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(w, None)
        x = torch.quantize_per_tensor(torch.rand(n, n) * 4, 0.05, 0, torch.quint8)
    return lambda _: torch.ops.quantized.linear(x, packed, 1.0, 0)


def _ort_matmul_integer_fn(n: int, threads: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "mmi",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])],
        [helper.make_tensor("b", TensorProto.INT8, [n, n],
                            np.random.default_rng(0).integers(-128, 127, (n, n), dtype=np.int8).tobytes(), raw=True)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 9)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = threads, 1, 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).integers(0, 255, (n, n), dtype=np.uint8)
    return lambda _: sess.run(None, {"a": a})


def _int_mm_fn(n: int, threads: int):
    qa = torch.randint(-128, 127, (n, n), dtype=torch.int8)
    qb = torch.randint(-128, 127, (n, n), dtype=torch.int8)
    return lambda _: torch._int_mm(qa, qb)


def _onnx_sessions(tower_mod: torch.nn.Module, x: torch.Tensor, work: Path, threads: int,
                   calibration: list[np.ndarray] | None = None) -> dict:
    """ONNX Runtime fp32 of one tower, its dynamic int8 quantization and (with `calibration`, the
    artifacts' own calibration inputs) its static int8 quantization, QDQ with per-channel weights:
    {name: (run fn, bytes, load ms)}."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    import contextlib
    import io

    fp32 = work / "model.onnx"
    variants = [("onnxruntime fp32", fp32), ("onnxruntime int8 (dynamic)", work / "model_int8.onnx")]
    if calibration:
        variants.append(("onnxruntime int8 (static QDQ)", work / "model_int8_static.onnx"))
    if not fp32.is_file():
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # onnxruntime.quantization advises pre-processing on the root logger
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
                torch.onnx.export(tower_mod, (x,), str(fp32), input_names=["x"], output_names=["y"], dynamo=True,
                                  external_data=False)
                quantize_dynamic(str(fp32), str(work / "model_int8.onnx"), weight_type=QuantType.QInt8)
                if calibration:
                    class Reader(CalibrationDataReader):
                        def __init__(self):
                            self.it = iter(calibration)

                        def get_next(self):
                            a = next(self.it, None)
                            return None if a is None else {"x": a}

                    quantize_static(str(fp32), str(variants[2][1]), Reader(), quant_format=QuantFormat.QDQ,
                                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
    out = {}
    for name, path in variants:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        t0 = time.perf_counter()
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        out[name] = (lambda a, s=sess: s.run(None, {"x": a})[0], path.stat().st_size, (time.perf_counter() - t0) * 1e3)
    return out


def _runtime_fp32(model, tower: str, example: torch.Tensor, work: Path, have: set) -> dict:
    """Each installed runtime's fp32 artifact of `tower` that the folder lacks, converted into `work`,
    so every runtime's fp32 and int8 sit side by side: {platform: path}."""
    from converters import backends, platform_module

    out = {}
    for plat in ("executorch", "tflite"):
        if (plat, tower, "fp32") in have or plat not in backends() or backends()[plat].missing():
            continue
        mod = platform_module(plat)
        art = mod.convert(model, tower, example, mod.CONFIG(precision="fp32"), work / plat)
        out[plat] = Path(art.path)
    return out


# Calibration inputs of ONNX Runtime's static int8 peer (the artifacts' own calibration folder).
STATIC_CALIBRATION_N = 64


def bench_folder(folder: str | Path, threads=(1, 2), checkpoint=None, peers: bool = True, on_step=None,
                 model=None, weights=None, runtime_peers: bool = False, seconds: float = 1.0) -> dict:
    """Time every artifact of the export folder `folder` at each thread count. `peers`: eager
    PyTorch and ONNX Runtime (fp32, dynamic int8, static QDQ int8 calibrated on the export's
    calibration data) of the same towers. `runtime_peers`: also each installed runtime's fp32
    artifact the folder lacks (converted into a temp folder), so every runtime's fp32 and int8
    sit side by side. Each row: p50 / p90 / p95 / p99 latency (at least 50 runs and `seconds` of
    them), load time, achieved GFLOP/s against the machine's measured peak, resident-memory growth
    and peak."""
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
    cal = load_calibration(record.get("calibration") or DEFAULT_CALIBRATION, square_size(model),
                           STATIC_CALIBRATION_N if peers else 1)
    tok = model.tokenizer
    images = torch.from_numpy(np.ascontiguousarray(cal.images)).permute(0, 3, 1, 2).float().contiguous()
    ids = torch.from_numpy(np.ascontiguousarray(tok(cal.captions or ["a red circle"]), np.int32))
    inputs = {"image": images[:1], "text": ids[:1]}
    static_cal = {"image": [images[i:i + 1].numpy() for i in range(len(images))],
                  "text": [ids[i:i + 1].numpy() for i in range(len(ids))]}
    towers = {"image": model.image, "text": model.text}
    tower_flops = {t: flops(towers[t], inputs[t]) for t in towers}
    rows: list[dict] = []

    def add(name, kind, tower, precision, size, fn, x, n_threads, rss0, load_ms=None):
        t = time_fn(fn, x, min_seconds=seconds)
        gflops = tower_flops[tower] / (t["median_ms"] * 1e-3) / 1e9
        peak = _peak_rss_mb()
        rows.append({"name": name, "kind": kind, "tower": tower, "precision": precision, "bytes": size,
                     "threads": n_threads, **t, "gflops": gflops, "load_ms": load_ms,
                     "rss_growth_mb": max(0.0, _rss_mb() - rss0), "peak_rss_mb": peak,
                     # the most memory loading and running it took at once, above what the process held before
                     "peak_growth_mb": max(0.0, peak - rss0) if peak is not None else None})

    def load_and_time(label, kind, plat, tower, precision, f, n_threads):
        size = f.stat().st_size if f.is_file() else sum(p.stat().st_size for p in f.rglob("*") if p.is_file())
        _reset_peak_rss()
        rss0 = _rss_mb()
        mod = platform_module(plat)
        t0 = time.perf_counter()
        runner = mod.load(f, num_threads=n_threads) if plat == "tflite" else mod.load(f)
        load_ms = (time.perf_counter() - t0) * 1e3
        add(label, kind, tower, precision, size, runner, inputs[tower].numpy(), n_threads, rss0, load_ms)

    eager = {"reference": checkpoint}
    for name in ("teacher", "student"):  # the built-in family's own peers
        p = assets_dir() / f"{name}.safetensors"
        if model.family == "builtin" and p.is_file() and (checkpoint is None or p.resolve() != checkpoint.resolve()):
            eager[name] = p
    timed = [m for m in metas if m["platform"] != "coreml"]
    work_dir = tempfile.TemporaryDirectory(prefix="mobile-sdk-bench-")
    work = Path(work_dir.name)
    fp32_peers: dict[tuple[str, str], Path] = {}
    if runtime_peers:
        have = {(m["platform"], m["tower"], m["precision"]) for m in metas}
        for tower in towers:
            for plat, path in _runtime_fp32(model, tower, inputs[tower], work / "fp32", have).items():
                fp32_peers[(plat, tower)] = path
    tick = Steps(on_step, len(threads) * (len(timed) + len(fp32_peers)
                                          + (len(towers) * (len(eager) + 1) if peers else 0)))
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
            load_and_time(label, "artifact", m["platform"], m["tower"], m["precision"], f, n)
        for (plat, tower), path in fp32_peers.items():
            tick(f"{plat} {tower} fp32 (runtime peer), {n} thread(s)")
            load_and_time(f"{plat} {tower} fp32", "runtime peer", plat, tower, "fp32", path, n)
        if not peers:
            continue
        for name, path in eager.items():
            em, emeta = (model, meta) if path == checkpoint else load_checkpoint(path)
            for tower in towers:
                tick(f"eager {name} {tower}, {n} thread(s)")
                mod_t = em.tower(tower) if hasattr(em, "tower") else (em.visual if tower == "image" else em.text)
                _reset_peak_rss()
                rss0 = _rss_mb()
                nbytes = 4 * sum(p.numel() for p in mod_t.parameters())

                def run(a, mod_t=mod_t):
                    with torch.no_grad():
                        return mod_t(a)
                label = emeta.get("name") or (path.stem if path else model.name)
                add(f"eager PyTorch {name} ({label}) {tower}", "eager", tower, "fp32", nbytes,
                    run, inputs[tower], n, rss0)
        for tower in towers:
            tower_work = work / "onnx" / tower
            tower_work.mkdir(parents=True, exist_ok=True)
            tick(f"onnxruntime {tower}, {n} thread(s)")
            _reset_peak_rss()
            rss0 = _rss_mb()
            try:
                sessions = _onnx_sessions(towers[tower], inputs[tower], tower_work, n, static_cal[tower])
            except Exception as e:  # a peer failing must not hide the artifacts' figures
                rows.append({"name": f"onnxruntime {tower}", "kind": "peer", "tower": tower, "threads": n,
                             "skipped": f"{type(e).__name__}: {e}"})
                continue
            for name, (fn, size, load_ms) in sessions.items():
                add(f"{name} {tower}", "peer", tower, "int8" if "int8" in name else "fp32", size, fn,
                    inputs[tower].numpy(), n, rss0, load_ms)
    work_dir.cleanup()
    result = {"schema": 1, "folder": str(folder), "checkpoint": str(checkpoint or model.name),
              "machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                          "peak": {str(k): v for k, v in peaks.items()}},
              "flops": tower_flops, "rows": rows}
    for r in rows:
        if "gflops" in r:
            r["peak_share"] = peak_share(result, r)
            r["vs_onnxruntime"] = vs_onnxruntime(result, r)
    return result


def render_table(result: dict) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"batch-1 latency, {result['folder']}")
    header = ("name", "threads", "size", "p50 ms", "x ORT", "p95 ms", "p99 ms", "load ms", "GFLOP/s", "% of peak",
              "RSS growth MB", "peak growth MB")
    for h in header:
        table.add_column(h, justify="left" if h == "name" else "right")
    for r in sorted(result["rows"], key=lambda r: (r["threads"], r["tower"], r["kind"] != "artifact", r["name"])):
        if "skipped" in r:
            table.add_row(r["name"], str(r["threads"]), f"{r.get('bytes', 0) / 1e6:.2f} MB" if r.get("bytes") else "-",
                          "skipped", *[""] * (len(header) - 4))
            continue
        share = peak_share(result, r)
        opt = lambda v, f: format(v, f) if v is not None else "-"  # noqa: E731
        table.add_row(r["name"], str(r["threads"]), f"{r['bytes'] / 1e6:.2f} MB", f"{r['median_ms']:.3f}",
                      opt(vs_onnxruntime(result, r), ".2f"), opt(r.get("p95_ms"), ".3f"), opt(r.get("p99_ms"), ".3f"), opt(r.get("load_ms"), ".0f"),
                      f"{r['gflops']:.1f}", f"{100 * share:.1f}%" if share is not None else "-",
                      f"{r['rss_growth_mb']:.1f}", opt(r.get("peak_growth_mb"), ".1f"))
    buf = StringIO()
    Console(file=buf, width=160, color_system=None).print(table)
    peaks = ", ".join(f"{k} thread(s): fp32 {v['fp32_gflops']:.1f} GFLOP/s, int8 {v['int8_gops']:.1f} GOP/s "
                      f"({v.get('int8_kernel', '?')})" if v.get("int8_gops") else f"{k}: fp32 {v['fp32_gflops']:.1f}"
                      for k, v in result["machine"]["peak"].items())
    fl = ", ".join(f"{t} {v / 1e6:.1f} MFLOP" for t, v in result["flops"].items())
    return (buf.getvalue().rstrip() + f"\nCPU: {result['machine']['cpu']}\nmachine peak (1024^3 matmul, the fastest "
            f"kernel at hand): {peaks}\nFLOPs per inference: {fl}")


def vs_onnxruntime(result: dict, row: dict) -> float | None:
    """A row's p50 latency over the fastest ONNX Runtime row (fp32 or int8) of the same tower and
    thread count in the same run: below 1.0 is faster than ONNX Runtime's best."""
    best = [r["median_ms"] for r in result["rows"] if r.get("kind") == "peer" and "median_ms" in r
            and r["name"].startswith("onnxruntime") and r["tower"] == row["tower"] and r["threads"] == row["threads"]]
    return row["median_ms"] / min(best) if best and "median_ms" in row else None


def peak_share(result: dict, row: dict) -> float | None:
    """A row's achieved GFLOP/s as a share of the machine's peak at its thread count: int8 rows
    against the int8 matmul peak, the others against fp32."""
    peaks = result["machine"]["peak"].get(str(row["threads"])) or {}
    # int4w computes in int8 (4-bit weights unpacked to int8, int8 activations)
    peak = peaks.get("int8_gops") if row["precision"].startswith(("int8", "int4")) else peaks.get("fp32_gflops")
    return row["gflops"] / peak if peak else None


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
