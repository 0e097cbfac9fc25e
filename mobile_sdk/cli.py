"""The `mobile-sdk` command line: a thin layer over the library.

Library errors (SdkError) become a one-line message and exit code 2; `-v`/`-vv` show more logs.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path

import click

from . import _logging
from .errors import SdkError

log = logging.getLogger("mobile_sdk")


def _friendly(fn):
    """Map SdkError to `error: ...` on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SdkError as e:
            if log.isEnabledFor(logging.DEBUG):
                log.exception("details")
            click.echo(f"error: {e}", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logs: -v info, -vv debug.")
def main(verbose: int) -> None:
    """Compress a CLIP-style model and ship it to phones, with proven parity."""
    _logging.configure(verbose)


@main.command("models")
def models_cmd() -> None:
    """List the registered model sizes."""
    from .models import count_parameters, create_model, list_models

    for name in list_models():
        click.echo(f"{name:10s} {count_parameters(create_model(name)) / 1e6:6.2f}M params")


@main.command("data")
@click.option("--split", type=click.Choice(["train", "val", "test", "calibration"]), default="calibration",
              show_default=True)
@click.option("--n", "n", type=click.IntRange(min=1), default=256, show_default=True, help="Samples to write.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--image-size", type=click.IntRange(min=8), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="World seed.")
@_friendly
def data_cmd(split, n, out, image_size, seed) -> None:
    """Write samples of a split as PNG files + captions.jsonl + SHA256SUMS."""
    from .data.calibration import write_split

    write_split(out, split, n, image_size, seed)
    click.echo(f"wrote {n} {split} samples to {out}")


@main.command("train")
@click.option("--model", default="teacher", show_default=True, help="Registered model name (see `mobile-sdk models`).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for model.safetensors, train_state.pt and train_log.jsonl.")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=128, show_default=True, help="Per process.")
@click.option("--lr", type=float, default=5e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True, help="Data-loader processes.")
@click.option("--eval-every", type=click.IntRange(min=0), default=500, show_default=True)
@click.option("--save-every", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--hard-negatives/--no-hard-negatives", default=True, show_default=True)
@click.option("--train-samples", type=click.IntRange(min=0), default=0, show_default=True,
              help="0: endless stream of new samples; N: cycle over the first N.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--resume", is_flag=True, help="Continue from OUT/train_state.pt.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@_friendly
def train_cmd(model, out, steps, batch_size, lr, seed, workers, eval_every, save_every, hard_negatives, train_samples,
              device, resume, no_progress) -> None:
    """Train a registered model on the procedural world (works under torchrun)."""
    from .train import TrainConfig, train

    cfg = TrainConfig(model=model, steps=steps, batch_size=batch_size, lr=lr, seed=seed, workers=workers,
                      eval_every=eval_every, save_every=save_every, hard_negatives=hard_negatives, device=device,
                      train_samples=train_samples)
    path = train(cfg, out, resume=resume, progress=not no_progress)
    click.echo(f"checkpoint: {path}")


@main.command("eval")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A .safetensors checkpoint (default: the shipped model).")
@click.option("--n", "n", type=click.IntRange(min=1), default=500, show_default=True, help="Samples per task.")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results as JSON.")
@click.option("--device", default="cpu", show_default=True)
@_friendly
def eval_cmd(checkpoint, n, split, json_path, device) -> None:
    """Evaluate a checkpoint on every task and print a table."""
    from .checkpoint import default_checkpoint
    from .report import evaluate_checkpoint, render_table

    checkpoint = checkpoint or default_checkpoint()
    result = evaluate_checkpoint(checkpoint, n=n, split=split, device=device)
    click.echo(render_table(result))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        click.echo(f"wrote {json_path}")


if __name__ == "__main__":
    main()
