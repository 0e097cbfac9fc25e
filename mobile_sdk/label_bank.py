"""A label bank: the text embeddings of a fixed set of classes, computed once at export time.

With a label bank an app classifies images zero-shot with the image tower alone (the edge/cloud
split: the text tower stays on the server, or is never needed). `export --label-bank FILE` reads
class names (one per line), prompts each with the templates (`--prompts`, default "a photo of a
{}."), embeds the prompts with the eager text tower in float32, averages each class's prompts and
L2-normalizes the result (CLIP's prompt ensemble: the same class embedding the parity checker's
folder suite uses), and writes OUT/label_bank.json:

    {"schema": "mobile-sdk.label_bank", "schema_version": 1, "classes": [...], "templates": [...],
     "embed_dim": D, "normalized": true, "embeddings": [[D floats] per class]}

The manifest's `label_bank` entry names the file with its sha256; an app scores an image as
logit_scale * cosine(image embedding, class embedding), as it does with prompts it embeds itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .data.suites import DEFAULT_TEMPLATES, _read_text
from .data.tasks import unit_rows
from .errors import DataError

LABEL_BANK_FILE = "label_bank.json"
SCHEMA, SCHEMA_VERSION = "mobile-sdk.label_bank", 1


def read_class_names(path: str | Path) -> list[str]:
    """Class names, one per line, as written (blank lines and # comments ignored; `_` reads as a
    space, as in folder names)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label bank file not found: {path}; pass a text file with one class name per line")
    names = [" ".join(ln.replace("_", " ").split()) for ln in _read_text(path, "label bank file", "utf-8-sig").splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    if len(names) < 2:
        raise DataError(f"label bank {path} names {len(names)} class(es); zero-shot classification needs at least 2 "
                        f"(one class name per line)")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"label bank {path} names these classes more than once: {dup[:5]}; remove the duplicates")
    return names


def class_embeddings(adapter, classes: list[str], templates=DEFAULT_TEMPLATES) -> np.ndarray:
    """(len(classes), D) float64 unit rows: each class's prompts embedded by the eager text tower,
    averaged, normalized."""
    prompts = [t.format(c) for c in classes for t in templates]
    with torch.no_grad():
        emb = adapter.text(torch.from_numpy(adapter.tokenizer(prompts))).double().numpy()
    emb = unit_rows(emb).reshape(len(classes), len(templates), -1).mean(axis=1)
    return unit_rows(emb)


def write_label_bank(out: str | Path, adapter, classes: list[str], templates=DEFAULT_TEMPLATES) -> dict:
    """Write OUT/label_bank.json; returns the manifest entry (file, sha256, classes, templates)."""
    from .manifest import sha256_file

    if adapter.text is None:
        raise DataError("a label bank needs the model's text tower to embed the class prompts")
    emb = class_embeddings(adapter, classes, tuple(templates))
    doc = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "classes": list(classes),
           "templates": list(templates), "embed_dim": int(emb.shape[1]), "normalized": True,
           "embeddings": [[float(np.float32(v)) for v in row] for row in emb]}
    path = Path(out) / LABEL_BANK_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, allow_nan=False) + "\n")
    tmp.replace(path)
    return {"file": LABEL_BANK_FILE, "sha256": sha256_file(path), "classes": len(classes),
            "embed_dim": int(emb.shape[1]), "templates": list(templates)}


def read_label_bank(path: str | Path) -> dict:
    """The label bank file, checked: -> its dict with `embeddings` as a float32 (classes, D) array."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read label bank {path}: {e}") from e
    if doc.get("schema") != SCHEMA or doc.get("schema_version") != SCHEMA_VERSION:
        raise DataError(f"{path} is not a mobile-sdk label bank (schema {doc.get('schema')!r})")
    emb = np.asarray(doc.get("embeddings"), np.float32)
    if emb.ndim != 2 or emb.shape != (len(doc.get("classes", [])), doc.get("embed_dim")):
        raise DataError(f"label bank {path}: embeddings must be one row of embed_dim floats per class")
    doc["embeddings"] = emb
    return doc


__all__ = ["LABEL_BANK_FILE", "class_embeddings", "read_class_names", "read_label_bank", "write_label_bank"]
