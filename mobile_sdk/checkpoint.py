"""Checkpoints: safetensors with the model config in the metadata, loaded strictly.

Metadata keys (all strings, as safetensors requires):
- `format`: "mobile-sdk.clip", `format_version`: "1"
- `config`: the CLIPConfig as JSON; `name`: the registered name it was built from (informational)
- `info`: free-form JSON (training command, seed, metrics, ...)
Weights are stored fp32 or fp16 and always load as fp32. Nothing is ever unpickled.

Loading is strict: every key, shape and dtype kind (a floating-point weight must be floating point
in the file, an integer buffer integer) is checked against the architecture, and NaN / Inf are
refused. Every CheckpointError names the file, the problem and what to do.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from .errors import CheckpointError
from .models.clip import CLIP, CLIPConfig

FORMAT, FORMAT_VERSION = "mobile-sdk.clip", "1"
# What to do about a damaged or hand-edited checkpoint file.
RESAVE = "re-save it with `mobile-sdk train` or save_checkpoint, or copy / download it again"


def save_checkpoint(model: CLIP, path: str | Path, *, name: str = "", info: dict | None = None,
                    dtype: torch.dtype = torch.float32) -> Path:
    """Write atomically (temp file + rename): an earlier file at `path` survives a failed save."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": name,
            "config": json.dumps(model.cfg.to_dict()), "info": json.dumps(info or {})}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_metadata(path: str | Path, fix: str | None = None) -> dict:
    """The checkpoint's metadata, with `config` and `info` parsed; CheckpointError if unusable,
    ending with `fix` where given (what to do in the caller's context), else the usual remedy."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (pass --checkpoint with an existing .safetensors file)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"checkpoint {path} is corrupt or not a safetensors file: {e}; " + (
            fix or f"pass --checkpoint with a mobile-sdk .safetensors file (written by `mobile-sdk train` or "
                   f"save_checkpoint); if it is one, it was damaged: {RESAVE}")) from e
    if meta.get("format") != FORMAT:
        source = meta.get("source")
        fix = fix or (f"it holds {source} weights: pass --model {source} --weights {path}" if source else
                      f"pass --checkpoint with a file written by `mobile-sdk train` or save_checkpoint; for other "
                      f"weights use --model open_clip:ARCH --weights FILE or --model hf:DIR")
        raise CheckpointError(f"checkpoint {path} is not a mobile-sdk CLIP checkpoint "
                              f"(metadata format={meta.get('format')!r}, expected {FORMAT!r}); {fix}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {meta.get('format_version')!r}; "
                              f"this SDK reads version {FORMAT_VERSION}; " + (
                                  fix or "use the mobile-sdk version that wrote it, or re-save the model with this "
                                         "one (save_checkpoint)"))
    try:
        meta["config"] = CLIPConfig.from_dict(json.loads(meta["config"]))
        meta["info"] = json.loads(meta.get("info") or "{}")
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has an invalid model config in its metadata ({e}): the metadata "
                              f"was damaged or edited; {fix or RESAVE}") from e
    return meta


def _dtype_kind(dtype: torch.dtype) -> str:
    if dtype.is_floating_point:
        return "floating-point"
    if dtype.is_complex:
        return "complex"
    return "bool" if dtype == torch.bool else "integer"


def dtype_problem(key: str, found: torch.dtype, expected: torch.dtype) -> str | None:
    """Why a file's `found` tensor cannot fill the model's `expected` one, or None: the kinds must
    match (floating point, integer, bool); within a kind it is cast (fp16 storage -> fp32)."""
    kind = _dtype_kind(expected)
    if _dtype_kind(found) == kind:
        return None
    what = "weight" if kind == "floating-point" else "buffer"
    article = "an" if kind[0] in "aeiou" else "a"
    return f"{key!r} holds {found} where {article} {kind} {what} belongs (the model's is {expected})"


def load_state_dict_strict(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str,
                           fix: str | None = None) -> None:
    """Copy `tensors` into `model`; any missing/extra key, shape mismatch or dtype of the wrong kind
    (`dtype_problem`) is a CheckpointError ending with `fix` (default: the file was damaged or
    edited: re-save it); NaN / Inf values are one too."""
    fix = fix or f"the file was damaged or edited, or written by other code; {RESAVE}"
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing:
        raise CheckpointError(f"{source}: missing key(s) {missing[:5]}{' ...' if len(missing) > 5 else ''} "
                              f"(the checkpoint does not match this architecture): {fix}")
    if extra:
        raise CheckpointError(f"{source}: unexpected key(s) {extra[:5]}{' ...' if len(extra) > 5 else ''} "
                              f"(the checkpoint does not match this architecture): {fix}")
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{source}: shape mismatch for {k!r}: checkpoint {tuple(tensors[k].shape)}, "
                                  f"model {tuple(v.shape)}: {fix}")
        problem = dtype_problem(k, tensors[k].dtype, v.dtype)
        if problem:
            raise CheckpointError(f"{source}: {problem}: {fix}")
        if tensors[k].is_floating_point() and not torch.isfinite(tensors[k]).all():
            raise CheckpointError(f"{source}: tensor {k!r} holds NaN or Inf values: the model it was saved from had "
                                  f"diverged; re-train it (a lower --lr) or use an earlier checkpoint")
    model.load_state_dict({k: t.to(expected[k].dtype) for k, t in tensors.items()}, strict=True)


def load_checkpoint(path: str | Path, expected_config: CLIPConfig | None = None) -> tuple[CLIP, dict]:
    """-> (model in eval mode, metadata). `expected_config` asserts the architecture."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    cfg = meta["config"]
    if expected_config is not None and cfg != expected_config:
        raise CheckpointError(f"checkpoint {path} holds a different architecture than expected:\n"
                              f"  checkpoint: {cfg}\n  expected:   {expected_config}\n"
                              f"pass the checkpoint of the expected architecture")
    try:
        tensors = load_file(str(path))
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is corrupt (cannot read its tensors: {e}): the file is damaged "
                              f"or cut short, as by an interrupted copy or download; {RESAVE}") from e
    try:
        model = CLIP(cfg)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path}: cannot build its model config ({e}): the metadata was edited or "
                              f"written by another mobile-sdk version; {RESAVE}") from e
    load_state_dict_strict(model, tensors, str(path))
    return model.eval(), meta


