"""Checkpoints: safetensors with the model config in the metadata, loaded strictly.

Metadata keys (all strings, as safetensors requires):
- `format`: "mobile-sdk.clip", `format_version`: "1"
- `config`: the CLIPConfig as JSON; `name`: the registered name it was built from (informational)
- `info`: free-form JSON (training command, seed, metrics, ...)
Weights are stored fp32 or fp16 and always load as fp32. Nothing is ever unpickled.
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


def read_metadata(path: str | Path) -> dict:
    """The checkpoint's metadata, with `config` and `info` parsed; CheckpointError if unusable."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (pass --checkpoint with an existing .safetensors file)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"checkpoint {path} is corrupt or not a safetensors file: {e}") from e
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a mobile-sdk CLIP checkpoint "
                              f"(metadata format={meta.get('format')!r}, expected {FORMAT!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {meta.get('format_version')!r}; "
                              f"this SDK reads version {FORMAT_VERSION}")
    try:
        meta["config"] = CLIPConfig.from_dict(json.loads(meta["config"]))
        meta["info"] = json.loads(meta.get("info") or "{}")
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} has an invalid model config in its metadata: {e}") from e
    return meta


def load_state_dict_strict(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy `tensors` into `model`; any missing/extra key or shape mismatch is a CheckpointError."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing:
        raise CheckpointError(f"{source}: missing key(s) {missing[:5]}{' ...' if len(missing) > 5 else ''} "
                              f"(the checkpoint does not match this architecture)")
    if extra:
        raise CheckpointError(f"{source}: unexpected key(s) {extra[:5]}{' ...' if len(extra) > 5 else ''} "
                              f"(the checkpoint does not match this architecture)")
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{source}: shape mismatch for {k!r}: checkpoint {tuple(tensors[k].shape)}, "
                                  f"model {tuple(v.shape)}")
    model.load_state_dict({k: t.to(expected[k].dtype) for k, t in tensors.items()}, strict=True)


def load_checkpoint(path: str | Path, expected_config: CLIPConfig | None = None) -> tuple[CLIP, dict]:
    """-> (model in eval mode, metadata). `expected_config` asserts the architecture."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    cfg = meta["config"]
    if expected_config is not None and cfg != expected_config:
        raise CheckpointError(f"checkpoint {path} holds a different architecture than expected:\n"
                              f"  checkpoint: {cfg}\n  expected:   {expected_config}")
    try:
        tensors = load_file(str(path))
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is corrupt (cannot read its tensors): {e}") from e
    for k, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"checkpoint {path}: tensor {k!r} holds NaN or Inf values")
    try:
        model = CLIP(cfg)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path}: cannot build its model config: {e}") from e
    load_state_dict_strict(model, tensors, str(path))
    return model.eval(), meta


def assets_dir() -> Path:
    from importlib import resources

    return Path(str(resources.files("mobile_sdk") / "assets"))


def shipped_checkpoint(name: str) -> Path:
    """A checkpoint committed with the package: `teacher` or `student`."""
    path = assets_dir() / f"{name}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"no shipped {name} checkpoint at {path}")
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
