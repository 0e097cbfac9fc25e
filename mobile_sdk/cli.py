"""The `mobile-sdk` command line: a thin layer over the library.

Library errors (SdkError) become a one-line message and exit code 2; `-v`/`-vv` show more logs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
from pathlib import Path

import click

from . import __version__, _logging
from .errors import SdkError

log = logging.getLogger("mobile_sdk")


def _friendly(fn):
    """Map SdkError to `error: ...` on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ._signals import Terminated, stoppable

        try:
            with stoppable():  # SIGTERM unwinds like Ctrl-C: every cleanup runs
                return fn(*args, **kwargs)
        except KeyboardInterrupt as e:
            click.echo(f"\n{'terminated' if isinstance(e, Terminated) else 'interrupted'}: nothing was changed "
                       f"(an export's output folder is replaced only when every step has succeeded)", err=True)
            sys.exit(143 if isinstance(e, Terminated) else 130)
        except SdkError as e:
            if log.isEnabledFor(logging.DEBUG):
                log.exception("details")
            click.echo(f"error: {e}", err=True)
            _native_log_hint()
            sys.exit(2)
        except Exception:
            _native_log_hint()
            raise

    return wrapper


def _native_log_hint() -> None:
    from . import _console

    if _console.STATE.native_log is not None and _console.STATE.native_log.is_file() \
            and _console.STATE.native_log.stat().st_size:
        click.echo(f"(the backends' own output of this run: {_console.STATE.native_log})", err=True)


def _model_options(default: str):
    """--model SOURCE and --weights FILE, shared by export, parity and bench."""
    def deco(fn):
        fn = click.option("--weights", type=click.Path(exists=True, path_type=Path), default=None,
                          help="Weights of --model: an open_clip state dict (.safetensors, or a torch file read "
                               "with weights_only=True), or a built-in checkpoint.")(fn)
        return click.option("--model", "model_spec", default=None, metavar="SOURCE",
                            help=f"The model: a shipped name (student, teacher, vit-bpe-world), open_clip:ARCH, hf:DIR or "
                                 f"module:function [default: {default}].")(fn)
    return deco


class _Group(click.Group):
    """Accepts the global options (-v, -q, --log-file) after the subcommand too: they are moved in
    front of it before parsing, as users of git or pip expect."""

    def parse_args(self, ctx, args):
        front, rest, i = [], [], 0
        while i < len(args):
            a = args[i]
            if a == "--":
                rest.extend(args[i:])
                break
            if a in ("-q", "--quiet", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) \
                    or a.startswith("--log-file="):
                front.append(a)
            elif a == "--log-file" and i + 1 < len(args):
                front.extend(args[i:i + 2])
                i += 1
            else:
                rest.append(a)
            i += 1
        return super().parse_args(ctx, front + rest)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mobile-sdk",
                      message="%(prog)s %(version)s (Python " + sys.version.split()[0] + ")")
@click.option("-v", "--verbose", count=True, help="More output: -v info, -vv debug and the backends' own output. "
                                                  "Accepted before or after the subcommand.")
@click.option("-q", "--quiet", is_flag=True, help="Errors only: no progress, no warnings.")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Append every log record and the backends' own output to this file.")
def main(verbose: int, quiet: bool, log_file) -> None:
    """Compress a CLIP-style model and ship it to phones, with proven parity."""
    _logging.configure(-1 if quiet else verbose, log_file)


@contextlib.contextmanager
def _work():
    """The context of a long command: the backends muted (see _console.py), and a progress display
    (yielded) whose `stage(name)` gives the library its `on_step` callback."""
    from . import _console

    with _console.quiet_backends(), _console.Progress(_console.STATE.verbosity) as progress:
        yield progress


@main.command("models")
def models_cmd() -> None:
    """List the built-in model sizes and the sources of users' models."""
    from .models import count_parameters, create_model, list_models

    from .models.sources import list_sources

    for name in list_models():
        click.echo(f"{name:10s} {count_parameters(create_model(name)) / 1e6:6.2f}M params")
    from .models.sources import SHIPPED_OPEN_CLIP
    for name in SHIPPED_OPEN_CLIP:
        click.echo(f"{name:10s} open_clip architecture trained on the built-in world (--model {name})")
    click.echo("\nyour own model (--model SOURCE):")
    for prefix, help_text in list_sources().items():
        click.echo(f"  {prefix}:...  {help_text}")
    click.echo("  module:function  a function returning a mobile_sdk.models.DualEncoder")


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
@click.option("--model", default="teacher", show_default=True,
              help="Registered model name (see `mobile-sdk models`), or open_clip:CONFIG.json / open_clip:ARCH to "
                   "train that open_clip architecture from scratch (its checkpoint is an open_clip state dict).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for model.safetensors, train_state.pt and train_log.jsonl.")