def assets_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("mobile_sdk") / "assets"))


def shipped_checkpoint(name: str) -> Path:
    """A checkpoint committed with the package: `teacher` or `student`."""
    path = assets_dir() / f"{name}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"no shipped {name} checkpoint at {path}: the package's assets are incomplete; "
                              f"reinstall mobile-sdk, or pass --checkpoint with a checkpoint of your own")
    return path


def pack_checkpoint(src: str | Path, dst: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Re-save a checkpoint for shipping: strictly loaded, stored as `dtype`, its info kept. An
    open_clip state dict written by `mobile-sdk train --model open_clip:...` stays one (its float
    tensors stored as `dtype`), checked by loading it as that source."""
    from safetensors import safe_open

    try:
        with safe_open(str(src), framework="pt") as f:
            raw_meta = dict(f.metadata() or {})
    except Exception:
        raw_meta = {}
    if raw_meta.get("source", "").startswith("open_clip:"):
        return _pack_state_dict(Path(src), Path(dst), dtype, raw_meta)
    model, meta = load_checkpoint(src)
    merged = {**meta["info"], "storage_dtype": str(dtype).replace("torch.", "")}
    return save_checkpoint(model, dst, name=meta.get("name", ""), info=merged, dtype=dtype)


def _pack_state_dict(src: Path, dst: Path, dtype: torch.dtype, meta: dict) -> Path:
    from safetensors.torch import load_file, save_file

    from .models.sources import load_adapter

    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in load_file(str(src)).items()}
    info = {**json.loads(meta.get("info", "{}")), "storage_dtype": str(dtype).replace("torch.", "")}
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp.safetensors")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={**meta, "info": json.dumps(info)})
        load_adapter(meta["source"], tmp)  # strict: keys, shapes, finite values
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dst


def default_checkpoint() -> Path:
    """The shipped model: the compressed student (docs/student.md), else the teacher."""
    assets = assets_dir()
    for name in ("student.safetensors", "teacher.safetensors"):
        if (assets / name).is_file():
            return assets / name
    raise CheckpointError(f"no shipped checkpoint in {assets}; train one with `mobile-sdk train` "
                          f"and pass it with --checkpoint")
