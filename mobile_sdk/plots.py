"""Figures for the docs: the training curve of a run and a per-task bar chart of an evaluation.

matplotlib is imported lazily with the non-interactive Agg backend, so plotting works headless.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import DataError


def read_train_log(path: str | Path) -> list[dict]:
    """Records of a `train_log.jsonl` (one JSON object per line)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"training log {path} not found; it is written as train_log.jsonl by `mobile-sdk train`")
    records = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{i} is not JSON ({e}); is this a train_log.jsonl?") from None
        if "step" in rec:
            records.append(rec)
    if not any("loss" in r for r in records):
        raise DataError(f"{path} has no training records with a loss")
    return records


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training(log_path: str | Path, out: str | Path, title: str = "training") -> Path:
    """Loss (left axis) and validation zero-shot / retrieval means (right axis) against step."""
    recs = read_train_log(log_path)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    steps = [r["step"] for r in recs if "loss" in r]
    ax.plot(steps, [r["loss"] for r in recs if "loss" in r], color="tab:gray", lw=1, label="train loss")
    terms = sorted({k for r in recs for k in r.get("terms", {})})  # a distillation log: each weighted term
    for term in terms:
        pts = [(r["step"], r["terms"][term]) for r in recs if term in r.get("terms", {})]
        ax.plot(*zip(*pts), lw=0.8, label=term)
    ax.set_xlabel("step")
    ax.set_ylabel("distillation loss and its terms" if terms else "loss (InfoNCE + hard negatives)")
    evals = [r for r in recs if "val" in r]
    if evals:
        ax2 = ax.twinx()
        for key, color in (("zeroshot_mean", "tab:blue"), ("retrieval_mean", "tab:orange")):
            ax2.plot([r["step"] for r in evals], [100 * r["val"][key] for r in evals], "o-", color=color,
                     label=f"val {key.replace('_', ' ')}")
        ax2.set_ylabel("validation accuracy (%)")
        ax2.set_ylim(0, 100)
        lines = ax.get_lines() + ax2.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], loc="center right", fontsize=8)
    elif terms:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, out, plt)


def plot_tasks(result: dict, out: str | Path, title: str | None = None) -> Path:
    """Per-task accuracy bars with each task's chance level, from `mobile-sdk eval --json`."""
    try:
        tasks, chance = result["tasks"], result["chance"]
    except (KeyError, TypeError):
        raise DataError("evaluation JSON lacks 'tasks'/'chance'; write it with `mobile-sdk eval --json FILE`") from None
    plt = _pyplot()
    names = list(tasks)
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=110)
    xs = range(len(names))
    bars = ax.bar(xs, [100 * tasks[n] for n in names], color="tab:blue", label="accuracy")
    ax.scatter(xs, [100 * chance[n] for n in names], marker="_", s=400, color="tab:red", zorder=3, label="chance")
    for b, n in zip(bars, names):
        ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 1, f"{100 * tasks[n]:.1f}", ha="center", fontsize=8)
    ax.set_xticks(list(xs), [n.replace("zeroshot_", "zs ").replace("retrieval_", "R@1 ") for n in names],
                  rotation=20, fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel(f"accuracy (%), {result.get('split', '?')} split, n={result.get('n', '?')}")
    ax.set_title(title or f"{result.get('model', 'model')}: per-task accuracy")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return _save(fig, out, plt)


def _save(fig, out, plt) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(out)
    return out
