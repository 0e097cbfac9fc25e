"""Evaluation results of a model on an evaluation suite, as a dict (the `eval --json` schema) and
as a table."""

from __future__ import annotations

import time
from pathlib import Path

from .data.tasks import RETRIEVAL_TASKS, summarize


def evaluate_checkpoint(path: str | Path, n: int | None = 500, split: str = "test", device: str = "cpu",
                        suite=None, weights: str | Path | None = None) -> dict:
    """-> {"checkpoint", "model", "params", "fp32_bytes", "suite", "split", "n", "tasks": {task: acc},
    "summary", "chance", ...}. `path`: a built-in checkpoint or any model source (`open_clip:...`
    with `weights`, `hf:DIR`, ...); `suite`: an evaluation suite or `--eval-data` value (default:
    the world's `split`)."""
    from .models.sources import load_adapter

    if weights is None and str(path).endswith(".safetensors") and ":" not in str(path):
        from .checkpoint import load_checkpoint

        model, meta = load_checkpoint(path)
        return evaluate_loaded(model, meta, path, n=n, split=split, device=device, suite=suite)
    adapter = load_adapter(str(path), weights)
    return evaluate_loaded(adapter, {"name": adapter.name}, adapter.weights or path, n=n, split=split, device=device,
                           suite=suite)


def _count(module) -> int:
    """Parameters of a tower (not the export-time end-of-text lookup table of `EotReadout`)."""
    from .models.adapter import EotReadout

    if module is None:
        return 0
    skip = {id(p) for m in module.modules() if isinstance(m, EotReadout) for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if id(p) not in skip)


def evaluate_loaded(model, meta: dict, path: str | Path, n: int | None = 500, split: str = "test", device: str = "cpu",
                    suite=None) -> dict:
    """`evaluate_checkpoint` for a model already loaded (a built-in CLIP with its metadata, or an
    adapter)."""
    from .data.suites import WorldSuite, load_suite
    from .evaluate import evaluate_model
    from .models.adapter import as_adapter
    from .train import resolve_device

    suite = WorldSuite(split) if suite is None else load_suite(suite)
    if suite.kind != "world":
        split = suite.name
    dev = resolve_device(device)
    adapter = as_adapter(model)
    for tower in (adapter.image, adapter.text):
        if tower is not None:
            tower.to(dev)
    t0 = time.time()
    sets = suite.sets(adapter.image_size[0], n)
    tasks = evaluate_model(adapter, device=dev, sets=sets)
    p_img, p_txt = _count(adapter.image), _count(adapter.text)
    total = p_img + p_txt
    if hasattr(model, "cfg"):  # a built-in CLIP: its own count (the logit scale included)
        from .models import count_parameters
        total = count_parameters(model)
    return {
        "checkpoint": str(path), "model": meta.get("name") or adapter.name, "params": total,
        "params_image": p_img, "params_text": p_txt, "fp32_bytes": 4 * total,
        "suite": suite.describe(), "split": split, "n": n, "tasks": tasks, "summary": summarize(tasks),
        "chance": suite.chance(sets), "eval_seconds": round(time.time() - t0, 1),
    }


def render_table(result: dict) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    per = "per task" if result.get("suite", {}).get("kind", "world") == "world" else "at most, per class or line"
    n = f"n={result['n']} {per}" if result["n"] else "all samples"
    title = (f"{result['model']}: {result['params'] / 1e6:.2f}M params "
             f"(image {result['params_image'] / 1e6:.2f}M, text {result['params_text'] / 1e6:.2f}M), "
             f"fp32 {result['fp32_bytes'] / 2**20:.1f} MiB; {result['split']}, {n}")
    table = Table()
    table.add_column("task")
    table.add_column("accuracy", justify="right")
    table.add_column("chance", justify="right")
    for task, acc in result["tasks"].items():
        label = f"{task} (recall@1)" if task in RETRIEVAL_TASKS else task.replace("@", " (recall@") + (
            ")" if "@" in task else "")
        chance = result["chance"].get(task)
        table.add_row(label, f"{100 * acc:.1f}%", "" if chance is None else f"{100 * chance:.1f}%")
    for key, val in result["summary"].items():
        table.add_row(f"[bold]{key}", f"[bold]{100 * val:.1f}%", "")
    buf = StringIO()
    Console(file=buf, width=110, force_terminal=False, color_system=None).print(table)
    return title + "\n" + buf.getvalue().rstrip()
