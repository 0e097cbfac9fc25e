"""Conversion time and peak memory per platform for real-size architectures (published configs,
seeded weights: no weights can be downloaded here), each platform in its own process.

    .venv/bin/python benchmarks/adapters.py [--models ViT-B-32 MobileCLIP2-S0] [--platforms ...]
        [--precision default|fp32] [--precisions P ...] [--bench] [--calibration-n 300]
        [--out artifacts/bench-adapters]

For each model x platform: `mobile-sdk export`'s conversion step (both towers, the platform's
default precisions, or fp32) on the committed calibration images resized to the model's input,
including the check of every artifact against eager. Prints wall seconds, the child's peak RSS,
artifact sizes and each artifact's cosine against eager; a failure is printed with its error, not
hidden. Goal (the adapter contract's acceptance): each platform under 10 minutes and 12 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _one(model: str, platform: str, out: Path, precision: str, n: int, precisions: list[str] | None = None,
         bench: bool = False) -> None:
    """Child process: seeded weights -> adapter -> export one platform; results to out/result.json.
    `bench`: then time every artifact at 1 and 2 threads beside ONNX Runtime (bench_folder), the
    table to out/bench.txt; ExecuTorch's debug twins are not written (localization is not timed)."""
    import torch
    from safetensors.torch import save_file

    from mobile_sdk.exporter import export, prepare_inputs
    from mobile_sdk.manifest import _bytes
    from mobile_sdk.models._open_clip import import_open_clip
    from mobile_sdk.models.sources import load_adapter

    open_clip = import_open_clip()
    out.mkdir(parents=True, exist_ok=True)
    weights = out.parent / f"{model}.safetensors"
    if not weights.is_file():
        torch.manual_seed(0)
        m = open_clip.create_model(model, pretrained=None)
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(weights))
        del m
    adapter = load_adapter(f"open_clip:{model}", weights)
    inputs = prepare_inputs(adapter, n=n)
    if precisions:
        precisions = {platform: list(precisions)}
    elif precision == "fp32":
        precisions = {platform: ["fp32"]}
    if bench and platform == "executorch":
        import functools

        import converters.executorch as et
        et.CONFIG = functools.partial(et.ExecuTorchConfig, debug_twin=False)
    t0 = time.perf_counter()
    arts = export(adapter, out, [platform], precisions, inputs=inputs)
    rows = [{"tower": a.tower, "precision": a.precision, "mb": round(_bytes(Path(a.path)) / 1e6, 2),
             "cosine_min": a.extra.get("eager_check", {}).get("cosine_min"), "convert_s": a.extra.get("convert_s")}
            for a in arts]
    (out / "result.json").write_text(json.dumps({"seconds": time.perf_counter() - t0, "artifacts": rows}))
    if bench:
        from mobile_sdk.bench import bench_folder, render_table

        result = bench_folder(out, threads=(1, 2), model=adapter, seconds=0.5)
        (out / "bench.json").write_text(json.dumps(result, indent=1))
        (out / "bench.txt").write_text(render_table(result) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["ViT-B-32", "MobileCLIP2-S0"])
    ap.add_argument("--platforms", nargs="+", default=["executorch", "tflite", "coreml"])
    ap.add_argument("--precision", choices=["default", "fp32"], default="default")
    ap.add_argument("--precisions", nargs="+", help="these precisions instead (e.g. fp32 int8_dynamic)")
    ap.add_argument("--bench", action="store_true", help="then time every artifact at 1 and 2 threads beside "
                    "ONNX Runtime (fp32, dynamic and static int8): OUT/MODEL/PLATFORM/bench.txt")
    ap.add_argument("--calibration-n", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bench-adapters")
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "PLATFORM"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        _one(args.one[0], args.one[1], args.out, args.precision, args.calibration_n, args.precisions, args.bench)
        return
    print(f"cpu: {os.cpu_count()} cores; precision {args.precision}; calibration {args.calibration_n} samples")
    print(f"{'model':16s} {'platform':11s} {'wall s':>7s} {'peak GB':>8s}  artifacts (tower precision MB cosine)")
    for model in args.models:
        for plat in args.platforms:
            out = args.out / model / plat
            cmd = [sys.executable, __file__, "--one", model, plat, "--out", str(out), "--precision", args.precision,
                   "--calibration-n", str(args.calibration_n)] + (["--precisions", *args.precisions]
                                                                  if args.precisions else []) + \
                (["--bench"] if args.bench else [])
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            log_text = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            peak_gb = usage.ru_maxrss / 1024 ** 2  # ru_maxrss is in KiB on Linux
            result = out / "result.json"
            if status != 0 or not result.is_file():
                tail = " | ".join(log_text.strip().splitlines()[-3:])
                print(f"{model:16s} {plat:11s} {wall:7.0f} {peak_gb:8.2f}  FAILED: {tail[:400]}")
                continue
            r = json.loads(result.read_text())
            arts = "; ".join(f"{a['tower']} {a['precision']} {a['mb']} MB cos {a['cosine_min']:.5f}"
                             if a["cosine_min"] is not None else f"{a['tower']} {a['precision']} {a['mb']} MB"
                             for a in r["artifacts"])
            print(f"{model:16s} {plat:11s} {wall:7.0f} {peak_gb:8.2f}  {arts}", flush=True)
            if (out / "bench.txt").is_file():
                print((out / "bench.txt").read_text(), flush=True)


if __name__ == "__main__":
    main()
