"""Core ML palettization sweep: every nbits x granularity on one checkpoint, each measured
through the MIL interpreter by the parity checker, as a table.

    python benchmarks/coreml_palettization.py [--checkpoint PATH] [--out runs/coreml_sweep] [--n 100]
        [--configs pal6:per_tensor,pal4:per_grouped_channel:16,pal4:per_tensor:pcs,palmix:3.5,...] [--json FILE]

A config is PRECISION[:GRANULARITY[:GROUP_SIZE]][:pcs] (pcs: coremltools' per-channel scale) or
palmix[:MEAN_BITS].

Per configuration: both towers exported for Core ML (`mobile_sdk.exporter.export`; 8 of
calibration_data/ as the verification inputs, all 300 for `palmix`, which plans its bits on them),
then `mobile_sdk.parity.check_folder` on them: weight-file bytes per tower and both packages' bytes,
cosine mean / min vs eager PyTorch on the test split (interpreter with fp16 compute), zero-shot top-1
agreement with eager and the zero-shot mean accuracy of the Core ML pair. The default's rule picks
the smallest k-means configuration with cosine mean >= 0.99 (both towers) and zero-shot agreement
>= 0.98; the script prints it, and the smallest of all. Every configuration takes ~4 minutes on 2 cores for the shipped student.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_CONFIGS = ("fp16", "pal8:per_grouped_channel:16", "pal8:per_tensor", "pal6:per_grouped_channel:16",
                   "pal6:per_tensor", "palmix:3.5", "palmix:3.3", "pal4:per_grouped_channel:16", "pal4:per_tensor",
                   "pal2:per_grouped_channel:16", "pal2:per_tensor")
COSINE_BAR, AGREEMENT_BAR = 0.99, 0.98


def _config(spec: str):
    from converters.coreml import CoreMLConfig

    parts = spec.split(":")
    if parts[0] == "palmix":  # palmix[:MEAN_BITS]
        return CoreMLConfig("palmix", **({"mean_bits": float(parts[1])} if len(parts) > 1 else {}))
    kw = {"per_channel_scale": parts[-1] == "pcs"}
    parts = parts[:-1] if kw["per_channel_scale"] else parts
    if len(parts) > 1:
        kw["granularity"] = parts[1]
    if len(parts) > 2:
        kw["group_size"] = int(parts[2])
    return CoreMLConfig(parts[0], **kw)


def sweep(checkpoint: Path, out: Path, configs: list[str], n: int) -> list[dict]:
    import dataclasses
    import functools

    from converters import coreml
    from mobile_sdk.checkpoint import load_checkpoint
    from mobile_sdk.exporter import export, prepare_inputs
    from mobile_sdk.parity import ParityConfig, check_folder

    model, _ = load_checkpoint(checkpoint)
    inputs = prepare_inputs(model, n=8)  # verification inputs (8: the interpreter is slow)
    full = None  # palmix rounds its weights on the calibration data `mobile-sdk export` uses
    rows = []
    default_config = coreml.CONFIG
    for spec in configs:
        cfg = _config(spec)
        folder = out / spec.replace(":", "_")
        t0 = time.perf_counter()
        if cfg.precision == "palmix" and full is None:
            full = prepare_inputs(model)
        fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "precision"}
        coreml.CONFIG = functools.partial(coreml.CoreMLConfig, **fields)  # what export builds per precision
        try:
            arts = export(model, folder, targets=("coreml",), precisions={"coreml": [cfg.precision]},
                          inputs=full if cfg.precision == "palmix" else inputs, checkpoint=checkpoint)
        finally:
            coreml.CONFIG = default_config
        arts = {a.tower: a for a in arts}
        weights = {t: a.extra["weights_bytes"] for t, a in arts.items()}
        package = sum(a.extra["bytes"] for a in arts.values())
        seconds = time.perf_counter() - t0
        report = check_folder(folder, checkpoint, ParityConfig(n_test=n, localize="never"))
        arts = {a["tower"]: a for a in report["artifacts"]}
        tasks = arts["image"]["tasks"]
        acc = tasks["accuracy"]
        zs = [v for k, v in acc.items() if k.startswith("zeroshot_")]
        rows.append({
            "config": spec,
            "bytes": weights,
            "package_bytes": package,
            "cosine_mean": {t: a["test"]["cosine_mean"] for t, a in arts.items()},
            "cosine_min": {t: a["test"]["cosine_min"] for t, a in arts.items()},
            "agreement": tasks["agreement"]["zeroshot"],
            "zeroshot_mean": sum(zs) / len(zs),
            "convert_s": round(seconds, 1),
        })
        print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict) -> str:
    b, c, m = r["bytes"], r["cosine_mean"], r["cosine_min"]
    return (f"{r['config']:<28} {b['image'] / 1e6:6.3f} {c['image']:.5f}/{m['image']:.5f}  {b['text'] / 1e6:6.3f} "
            f"{c['text']:.5f}/{m['text']:.5f}  {r['agreement']:.3f}  {100 * r['zeroshot_mean']:5.1f}  {r['convert_s']:5.0f}"
            f"  {r.get('package_bytes', 0) / 1e6:6.3f}")


def choose(rows: list[dict], kmeans_only: bool = True) -> dict | None:
    """The smallest row within the bars; `kmeans_only`: among coremltools' k-means configurations,
    the default's candidates (palmix is opt-in: it costs about a minute per tower to plan)."""
    ok = [r for r in rows if min(r["cosine_mean"].values()) >= COSINE_BAR and r["agreement"] >= AGREEMENT_BAR
          and not (kmeans_only and r["config"].startswith("palmix"))]
    return min(ok, key=lambda r: sum(r["bytes"].values())) if ok else None


def main(argv=None) -> int:
    from mobile_sdk.checkpoint import default_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("runs/coreml_sweep"))
    ap.add_argument("--n", type=int, default=100, help="test samples per task")
    ap.add_argument("--configs", default=",".join(DEFAULT_CONFIGS))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    checkpoint = args.checkpoint or default_checkpoint()
    print(f"checkpoint {checkpoint}; test split, {args.n} per task; interpreter with fp16 compute")
    print(f"{'config':<28} {'img MB':>6} {'img cos mean/min':<17}  {'txt MB':>6} {'txt cos mean/min':<17}  agree  zs%    conv s  pkgs MB")
    rows = sweep(checkpoint, args.out, args.configs.split(","), args.n)
    best, smallest = choose(rows), choose(rows, kmeans_only=False)
    print(f"smallest k-means configuration with cosine mean >= {COSINE_BAR} and agreement >= {AGREEMENT_BAR} "
          f"(the default's rule): {best['config'] if best else 'none'}; smallest of all: "
          f"{smallest['config'] if smallest else 'none'}")
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": str(checkpoint), "n": args.n, "rows": rows,
                                         "chosen": best and best["config"]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
