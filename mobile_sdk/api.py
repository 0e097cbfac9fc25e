"""The Python API: what the command line does, as functions that return objects and print nothing.

    import mobile_sdk

    model = mobile_sdk.load_model("vit-bpe-world")               # or "open_clip:ARCH", "hf:DIR", ...
    result = mobile_sdk.export(model, "out/fixture", targets=["tflite"], bench=False)
    print(result.manifest, [a.path.name for a in result.artifacts])
    report = mobile_sdk.check_parity("out/fixture")
    assert report.passed, report.failures()

Heavy backends load only when a function needs them, and what they print from C++ is kept off the
terminal as on the command line (mobile_sdk._console.quiet_backends).
"""

from __future__ import annotations

import contextlib

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from ._console import quiet_backends

ModelLike = Union[str, Path, "DualEncoder"]  # noqa: F821 - a source spec, a checkpoint path or an adapter


def load_model(source: Optional[ModelLike] = None, weights: Union[str, Path, None] = None):
    """The model as a `DualEncoder` (image and text towers, tokenizer, preprocessing).

    `source`: a shipped name (`student`, `teacher`, `vit-bpe-world`), a built-in checkpoint path,
    `open_clip:ARCH` or `open_clip:CONFIG.json` (with `weights`), `hf:DIR`, or `module:function`;
    default: the shipped student."""
    from .checkpoint import default_checkpoint
    from .models.sources import load_adapter

    return load_adapter(source if source is not None else default_checkpoint(), weights)


@dataclass
class ParityReport:
    """The parity checker's verdict on a folder of artifacts (`raw`: the full report, as parity.json)."""

    passed: bool
    artifacts: list[dict]
    suite: dict
    reference_accuracy: dict
    raw: dict = field(repr=False)

    def failures(self) -> list[str]:
        """One line per failing artifact: which one, and its first reason."""
        return [f"{a['platform']} {a['tower']} {a['precision']}: {a['reasons'][0] if a['reasons'] else 'failed'}"
                for a in self.artifacts if a["status"] == "fail"]

    def write(self, folder: Union[str, Path]) -> list[Path]:
        """Write parity.json, parity.md and parity.html into `folder`."""
        from .parity import write_reports

        return write_reports(self.raw, folder)

    @classmethod
    def from_dict(cls, report: dict) -> "ParityReport":
        return cls(bool(report["passed"]), list(report["artifacts"]), dict(report.get("suite") or {}),
                   dict(report.get("reference_accuracy") or {}), report)


def export(model: Optional[ModelLike], out: Union[str, Path], *, weights: Union[str, Path, None] = None,
           targets: Iterable[str] = ("all",), precisions: Optional[dict[str, Sequence[str]]] = None,
           towers: Sequence[str] = ("image", "text"), calibration: Union[str, Path, None] = None,
           eval_data: Union[str, Path, None] = None, prompts: Union[str, Path, None] = None,
           n_test: int = 100, parity: bool = True, bench: bool = False, label_bank: Union[str, Path, Sequence[str],
                                                                                      None] = None,
           on_progress: Any = None, budget: Union[float, str, None] = None, prefer: str = "size"):
    """Convert `model` for each platform into `out` (OUT/PLATFORM/TOWER_PRECISION.EXT), check parity,
    optionally benchmark, and write manifest.json and golden vectors, as `mobile-sdk export` does.
    Returns a `PipelineResult` (artifacts, parity report dict, bench dict, manifest path, seconds).

    `precisions`: {platform: [precision, ...]} instead of each platform's defaults. `eval_data`:
    `world` (default), an image folder (one sub-folder per class) or a captions .jsonl; `prompts`:
    a templates file, one template with one `{}` per line (for a folder suite and the label bank). `label_bank`: class names (a file, one
    per line, or a list) whose prompt embeddings are shipped for image-only zero-shot.
    `on_progress`: an object whose `stage(name)` returns an `on_step(label, index, total)`
    callback (see mobile_sdk.progress); default: silent. `budget` (0.98, or "98%"): convert every
    candidate precision and keep per platform the smallest (`prefer="latency"`: the fastest here)
    that keeps this zero-shot agreement and a cosine mean of 0.99, as `export --budget`."""
    from .budget import Budget, parse_budget
    from .data.suites import load_suite, read_templates
    from .exporter import resolve_targets
    from .parity import ParityConfig
    from .pipeline import run_pipeline

    source = model if model is not None else load_model()
    plats = resolve_targets(tuple(targets))
    templates = read_templates(prompts)
    folder = eval_data is not None and Path(eval_data).is_dir()
    suite = load_suite(eval_data, prompts if folder or label_bank is None else None)
    with quiet_backends():
        return run_pipeline(source, Path(out), plats, {k: list(v) for k, v in (precisions or {}).items()} or None,
                            tuple(towers), calibration_dir=calibration, weights=weights,
                            parity_cfg=ParityConfig(n_test=n_test), parity=parity, bench=bench,
                            golden=set(towers) == {"image", "text"}, progress=on_progress, suite=suite,
                            label_bank=label_bank, templates=templates,
                            budget=Budget(parse_budget(budget), prefer=prefer) if budget is not None else None)


def check_parity(folder: Union[str, Path], *, model: Optional[ModelLike] = None,
                 weights: Union[str, Path, None] = None, eval_data: Union[str, Path, None] = None,
                 prompts: Union[str, Path, None] = None, n_test: int = 100, localize: str = "on_failure",
                 write: bool = True, on_step: Any = None) -> ParityReport:
    """Run every artifact in `folder` on its runtime against the reference (`model`, default: the
    one the folder's export.json names) on `eval_data` (default: what the export recorded), as
    `mobile-sdk parity` does. Writes parity.json/md/html into the folder unless `write=False`."""
    from .parity import ParityConfig, check_folder, write_reports

    suite = None
    if eval_data is not None or prompts is not None:
        from .data.suites import load_suite

        suite = load_suite(eval_data, prompts)
    from .folder import locked

    with locked(folder, "mobile_sdk.check_parity") if write else contextlib.nullcontext(), quiet_backends():
        report = check_folder(folder, None, ParityConfig(n_test=n_test, localize=localize), on_step=on_step,
                              model=model, weights=weights, suite=suite)
        if write:  # under the folder's lock, as `mobile-sdk parity` writes them
            write_reports(report, folder)
    return ParityReport.from_dict(report)
