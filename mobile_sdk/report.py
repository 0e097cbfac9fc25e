"""Evaluation results of a checkpoint, as a dict (the `eval --json` schema) and as a table."""

from __future__ import annotations

import time
from pathlib import Path

from .data.tasks import CHANCE, RETRIEVAL_TASKS, TASKS, summarize


def evaluate_checkpoint(path: str | Path, n: int = 500, split: str = "test", device: str = "cpu") -> dict:
    """-> {"checkpoint", "model", "params", "fp32_bytes", "split", "n", "tasks": {task: acc}, "summary", ...}."""
    from .checkpoint import load_checkpoint

    model, meta = load_checkpoint(path)
    return evaluate_loaded(model, meta, path, n=n, split=split, device=device)


def evaluate_loaded(model, meta: dict, path: str | Path, n: int = 500, split: str = "test", device: str = "cpu") -> dict:
    """`evaluate_checkpoint` for a model already loaded from `path` (with its metadata)."""
    from .evaluate import evaluate_model
    from .models import count_parameters
    from .train import resolve_device

    dev = resolve_device(device)
    model.to(dev)
    t0 = time.time()
    tasks = evaluate_model(model, n=n, split=split, device=dev)
    params = count_parameters(model)
    return {
        "checkpoint": str(path), "model": meta.get("name") or "custom", "params": params,
        "params_image": count_parameters(model.visual), "params_text": count_parameters(model.text),
        "fp32_bytes": 4 * params, "split": split, "n": n, "tasks": tasks, "summary": summarize(tasks),
        "chance": {t: CHANCE[t] for t in TASKS}, "eval_seconds": round(time.time() - t0, 1),
    }


def render_table(result: dict) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    title = (f"{result['model']}: {result['params'] / 1e6:.2f}M params "
             f"(image {result['params_image'] / 1e6:.2f}M, text {result['params_text'] / 1e6:.2f}M), "
             f"fp32 {result['fp32_bytes'] / 2**20:.1f} MiB; {result['split']} split, n={result['n']} per task")
    table = Table()
    table.add_column("task")
    table.add_column("accuracy", justify="right")
    table.add_column("chance", justify="right")
    for task, acc in result["tasks"].items():
        label = f"{task} (recall@1)" if task in RETRIEVAL_TASKS else task
        table.add_row(label, f"{100 * acc:.1f}%", f"{100 * result['chance'][task]:.1f}%")
    for key, val in result["summary"].items():
        table.add_row(f"[bold]{key}", f"[bold]{100 * val:.1f}%", "")
    buf = StringIO()
    Console(file=buf, width=110, force_terminal=False, color_system=None).print(table)
    return title + "\n" + buf.getvalue().rstrip()
