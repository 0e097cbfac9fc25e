"""Golden vectors for the apps' unit tests: fixed sample images and texts, and what Python makes of
them: the preprocessed pixels, the token ids, each artifact's embeddings, and zero-shot scores and
rankings. Written as `golden.json` beside the manifest, with the sample PNGs under `golden/`.

The apps replay them exactly: their preprocessing must give the same pixels byte for byte, their
tokenizer the same ids (for a CLIP BPE tokenizer golden.json carries BPE_TEXTS too; the built-in
model's golden vectors are unchanged by them), and their scoring (cosine x logit scale, softmax, descending sort with
ties broken by the lower index) the same ranking from the same embeddings.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .data.tasks import unit_rows

GOLDEN_DIR = "golden"
GOLDEN_FILE = "golden.json"
TEXTS = (
    "a red circle",
    "a small blue square in the top left",
    "A Large GREEN star, at the bottom!",
    "a purple triangle left of an orange cross",
    "a zebra",  # not in the vocabulary: <unk>
    "a small red circle above a large blue square and a green star in the center on the left of the top",  # truncated
    "",
)
# Added for a CLIP BPE tokenizer (tokenizer kind "clip_bpe"): the rules an app must reproduce beyond
# plain words. The apps skip ftfy (see docs/manifest.md), so every text here is one whose ids do not
# depend on it (tests/test_golden_bpe.py checks that).
BPE_TEXTS = (
    "it's a red circle, isn't it?",
    "they're here; we've 2 stars & I'll draw 10 more",
    "you'd see I'm right: IT'S OK, don'T WORRY",
    "fish &amp; chips &lt;3 &#39;quoted&#39; &quot;x&quot;",
    "&#x41;&eacute; &amp;amp; &ampx &notit; &copy2 &apos;&#128;&#0;&#1114112;&bogus;",  # HTML5 unescape rules
    "antidisestablishmentarianism photographs",  # several BPE pieces per word
    "  MiXeD   CaSe\twith\n extra   whitespace  ",
    "red\u00a0blue\u3000green\u2009cyan \u200a pink\r\nend",  # Unicode whitespace
    "caf\u00e9 na\u00efve \U0001f642 \u65e5\u672c \u00dcn\u00efcode",  # multi-byte UTF-8, a non-BMP emoji
    "hello!!! ...what?! (yes) [no] {maybe} #1 @home $5",
    "100% a+b=c, 3.14 x2 \u00bd \u00b2",  # digits one by one
    "<start_of_text> literal special tokens <end_of_text>",
    "\u039f\u0394\u039f\u03a3. \u03a3\u0391 \u0130",  # Greek final sigma, dotted capital I
    "a small red circle above a large blue square and a green star in the center on the left of the top of "
    "the picture",  # longer than the context length: truncated, <end_of_text> kept last
)


def golden_texts(tokenizer) -> tuple[str, ...]:
    """The texts golden.json carries for `tokenizer`: TEXTS, plus BPE_TEXTS for a CLIP BPE one."""
    kind = tokenizer.describe().get("kind") if hasattr(tokenizer, "describe") else None
    return TEXTS + BPE_TEXTS if kind == "clip_bpe" else TEXTS


def sample_images(folder: Path) -> list[Path]:
    """Write the fixed sample images (several PIL modes and sizes) and return their paths."""
    from .data.render import render
    from .data.splits import scene_at

    folder.mkdir(parents=True, exist_ok=True)
    scenes = [render(scene_at("test", i, 0, n_objects=1 + i % 3)[0], 64) for i in range(3)]
    big = render(scene_at("test", 7, 0, n_objects=2)[0], 120)
    images = {
        "scene_rgb_64x64.png": Image.fromarray(scenes[0]),
        "scene_rgb_64x64_b.png": Image.fromarray(scenes[1]),
        "scene_rgb_200x120.png": _pad(Image.fromarray(big), (200, 120)),
        "scene_rgba_90x90.png": _with_alpha(Image.fromarray(scenes[2]).resize((90, 90), Image.BILINEAR)),
        "scene_gray_L_50x70.png": Image.fromarray(scenes[1]).convert("L").resize((50, 70), Image.BILINEAR),
        "scene_palette_P_64x48.png": Image.fromarray(scenes[0]).resize((64, 48), Image.NEAREST).convert(
            "P", palette=Image.ADAPTIVE, colors=32),
        "gradient_gray16_96x64.png": Image.fromarray(  # uint16 -> mode I;16
            (np.linspace(0, 65535, 96 * 64).reshape(64, 96)).astype(np.uint16)),
    }
    paths = []
    for name, img in images.items():
        p = folder / name
        img.save(p, format="PNG", optimize=False)
        paths.append(p)
    return paths


def _pad(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGB", size, (128, 128, 128))
    canvas.paste(img, ((size[0] - img.width) // 2, (size[1] - img.height) // 2))
    return canvas


def _with_alpha(img: Image.Image) -> Image.Image:
    w, h = img.size
    alpha = (np.add.outer(np.arange(h), np.arange(w)) * 255 // (w + h - 2)).astype(np.uint8)
    rgba = img.convert("RGBA")
    rgba.putalpha(Image.fromarray(alpha))
    return rgba


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def scores(image_emb: np.ndarray, text_emb: np.ndarray, logit_scale: float) -> np.ndarray:
    """logit_scale * cosine, (n_images, n_texts); embeddings are unit-norm already but are
    normalized again here exactly as the apps do (float64; `tasks.unit_rows`)."""
    return logit_scale * unit_rows(image_emb) @ unit_rows(text_emb).T


def ranking(row: np.ndarray) -> list[int]:
    """Indices by descending score; ties go to the lower index (a stable sort of -score)."""
    return [int(i) for i in np.argsort(-np.asarray(row), kind="stable")]


def softmax(row: np.ndarray) -> np.ndarray:
    z = np.asarray(row, np.float64) - np.max(row)
    e = np.exp(z)
    return e / e.sum()


def build_golden(folder: Path, model, manifest: dict | None = None) -> dict:
    """Compute the golden vectors for the artifacts of the export folder `folder` (opened and
    checked by `folder.ExportFolder`, unless its `manifest` is given)."""
    import torch

    from converters import platform_module

    from .folder import ExportFolder
    from .models.adapter import as_adapter
    from .preprocess import image_info, load_image

    model = as_adapter(model)
    folder = Path(folder)
    if manifest is None:
        manifest = ExportFolder.open(folder).manifest
    size = manifest["model"]["preprocessing"]["image_size"]
    tok = model.tokenizer
    paths = sample_images(folder / GOLDEN_DIR)
    pixels = np.stack([load_image(p, size) for p in paths])
    texts = golden_texts(tok)
    ids = tok(list(texts))
    prompts = manifest["model"]["tasks"]["zeroshot_color"]["prompts"]
    prompt_ids = tok(prompts)
    logit_scale = manifest["model"]["logit_scale"]
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().contiguous()

    def encoders(image_fn, text_fn):
        img = np.concatenate([image_fn(x[i:i + 1].numpy()) for i in range(len(x))])
        txt = np.concatenate([text_fn(ids[i:i + 1]) for i in range(len(ids))])
        prm = np.concatenate([text_fn(prompt_ids[i:i + 1]) for i in range(len(prompt_ids))])
        return img, txt, prm

    with torch.no_grad():
        eager = encoders(lambda a: model.image(torch.from_numpy(a)).numpy(),
                         lambda a: model.text(torch.from_numpy(a)).numpy())
    results = {"eager": _task_block(eager, logit_scale)}
    runners: dict[tuple[str, str], dict] = {}
    for a in manifest["artifacts"]:
        if a["platform"] == "coreml":
            continue  # the Linux runner is a reference interpreter, not the app's runtime; see below
        runners.setdefault((a["platform"], a["precision"]), {})[a["tower"]] = \
            platform_module(a["platform"]).load(folder / a["file"])
    for (plat, prec), towers in runners.items():
        if set(towers) == {"image", "text"}:
            results[f"{plat}/{prec}"] = _task_block(encoders(towers["image"], towers["text"]), logit_scale)
    for a in manifest["artifacts"]:  # Core ML: the interpreter's outputs, marked as such
        if a["platform"] == "coreml":
            runners.setdefault(("coreml", a["precision"]), {})[a["tower"]] = \
                platform_module("coreml").load(folder / a["file"])
    for (plat, prec), towers in runners.items():
        if plat == "coreml" and set(towers) == {"image", "text"}:
            block = _task_block(encoders(towers["image"], towers["text"]), logit_scale)
            block["note"] = ("computed by the MIL reference interpreter with fp16 rounding; Core ML on a device "
                             "differs in the last bits: compare embeddings with a tolerance, rankings exactly "
                             "only where the score gap is large")
            results[f"{plat}/{prec}"] = block
    golden = {
        "schema_version": 1,
        "logit_scale": logit_scale,
        "images": [{"file": str(p.relative_to(folder)), "png_sha256": _sha(p.read_bytes()),
                    **image_info(p),
                    "pixels_sha256": _sha(px.tobytes()), "pixels": px.reshape(-1).tolist()}
                   for p, px in zip(paths, pixels)],
        "pixels_layout": f"uint8 HWC ({size}, {size}, 3), row-major",
        "texts": [{"text": t, "ids": i.tolist()} for t, i in zip(texts, ids)],
        "prompts": {"task": "zeroshot_color", "texts": prompts, "ids": prompt_ids.tolist()},
        "results": results,
    }
    if manifest.get("label_bank"):  # an export with --label-bank: every runtime's images against the bank
        golden["label_bank"] = _label_bank_block(folder, manifest["label_bank"], results, logit_scale)
    return golden


def _label_bank_block(folder: Path, entry: dict, results: dict, logit_scale: float) -> dict:
    """Per results block, each golden image scored against the label bank's class embeddings (as
    the file holds them), with the softmax and ranking of the zero-shot scores."""
    from .label_bank import read_label_bank

    doc = read_label_bank(Path(folder) / entry["file"])
    bank = doc["embeddings"].astype(np.float64)
    blocks = {}
    for name, r in results.items():
        zs = scores(np.asarray(r["image_embeddings"], np.float64), bank, logit_scale)  # (images, classes)
        blocks[name] = {"scores": np.round(zs, 6).tolist(), "probs": [np.round(softmax(row), 6).tolist() for row in zs],
                        "ranking": [ranking(row) for row in zs]}
    return {"file": entry["file"], "sha256": entry["sha256"], "classes": list(doc["classes"]), "results": blocks}


def _task_block(enc, logit_scale: float) -> dict:
    # Round first: the scores and rankings are those of the embeddings as the apps read them.
    img, txt, prm = (np.round(e.astype(np.float64), 7) for e in enc)
    zs = scores(img, prm, logit_scale)  # (images, prompts)
    search = scores(img, txt, logit_scale).T  # (texts, images)
    return {
        "image_embeddings": img.tolist(),
        "text_embeddings": txt.tolist(),
        "prompt_embeddings": prm.tolist(),
        "zeroshot_scores": np.round(zs, 6).tolist(),
        "zeroshot_probs": [np.round(softmax(r), 6).tolist() for r in zs],
        "zeroshot_ranking": [ranking(r) for r in zs],
        "search_ranking": [ranking(r) for r in search],
    }


def write_golden(folder: Path, model, manifest: dict | None = None) -> Path:
    g = build_golden(folder, model, manifest)
    path = Path(folder) / GOLDEN_FILE
    tmp = path.with_name(f".{GOLDEN_FILE}.tmp")
    tmp.write_text(json.dumps(g, allow_nan=False) + "\n")
    tmp.replace(path)
    return path
