"""`manifest.json`: what the apps read to use the exported artifacts; nothing is guessed.

Schema (version 1; documented in docs/manifest.md; as JSON Schema in schemas/manifest.schema.json,
shipped in the package; validated on write and on read, with the checks a schema cannot express):

    {"schema": "mobile-sdk-manifest", "schema_version": 1, "sdk_version": str,
     "model": {"name", "checkpoint_sha256", "embed_dim", "logit_scale",
               "preprocessing": {"image_size", "color", "layout", "dtype", "range", "normalization",
                                 "resize", "interpolation", "mean", "std", "steps", "reference"},
               "tokenizer": {"kind", "vocab_file" | "merges_file" | "tokenizer_file", "vocab_sha256" |
                             "merges_sha256", "vocab_size", "context_length", "pad_id", "sot_id", "eot_id",
                             "unk_id" (word), "lowercase", "separators", "reference"},
               "tasks": {task: {"labels": [str], "prompts": [str]}}},
     "artifacts": [{"platform", "tower", "precision", "variant", "default": bool, "file", "sha256", "bytes",
                    "inputs": [TensorSpec], "outputs": [TensorSpec], "parity": {...} | null}],
     "golden": "golden.json" | null}

TensorSpec: {"name", "shape": [int], "dtype", "layout", "scale": float | null, "zero_point": int | null}.
Paths are relative to the manifest's folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from converters import PLATFORMS  # the backend registry (cheap: no backend package is imported)

from .errors import DataError

SCHEMA = "mobile-sdk-manifest"
SCHEMA_VERSION = 1
TOWERS = ("image", "text")
# What each precision is for, in words for people (apps pick their default by the `default` field).
VARIANTS = {
    ("tflite", "int8"): "full-integer int8: every tensor integer, for NPUs / DSPs",
    ("tflite", "int8_cpu"): "CPU int8: one XNNPACK partition, float islands for softmax / GELU / norms",
}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:  # a package folder: its files in sorted order, names included
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def model_section(model, meta: dict, checkpoint: Path | None, vocab_file: str = "vocab.txt",
                  tokenizer_files: dict | None = None) -> dict:
    import string

    from .data.tasks import ZEROSHOT_TASKS, class_prompts
    from .data.world import COLORS, POSITIONS, SHAPES, SIZES
    from .exporter import square_size
    from .models.adapter import as_adapter
    from .tokenizer import default_vocab_path

    model = as_adapter(model)
    tok = model.tokenizer
    labels = {"zeroshot_color": list(COLORS), "zeroshot_shape": list(SHAPES), "zeroshot_size": list(SIZES),
              "zeroshot_position": list(POSITIONS)}
    tasks = {t: {"labels": labels[t], "prompts": class_prompts(t)} for t in ZEROSHOT_TASKS if t in labels}
    weights = Path(checkpoint) if checkpoint else (Path(model.weights) if model.weights else None)
    common = {
        "name": meta.get("name") or (Path(checkpoint).stem if checkpoint else model.name),
        "source": model.name, "family": model.family,
        "checkpoint_sha256": sha256_file(weights) if weights and weights.exists() else None,
        "embed_dim": int(model.embed_dim),
        "logit_scale": float(model.logit_scale),
    }
    if model.family != "builtin":
        pp = model.preprocess
        return {**common, "preprocessing": {
            "image_size": square_size(model), "color": "RGB", "layout": "NCHW", "dtype": "float32",
            "range": [0, 255], "normalization": "inside the model (per-channel affine)",
            "mean": list(pp.mean), "std": list(pp.std), "resize": pp.resize, "interpolation": pp.interpolation,
            "reference": "mobile_sdk.preprocess.preprocess_image"},
            "tokenizer": {**tok.describe(), **(tokenizer_files or {})}, "tasks": tasks}
    vocab_file = (tokenizer_files or {}).get("vocab_file", vocab_file)
    return {
        **common,
        "preprocessing": {
            "image_size": square_size(model), "color": "RGB", "layout": "NCHW", "dtype": "float32",
            "range": [0, 255], "normalization": "inside the model (per-channel affine)",
            "resize": "center_crop", "interpolation": "area",
            "steps": "EXIF transpose; alpha over white; center crop to the largest square; exact integer area "
                     "resize to image_size (see mobile_sdk/preprocess.py)",
            "reference": "mobile_sdk.preprocess.preprocess_image",
        },
        "tokenizer": {
            "kind": "word", "vocab_file": vocab_file, "vocab_sha256": sha256_file(default_vocab_path()),
            "vocab_size": tok.vocab_size, "context_length": tok.context_length,
            "pad_id": tok.pad_id, "sot_id": tok.sot_id, "eot_id": tok.eot_id, "unk_id": tok.unk_id,
            "lowercase": "ASCII A-Z only", "separators": string.whitespace + string.punctuation,
            "reference": "mobile_sdk.tokenizer.Tokenizer",
        },
        "tasks": tasks,
    }


# The precision an app loads by default on each platform: the first of these that was exported
# (both towers, or the image tower for an image-only export); else `int8`, else the first one.
APP_DEFAULTS = {"tflite": ("int8_cpu", "int8"), "executorch": ("int8_dynamic", "int8"),
                "coreml": ("pal6", "pal4", "palmix", "pal8", "pal3", "pal2", "pal1", "fp16")}


def mark_defaults(arts: list[dict]) -> list[dict]:
    """Set `default: true` on the artifacts (both towers) of each platform's default precision
    (APP_DEFAULTS) and `false` on the others: the apps read this field, never a description."""
    for plat in dict.fromkeys(a["platform"] for a in arts):
        towers = {}
        for a in arts:
            if a["platform"] == plat:
                towers.setdefault(a["precision"], set()).add(a["tower"])
        pairs = [p for p, t in towers.items() if set(TOWERS) <= t]
        ps = pairs or [p for p, t in towers.items() if "image" in t] or list(towers)
        chosen = next((p for p in APP_DEFAULTS.get(plat, ()) + ("int8",) if p in ps), ps[0])
        for a in arts:
            if a["platform"] == plat:
                a["default"] = a["precision"] == chosen
    return arts


def artifact_entry(meta: dict, folder: Path, parity: dict | None) -> dict:
    f = Path(meta["file"])
    return {
        "platform": meta["platform"], "tower": meta["tower"], "precision": meta["precision"],
        "variant": VARIANTS.get((meta["platform"], meta["precision"]), meta["precision"]),
        "file": str(f.relative_to(folder)), "sha256": sha256_file(f), "bytes": _bytes(f),
        "inputs": meta["inputs"], "outputs": meta["outputs"], "parity": parity,
    }


def build_manifest(folder: Path, model, meta: dict, checkpoint: Path | None, parity_report: dict | None = None,
                   golden: str | None = None, tokenizer_files: dict | None = None) -> dict:
    from . import __version__
    from .folder import scan_artifacts

    folder = Path(folder)
    by_key = {}
    for a in (parity_report or {}).get("artifacts", []):
        by_key[a["file"]] = {"status": a["status"], "reasons": a["reasons"], "calibration": a["calibration"],
                             "test": a["test"], "agreement": a.get("tasks", {}).get("agreement")}
    arts = mark_defaults([artifact_entry(m, folder, by_key.get(str(Path(m["file"]).relative_to(folder))))
                          for m in scan_artifacts(folder)])
    section = model_section(model, meta, checkpoint, tokenizer_files=tokenizer_files)
    merges = section["tokenizer"].get("merges_file")
    if merges and (folder / merges).is_file():  # the apps check the BPE merges file they bundle against it
        section["tokenizer"]["merges_sha256"] = sha256_file(folder / merges)
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "sdk_version": __version__,
            "model": section, "artifacts": arts, "golden": golden}


def write_folder_manifest(folder: Path, model, checkpoint: Path | None = None, parity_report: dict | None = None,
                          golden: str | None = None, label_bank: dict | None = None,
                          selection: dict | None = None) -> dict:
    """Write the tokenizer files and manifest.json of the export folder `folder` (listing every
    artifact in it; see `build_manifest`); -> the manifest."""
    from .models.adapter import as_adapter

    model = as_adapter(model)
    meta = getattr(model, "meta", {"name": model.name})
    tokenizer_files = model.tokenizer.files(folder) if hasattr(model.tokenizer, "files") else {}
    d = build_manifest(folder, model, meta, checkpoint, parity_report, golden=golden, tokenizer_files=tokenizer_files)
    if label_bank is not None:
        d["label_bank"] = label_bank
    if selection is not None:  # export --budget: the precision kept per platform and every candidate
        d["selection"] = selection
    write_manifest(d, folder)
    return d


def _need(d: dict, key: str, typ, where: str):
    if key not in d:
        raise DataError(f"manifest: {where} lacks {key!r}")
    if not isinstance(d[key], typ) or (typ is int and isinstance(d[key], bool)):
        raise DataError(f"manifest: {where}.{key} must be {getattr(typ, '__name__', typ)}, got {type(d[key]).__name__}")
    return d[key]


SCHEMA_FILE = Path(__file__).parent / "schemas" / "manifest.schema.json"


def schema() -> dict:
    """The manifest's JSON Schema (draft 2020-12), shipped in the package; the apps' tests read the
    same file."""
    return json.loads(SCHEMA_FILE.read_text())


def _check_schema(d: dict) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(d))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise DataError(f"manifest: {where}: {error.message} (schema: {SCHEMA_FILE.name}); re-export with "
                        f"`mobile-sdk export`, or fix the file by hand")


def validate_manifest(d: dict, folder: Path | None = None) -> dict:
    """Check the structure (and, with `folder`, that every file exists with its sha256); returns d."""
    if not isinstance(d, dict):
        raise DataError("manifest: not a JSON object")
    if d.get("schema") != SCHEMA:
        raise DataError(f"manifest: schema is {d.get('schema')!r}, expected {SCHEMA!r}")
    version = _need(d, "schema_version", int, "manifest")
    if version != SCHEMA_VERSION:
        raise DataError(f"manifest: schema_version {version} is not supported (this SDK reads {SCHEMA_VERSION}); "
                        f"re-export with this version of mobile-sdk")
    _check_schema(d)
    model = _need(d, "model", dict, "manifest")
    for k, t in (("embed_dim", int), ("logit_scale", float), ("preprocessing", dict), ("tokenizer", dict),
                 ("tasks", dict)):
        _need(model, k, t, "model")
    for k in ("image_size",):
        _need(model["preprocessing"], k, int, "model.preprocessing")
    kind = model["tokenizer"].get("kind", "word")
    files = {"word": ("vocab_file",), "clip_bpe": ("merges_file",), "hf": ("tokenizer_file",)}.get(kind)
    if files is None:
        raise DataError(f"manifest: model.tokenizer.kind {kind!r} is not one of word, clip_bpe, hf")
    for k in files:
        _need(model["tokenizer"], k, str, "model.tokenizer")
    for k in ("context_length", "pad_id", "sot_id", "eot_id") + (("unk_id",) if kind == "word" else ()):
        _need(model["tokenizer"], k, int, "model.tokenizer")
    for name, task in model["tasks"].items():
        labels, prompts = _need(task, "labels", list, f"tasks.{name}"), _need(task, "prompts", list, f"tasks.{name}")
        if len(labels) != len(prompts) or not labels:
            raise DataError(f"manifest: tasks.{name} needs as many prompts as labels (>0)")
    if "label_bank" in d:  # class embeddings for image-tower-only zero-shot (mobile_sdk.label_bank)
        bank = _need(d, "label_bank", dict, "manifest")
        for k, t in (("file", str), ("sha256", str), ("classes", int), ("embed_dim", int)):
            _need(bank, k, t, "label_bank")
        if folder is not None:
            f = Path(folder) / bank["file"]
            if not f.is_file() or sha256_file(f) != bank["sha256"]:
                raise DataError(f"manifest: label bank {f} is missing or does not match its sha256; re-export")
    arts = _need(d, "artifacts", list, "manifest")
    for i, a in enumerate(arts):
        w = f"artifacts[{i}]"
        if _need(a, "platform", str, w) not in PLATFORMS:
            raise DataError(f"manifest: {w}.platform {a['platform']!r} not in {PLATFORMS}")
        if _need(a, "tower", str, w) not in TOWERS:
            raise DataError(f"manifest: {w}.tower {a['tower']!r} not in {TOWERS}")
        for k in ("precision", "variant", "file", "sha256"):
            _need(a, k, str, w)
        _need(a, "bytes", int, w)
        if "default" in a and not isinstance(a["default"], bool):
            raise DataError(f"manifest: {w}.default must be true or false, got {a['default']!r}")
        for io_key in ("inputs", "outputs"):
            for j, spec in enumerate(_need(a, io_key, list, w)):
                _need(spec, "name", str, f"{w}.{io_key}[{j}]")
                shape = _need(spec, "shape", list, f"{w}.{io_key}[{j}]")
                if not all(isinstance(s, int) and s > 0 for s in shape):
                    raise DataError(f"manifest: {w}.{io_key}[{j}].shape must be positive ints, got {shape}")
                _need(spec, "dtype", str, f"{w}.{io_key}[{j}]")
        if folder is not None:
            f = Path(folder) / a["file"]
            if not f.exists():
                raise DataError(f"manifest: {w} file {f} is missing")
            if sha256_file(f) != a["sha256"]:
                raise DataError(f"manifest: {w} file {f} does not match its sha256; re-export or restore it")
    marked = {(a["platform"], a["precision"]) for a in arts if a.get("default")}
    for plat in {p for p, _ in marked}:
        if len([1 for p, _ in marked if p == plat]) > 1:
            raise DataError(f"manifest: more than one {plat} precision is marked default: "
                            f"{sorted(q for p, q in marked if p == plat)}")
    return d


def write_manifest(d: dict, folder: Path) -> Path:
    validate_manifest(d, folder)
    path = Path(folder) / "manifest.json"
    tmp = path.with_name(".manifest.json.tmp")
    # standard JSON only (no NaN / Infinity, which strict readers such as the apps' refuse): a
    # non-finite parity figure (SQNR of an exact artifact) is written as a string, as in parity.json
    from .parity.report import _clean

    tmp.write_text(json.dumps(_clean(d), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def read_manifest(path: str | Path, check_files: bool = True) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"manifest not found: {path}; create it with `mobile-sdk export`") from None
    except ValueError as e:
        raise DataError(f"manifest {path} is not valid JSON: {e}") from None
    return validate_manifest(d, path.parent if check_files else None)