@click.option("--image-size", type=click.IntRange(min=8), default=64, show_default=True,
              help="Rendered image size (an open_clip architecture's own input size).")
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=128, show_default=True, help="Per process.")
@click.option("--lr", type=float, default=5e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True, help="Data-loader processes.")
@click.option("--eval-every", type=click.IntRange(min=0), default=500, show_default=True)
@click.option("--save-every", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--hard-negatives", type=click.IntRange(min=0), default=3, show_default=True,
              help="Hard-negative captions per image (one fact changed); 0 for plain CLIP loss.")
@click.option("--pairs", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Probability that two batch slots hold a scene and its one-fact-changed twin.")
@click.option("--caption-focus", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Share of training captions without colour, keeping shape and position/relation.")
@click.option("--positives", type=click.Choice(["pair", "truth"]), default="pair", show_default=True,
              help="pair: plain InfoNCE (a caption's only positive is its own image); truth: every caption "
                   "in the batch that is true of an image counts as its positive (multi-positive InfoNCE).")
@click.option("--train-samples", type=click.IntRange(min=0), default=0, show_default=True,
              help="0: endless stream of new samples; N: cycle over the first N.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--init", "init", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start from this checkpoint's weights and architecture (fresh optimizer and schedule).")
@click.option("--teacher", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Distill from this checkpoint (default loss weights; see `compress` for all of them).")
@click.option("--resume", is_flag=True, help="Continue from OUT/train_state.pt.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@_friendly
def train_cmd(model, out, image_size, steps, batch_size, lr, seed, workers, eval_every, save_every, hard_negatives, pairs,
              caption_focus, positives, train_samples, device, init, teacher, resume, no_progress) -> None:
    """Train a registered model or an open_clip architecture on the procedural world (works under torchrun)."""
    from .train import TrainConfig, train

    cfg = TrainConfig(model=model, image_size=image_size, steps=steps, batch_size=batch_size, lr=lr, seed=seed, workers=workers,
                      eval_every=eval_every, save_every=save_every, hard_negatives=hard_negatives, pairs=pairs, device=device,
                      caption_focus=caption_focus, positives=positives,
                      train_samples=train_samples, init=str(init or ""), teacher=str(teacher or ""))
    path = train(cfg, out, resume=resume, progress=not no_progress)
    click.echo(f"checkpoint: {path}")


def _eval_data_options(fn):
    """--eval-data PATH and --prompts FILE, shared by eval, export and parity."""
    fn = click.option("--prompts", type=click.Path(dir_okay=False, path_type=Path), default=None,
                      help='Prompt templates for an image-folder suite and for --label-bank, one per line with {} for the class '
                           '[default: "a photo of a {}."].')(fn)
    return click.option("--eval-data", "eval_data", default=None, metavar="PATH",
                        help="The evaluation suite: `world` (the built-in world's test split), a folder with one "
                             "sub-folder of images per class (zero-shot top-1), or a .jsonl file of "
                             '{"image": PATH, "caption": TEXT} lines (recall@1/@5) [default: world].')(fn)


@main.command("eval")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A built-in .safetensors checkpoint (default: the shipped model).")
@_model_options("the shipped student")
@_eval_data_options
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Samples per task of the world [default: 500]; for a folder, at most N images per class; for "
                   "a caption file, its first N lines [default: all].")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="The world's split (with --eval-data world).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results as JSON.")
@click.option("--device", default="cpu", show_default=True)
@_friendly
def eval_cmd(checkpoint, model_spec, weights, eval_data, prompts, n, split, json_path, device) -> None:
    """Evaluate a model on an evaluation suite and print a table."""
    from .checkpoint import default_checkpoint
    from .data.suites import WorldSuite, load_suite
    from .report import evaluate_checkpoint, render_table

    source = _model_source(checkpoint, model_spec, weights) or default_checkpoint()
    if split != "test" and eval_data not in (None, "world"):
        from .errors import ConfigError
        raise ConfigError("--split chooses a split of the built-in world; it does not apply to --eval-data "
                          f"{eval_data}")
    suite = WorldSuite(split) if eval_data in (None, "world") and prompts is None else load_suite(eval_data, prompts)
    if n is None and suite.kind == "world":
        n = 500
    with _work():
        result = evaluate_checkpoint(source, n=n, split=split, device=device, suite=suite, weights=weights)
    click.echo(render_table(result))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        click.echo(f"wrote {json_path}")


@main.command("compress")
@click.option("--teacher", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Teacher checkpoint (default: the shipped teacher).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Working folder: distilled/, pruned_init.safetensors, pruned/, student.safetensors, report.json.")
@click.option("--student", default="student", show_default=True, help="Registered architecture to distill into.")
@click.option("--distill-steps", type=click.IntRange(min=1), default=1500, show_default=True)
@click.option("--finetune-steps", type=click.IntRange(min=0), default=500, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=128, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Distillation peak learning rate.")
@click.option("--finetune-lr", type=float, default=3e-4, show_default=True)
@click.option("--prune-heads", type=float, default=0.5, show_default=True, help="Fraction of heads removed per block.")
@click.option("--prune-mlp", type=float, default=0.625, show_default=True, help="Fraction of MLP channels removed per block.")
@click.option("--drop-vision-layers", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--drop-text-layers", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--magnitude-sparsity", type=float, default=0.0, show_default=True,
              help="Also zero this fraction of block weights (unstructured; does not shrink dense artifacts).")
@click.option("--kd-weight", type=float, default=1.0, show_default=True)
@click.option("--affinity-weight", type=float, default=1.0, show_default=True)
@click.option("--feature-weight", type=float, default=1.0, show_default=True)
@click.option("--clip-weight", type=float, default=1.0, show_default=True)
@click.option("--temperature", type=float, default=2.0, show_default=True)
@click.option("--positives", type=click.Choice(["pair", "truth"]), default="truth", show_default=True,
              help="Positives of the ground-truth clip term (see `train --positives`).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--eval-n", type=click.IntRange(min=1), default=500, show_default=True, help="Test samples per task.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--no-progress", is_flag=True)
@_friendly
def compress_cmd(teacher, out, student, distill_steps, finetune_steps, batch_size, lr, finetune_lr, prune_heads,
                 prune_mlp, drop_vision_layers, drop_text_layers, magnitude_sparsity, kd_weight, affinity_weight,
                 feature_weight, clip_weight, temperature, positives, seed, workers, eval_n, device,
                 no_progress) -> None:
    """Distill the teacher into a student, prune it structurally, fine-tune, and report."""
    from .checkpoint import shipped_checkpoint
    from .compress import DistillConfig, PruneConfig
    from .compress.pipeline import CompressConfig, compress

    cfg = CompressConfig(
        student=student, distill_steps=distill_steps, finetune_steps=finetune_steps, batch_size=batch_size, lr=lr,
        finetune_lr=finetune_lr, seed=seed, workers=workers, eval_n=eval_n, device=device, positives=positives,
        magnitude_sparsity=magnitude_sparsity,
        distill=DistillConfig(clip_weight=clip_weight, kd_weight=kd_weight, affinity_weight=affinity_weight,
                              feature_weight=feature_weight, temperature=temperature),
        prune=PruneConfig(heads=prune_heads, mlp=prune_mlp, vision_layers=drop_vision_layers,
                          text_layers=drop_text_layers))
    path, report = compress(teacher or shipped_checkpoint("teacher"), out, cfg, progress=not no_progress)
    click.echo(report["table"])
    click.echo(f"student: {path}\nreport: {out / 'report.json'}")


@main.command("export")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A .safetensors checkpoint (default: the shipped model).")
@_model_options("the shipped student")
@click.option("--target", "targets", multiple=True, default=("all",), show_default=True,
              type=click.Choice(["all", "executorch", "tflite", "coreml"]),
              help="Platform(s); repeat the option for several.")
@click.option("--precision", "precisions", multiple=True,
              help="Precision(s) instead of each platform's default, e.g. fp32, int8, int8_dynamic "
                   "(ExecuTorch), int8_cpu (TFLite), pal4 (Core ML); repeat for several. With several "
                   "targets, write PLATFORM:PRECISION.")
@click.option("--tower", type=click.Choice(["both", "image", "text"]), default="both", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder; artifacts go to OUT/PLATFORM/TOWER_PRECISION.EXT.")
@click.option("--calibration", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of calibration images (+ captions.jsonl) [default: calibration_data].")
@click.option("--n", "n_test", type=click.IntRange(min=1), default=100, show_default=True,
              help="Samples per task of the world for the parity check; for --eval-data FOLDER or FILE, at most N images per class or N caption lines.")
@click.option("--no-parity", is_flag=True, help="Skip the parity check (the manifest then has no parity figures).")
@click.option("--localize", type=click.Choice(["always", "on_failure", "never"]), default="always", show_default=True,
              help="When parity compares layer by layer (per-layer SQNR curves, first divergent layer).")
@click.option("--no-bench", is_flag=True, help="Skip the benchmarks.")
@click.option("--strict", is_flag=True, help="Exit with code 1 when an artifact fails parity.")
@click.option("--label-bank", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A file of class names, one per line: ship their prompts' text embeddings (label_bank.json) so "
                   "an app classifies with the image tower alone; templates from --prompts.")
@click.option("--budget", default=None, metavar="AGREEMENT",
              help="Convert every candidate precision of each platform, check each on the evaluation suite, and keep "
                   "per platform the smallest that keeps this zero-shot agreement with the eager model (0.98 or 98%) "
                   "and a cosine mean of 0.99; --precision lists the candidates instead of the defaults.")
@click.option("--prefer", type=click.Choice(["size", "latency"]), default="size", show_default=True,
              help="With --budget: keep the smallest artifact within the budget, or the fastest on this host.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Conversions run at once, each in its own process [default: one per core, at most 3]; "
                   "1 converts in this process (less memory for real-size towers).")
@_eval_data_options
@_friendly
def export_cmd(checkpoint, model_spec, weights, targets, precisions, tower, out, calibration, n_test, no_parity,
               localize, no_bench, strict, eval_data, prompts, label_bank, budget, prefer, workers) -> None:
    """Convert a checkpoint for every platform, check parity, benchmark, write manifest.json.

    Writes OUT/PLATFORM/* artifacts, OUT/parity.{json,md,html}, OUT/bench.{json,png},
    OUT/manifest.json, OUT/golden.json (+ OUT/golden/*.png) and OUT/vocab.txt."""
    from .budget import Budget, parse_budget
    from .checkpoint import default_checkpoint
    from .exporter import parse_precisions, resolve_targets
    from .parity import ParityConfig
    from .pipeline import SUMMARY_HEADER, run_pipeline, summary_rows

    budget = Budget(parse_budget(budget), prefer=prefer) if budget is not None else None
    source = _model_source(checkpoint, model_spec, weights) or default_checkpoint()
    plats = resolve_targets(targets)
    chosen = parse_precisions(precisions, plats)
    towers = ("image", "text") if tower == "both" else (tower,)
    with _work() as progress:
        progress.echo(f"exporting {source} -> {out}")
        result = run_pipeline(source, out, plats, chosen, towers, calibration_dir=calibration, weights=weights,
                              parity_cfg=ParityConfig(n_test=n_test, localize=localize), parity=not no_parity,
                              bench=not no_bench, golden=set(towers) == {"image", "text"}, progress=progress,
                              suite=_suite(eval_data, prompts if eval_data and Path(eval_data).is_dir()
                                           or not label_bank else None),
                              label_bank=label_bank, templates=_templates(prompts), budget=budget,
                              workers=workers)
    _print_table(SUMMARY_HEADER, summary_rows(result))
    if result.parity and result.parity.get("selection"):
        from .parity.report import selection_rows

        _print_table(["platform", "candidate", "size", "zero-shot agreement", "cosine mean", "latency", "verdict"],
                     selection_rows(result.parity["selection"]))
    click.echo(f"manifest: {result.manifest}  ({result.seconds['total']:.0f} s: "
               + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items() if k != "total") + ")")
    failed = [a for a in (result.parity or {}).get("artifacts", []) if a["status"] == "fail"]
    if failed:
        click.echo(f"parity FAILED for {len(failed)} artifact(s), see {out / 'parity.md'}: " + "; ".join(
            f"{a['platform']} {a['tower']} {a['precision']}: {a['reasons'][0]}" for a in failed), err=True)
        if strict:
            sys.exit(1)


@main.command("parity")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Reference checkpoint (default: the one recorded in FOLDER/export.json).")
@_model_options("the one FOLDER/export.json names")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the JSON report here.")
@click.option("--n", "n_test", type=click.IntRange(min=1), default=100, show_default=True,
              help="Samples per task of the world; for --eval-data FOLDER or FILE, at most N images per class or N caption lines.")
@click.option("--localize", type=click.Choice(["always", "on_failure", "never"]), default="always",
              show_default=True, help="When to compare layer by layer (per-layer SQNR curves, first divergent layer).")
@_eval_data_options
@_friendly
def parity_cmd(folder, checkpoint, model_spec, weights, json_path, n_test, localize, eval_data, prompts) -> None:
    """Run every artifact in FOLDER on its runtime and check it against the reference.

    Writes parity.json, parity.md and parity.html into FOLDER; exits 1 when any artifact fails."""
    from .parity import ParityConfig, check_folder, write_reports
    from .parity.report import HEADER, summary_rows

    from .folder import locked

    suite = None if eval_data is None and prompts is None else _suite(eval_data, prompts)
    with locked(folder, "mobile-sdk parity"), _work() as progress:  # it writes its reports into FOLDER
        report = check_folder(folder, checkpoint, ParityConfig(n_test=n_test, localize=localize),
                              on_step=progress.stage("parity"), model=model_spec, weights=weights, suite=suite)
        paths = write_reports(report, folder, json_path)
    _print_table(HEADER, summary_rows(report))
    click.echo(f"wrote {', '.join(str(p) for p in paths)}")
    if not report["passed"]:
        click.echo("parity FAILED: " + "; ".join(
            f"{a['platform']} {a['tower']} {a['precision']}: {a['reasons'][0]}" for a in report["artifacts"]
            if a["status"] == "fail"), err=True)
        sys.exit(1)


def _templates(prompts):
    from .data.suites import read_templates
    return read_templates(prompts)


def _suite(eval_data, prompts):
    from .data.suites import load_suite
    return load_suite(eval_data, prompts)


def _model_source(checkpoint, model_spec, weights):
    """The model source of --checkpoint / --model / --weights (None: the default)."""
    from .errors import ConfigError

    if checkpoint is not None and model_spec is not None:
        raise ConfigError("pass either --checkpoint or --model, not both (a checkpoint is --model PATH)")
    if weights is not None and model_spec is None and checkpoint is None:
        raise ConfigError("--weights belongs to a --model (e.g. --model open_clip:ViT-B-32 --weights FILE)")
    return str(checkpoint) if checkpoint is not None else model_spec


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for h in header:
        table.add_column(h)
    for r in rows:
        table.add_row(*r)
    Console(width=200).print(table)


@main.command("bench")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@_model_options("the one FOLDER/export.json names")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results here (FOLDER/bench.json is always written).")
@click.option("--threads", default="1,2", show_default=True, help="Comma-separated thread counts.")
@click.option("--no-peers", is_flag=True, help="Only the artifacts: no eager PyTorch / ONNX Runtime rows.")
@click.option("--runtime-peers/--no-runtime-peers", default=True, show_default=True,
              help="Also time each installed runtime's fp32 artifact that FOLDER lacks (converted into a temp "
                   "folder), so every runtime's fp32 and int8 sit side by side.")
@_friendly
def bench_cmd(folder, model_spec, weights, json_path, threads, no_peers, runtime_peers) -> None:
    """Batch-1 latency, memory and size of each artifact in FOLDER, next to eager PyTorch and ONNX Runtime."""
    from .bench import bench_folder, render_table, write_plot
    from .errors import ConfigError

    try:
        counts = tuple(int(t) for t in threads.split(",") if t.strip())
    except ValueError:
        raise ConfigError(f"--threads must be comma-separated integers, got {threads!r}") from None
    if not counts or min(counts) < 1:
        raise ConfigError(f"--threads needs positive counts, got {threads!r}")
    from .folder import atomic_write_text, locked

    _model_source(None, model_spec, weights)
    with locked(folder, "mobile-sdk bench"):  # it writes bench.json and bench.png into FOLDER
        with _work() as progress:
            result = bench_folder(folder, counts, peers=not no_peers, model=model_spec, weights=weights,
                                  on_step=progress.stage("bench"), runtime_peers=runtime_peers and not no_peers)
        text = json.dumps(result, indent=2) + "\n"
        atomic_write_text(folder / "bench.json", text)
        try:
            parity = json.loads((folder / "parity.json").read_text()) if (folder / "parity.json").is_file() else None
        except ValueError:
            log.warning("%s is not valid JSON: the chart shows latency and size only", folder / "parity.json")
            parity = None
        plot = write_plot(result, parity, folder / "bench.png")
        if json_path:
            atomic_write_text(json_path, text)
    click.echo(render_table(result))
    click.echo(f"wrote {folder / 'bench.json'}, {plot}")


@main.command("qat")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model to fine-tune (default: the shipped student).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Fine-tuned checkpoint (.safetensors); its report goes to OUT with a .json suffix.")
@click.option("--tower", type=click.Choice(["text"]), default="text", show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=1200, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=256, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--captions", type=click.IntRange(min=2), default=50_000, show_default=True,
              help="Training captions drawn from the train split.")
@click.option("--probe-images", type=click.IntRange(min=0), default=2048, show_default=True,
              help="Train-split images whose scores against the captions the loss also matches (0: cosine only).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@_friendly
def qat_cmd(checkpoint, out, tower, steps, batch_size, lr, seed, captions, probe_images, no_progress) -> None:
    """Quantization-aware fine-tune of one tower for full-integer LiteRT (experimental; docs in
    mobile_sdk/compress/qat.py): its float and simulated-int8 forwards learn to match the original."""
    from converters.base import atomic_output

    from .checkpoint import default_checkpoint, load_checkpoint, save_checkpoint
    from .compress.qat import QATConfig, finetune
    from .train import _progress

    cfg = QATConfig(tower=tower, steps=steps, batch_size=batch_size, lr=lr, seed=seed, captions=captions,
                    probe_images=probe_images)
    src = checkpoint or default_checkpoint()
    model, meta = load_checkpoint(src)
    model = model.float().eval()
    bar = _progress(not no_progress, steps, 0)
    student, report = finetune(model, cfg, progress=lambda step, total, loss: bar.update(step, loss))
    bar.close()
    report["source"] = str(src)
    save_checkpoint(student, out, name=f"{meta.get('name') or 'model'}-qat", info={"qat": {k: report[k] for k in
                                                                                          ("before", "after", "config")}})
    with atomic_output(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    b, a = report["before"], report["after"]
    click.echo(f"wrote {out}: {tower} tower, float cosine to the original {a['float_cos_mean']:.5f} "
               f"(min {a['float_cos_min']:.5f}); simulated int8 {b['int8_sim_cos_mean']:.5f} -> "
               f"{a['int8_sim_cos_mean']:.5f} (min {b['int8_sim_cos_min']:.5f} -> {a['int8_sim_cos_min']:.5f})")


@main.command("pack")
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dtype", type=click.Choice(["float16", "bfloat16", "float32"]), default="float16", show_default=True)
@_friendly
def pack_cmd(src, dst, dtype) -> None:
    """Re-save checkpoint SRC as DST for shipping (strict load, smaller storage dtype)."""
    import torch

    from .checkpoint import pack_checkpoint

    out = pack_checkpoint(src, dst, getattr(torch, dtype))
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


@main.command("plot")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A train_log.jsonl: plot loss and validation accuracy against step.")
@click.option("--eval", "eval_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A `mobile-sdk eval --json` file: plot per-task accuracy against chance.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("docs"), show_default=True)
@click.option("--name", default="teacher", show_default=True, help="File prefix: NAME_training.png, NAME_tasks.png.")
@_friendly
def plot_cmd(log_path, eval_path, out_dir, name) -> None:
    """Draw the training curve and/or the per-task bar chart as PNG files."""
    from .errors import DataError
    from .plots import plot_tasks, plot_training

    if not (log_path or eval_path):
        raise click.UsageError("give --log, --eval or both")
    if log_path:
        click.echo(f"wrote {plot_training(log_path, out_dir / f'{name}_training.png', title=f'{name} training')}")
    if eval_path:
        try:
            result = json.loads(Path(eval_path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read evaluation JSON {eval_path}: {e}") from None
        click.echo(f"wrote {plot_tasks(result, out_dir / f'{name}_tasks.png')}")


if __name__ == "__main__":
    main()
