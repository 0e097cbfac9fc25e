"""Hugging Face models as adapters: `hf:DIR`, a local folder written by `save_pretrained` holding
config.json, the weights (model.safetensors) and the tokenizer files; `CLIPModel` and `SiglipModel`.
Nothing is downloaded (`local_files_only`), and only safetensors weights are read.

The towers are the model's own modules, called in an export-friendly order:
- image: normalization in the graph, the vision model, the projection (CLIP) or the attention-pool
  head (SigLIP), L2 norm;
- text: token + position embeddings added directly (no `position_ids[:, :T]` slice, whose alias
  node coremltools cannot convert), the encoder layers with a static causal mask buffer (CLIP; SigLIP
  has none), the final norm, the first end-of-text token (CLIP, one-hot readout) or the last token
  (SigLIP), the projection.
Attention runs in Hugging Face's "eager" form; `converters.rewrites.export_form` swaps it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..errors import CheckpointError, ConfigError
from .adapter import DualEncoder, EotReadout, PixelNorm, Preprocess, Tower
from .sources import register_source

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer.model")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class HfTokenizer:
    """A Hugging Face tokenizer from the model folder -> int32 ids (N, context_length), padded to
    the full length as the towers take them (SigLIP is trained that way)."""

    def __init__(self, inner, context_length: int, folder: Path):
        self.inner, self.context_length, self.folder = inner, int(context_length), folder
        self.eot_id = int(inner.eos_token_id) if inner.eos_token_id is not None else None
        self.pad_id = int(inner.pad_token_id) if inner.pad_token_id is not None else 0
        bos = getattr(inner, "bos_token_id", None)
        self.sot_id = int(bos) if bos is not None else -1

    def __call__(self, texts) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            return np.zeros((0, self.context_length), np.int32)
        enc = self.inner(list(texts), padding="max_length", max_length=self.context_length, truncation=True,
                         return_tensors="np")
        return np.ascontiguousarray(enc["input_ids"], dtype=np.int32)

    def describe(self) -> dict:
        return {"kind": "hf", "class": type(self.inner).__name__, "vocab_size": int(len(self.inner)),
                "context_length": self.context_length, "pad_id": self.pad_id, "sot_id": self.sot_id,
                "eot_id": self.eot_id if self.eot_id is not None else -1}

    def files(self, out_dir: str | Path) -> dict[str, str]:
        """tokenizer.json (and the files the tokenizer saves beside it) under OUT/tokenizer/."""
        dst = Path(out_dir) / "tokenizer"
        dst.mkdir(parents=True, exist_ok=True)
        self.inner.save_pretrained(str(dst))
        main = dst / "tokenizer.json"
        return {"tokenizer_file": str(main.relative_to(out_dir)) if main.is_file() else "tokenizer"}


class HfImage(nn.Module):
    def __init__(self, vision: nn.Module, projection: nn.Module | None):
        super().__init__()
        self.vision, self.projection = vision, projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.vision(pixel_values=x).pooler_output
        return self.projection(pooled) if self.projection is not None else pooled


class HfText(nn.Module):
    """A CLIP / SigLIP text model as int32 ids (B, T) at the full context length -> features."""

    def __init__(self, text_model: nn.Module, projection: nn.Module | None, causal: bool, eot_id: int | None):
        super().__init__()
        emb = text_model.embeddings
        self.token_embedding, self.position_embedding = emb.token_embedding, emb.position_embedding
        self.layers = text_model.encoder.layers
        self.final_layer_norm = text_model.final_layer_norm
        self.head = getattr(text_model, "head", None)  # SigLIP's projection lives in the text model
        self.projection = projection
        t = int(self.position_embedding.weight.shape[0])
        if causal:
            self.register_buffer("attn_mask", torch.full((t, t), float("-inf")).triu(1), persistent=False)
        else:
            self.attn_mask = None
        self.readout = EotReadout(t, eot_id, int(self.token_embedding.num_embeddings)) if causal else None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(ids) + self.position_embedding.weight
        mask = self.attn_mask[None, None] if self.attn_mask is not None else None
        for layer in self.layers:
            x = layer(x, mask)
            x = x[0] if isinstance(x, tuple) else x
        x = self.final_layer_norm(x)
        pooled = self.readout(ids, x) if self.readout is not None else x[:, -1]
        if self.head is not None:
            pooled = self.head(pooled)
        return self.projection(pooled) if self.projection is not None else pooled


def _preprocess(folder: Path, image_size: int, squash: bool) -> Preprocess:
    path = folder / "preprocessor_config.json"
    cfg = json.loads(path.read_text()) if path.is_file() else {}
    if not cfg:
        log.warning("%s has no preprocessor_config.json; using %s mean/std at %d px", folder,
                    "SigLIP's" if squash else "CLIP's", image_size)
    mean = tuple(cfg.get("image_mean") or ((0.5, 0.5, 0.5) if squash else CLIP_MEAN))
    std = tuple(cfg.get("image_std") or ((0.5, 0.5, 0.5) if squash else CLIP_STD))
    return Preprocess(size=(image_size, image_size), mean=mean, std=std,
                      resize="squash" if squash else "center_crop",
                      interpolation={2: "bilinear", 3: "bicubic"}.get(cfg.get("resample"), "bicubic"))


_SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                       "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
                       "U8": torch.uint8, "BOOL": torch.bool}


def _check_weights(folder: str, path: Path, model: nn.Module, loading: dict) -> None:
    """What transformers lets through, refused as the other sources' strict loading refuses it: a
    weight missing from the files (transformers fills it with random values), a tensor of the wrong
    dtype kind (it casts an integer tensor into a float weight), NaN / Inf. Keys the model does not
    use are logged (transformers ignores them)."""
    from safetensors import safe_open

    from ..checkpoint import dtype_problem

    fix = "check that config.json and the weights come from the same save_pretrained, or save them again"
    ignorable = ("position_ids",)  # a non-persistent buffer that older transformers versions stored
    missing = sorted(k for k in loading.get("missing_keys") or () if not k.endswith(ignorable))
    if missing:
        raise CheckpointError(f"hf:{folder}: the weights lack {len(missing)} key(s) of the {type(model).__name__} "
                              f"{missing[:5]}{' ...' if len(missing) > 5 else ''} (transformers would fill them with "
                              f"random values); {fix}")
    unexpected = sorted(k for k in loading.get("unexpected_keys") or () if not k.endswith(ignorable))
    if unexpected:
        log.warning("hf:%s: %d key(s) in the weights are not used by the %s and are ignored: %s", folder,
                    len(unexpected), type(model).__name__, unexpected[:5])
    expected = model.state_dict()
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for k in f.keys():
                if k not in expected:
                    continue
                name = f.get_slice(k).get_dtype()
                found = _SAFETENSORS_DTYPES.get(name, torch.float32 if name.startswith("F") else None)
                problem = dtype_problem(k, found, expected[k].dtype) if found is not None else None
                if problem:
                    raise CheckpointError(f"hf:{folder}: {file.name}: {problem}; {fix}")
    for k, t in expected.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"hf:{folder}: {k!r} holds NaN or Inf values; re-save the weights from a "
                                  f"healthy model")


@register_source("hf")
def load_hf(folder: str, weights=None) -> DualEncoder:
    """hf:DIR, a local Hugging Face CLIPModel / SiglipModel folder (config.json, model.safetensors, tokenizer)."""
    path = Path(folder)
    if weights is not None:
        raise ConfigError("hf:DIR reads its weights from the folder; drop --weights")
    if not (path / "config.json").is_file():
        raise ConfigError(f"hf:{folder}: no config.json in {path}; pass a folder written by save_pretrained")
    if not any(path.glob("*.safetensors")):
        raise CheckpointError(f"hf:{folder}: no .safetensors weights in {path} (only safetensors are read; convert "
                              f"a pytorch_model.bin with save_pretrained(safe_serialization=True))")
    from ._open_clip import ensure_torchvision

    ensure_torchvision()  # transformers' SigLIP imports torchvision
    try:
        import transformers
    except ImportError as e:
        raise ConfigError(f"hf: models need transformers ({e}); pip install 'torch==2.13.0' 'transformers==5.23.*'") from e
    kind = json.loads((path / "config.json").read_text()).get("model_type")
    classes = {"clip": transformers.CLIPModel, "siglip": transformers.SiglipModel}
    if kind not in classes:
        raise ConfigError(f"hf:{folder}: model_type {kind!r} is not supported; supported: {', '.join(classes)}")
    try:
        model, loading = classes[kind].from_pretrained(str(path), local_files_only=True, use_safetensors=True,
                                                       attn_implementation="eager", torch_dtype=torch.float32,
                                                       output_loading_info=True)
    except Exception as e:
        raise CheckpointError(f"hf:{folder}: cannot load the {kind} weights ({type(e).__name__}: {e}); check that "
                              f"config.json and the weights come from the same save_pretrained") from e
    _check_weights(folder, path, model, loading)
    model.eval()
    # transformers builds an empty 3-token tokenizer when the files are missing: refuse that here.
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise ConfigError(f"hf:{folder}: no usable tokenizer files in {path} (none of {', '.join(TOKENIZER_FILES)}); "
                          f"save the tokenizer into the folder (tokenizer.save_pretrained(DIR))")
    try:
        inner = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as e:
        raise ConfigError(f"hf:{folder}: no usable tokenizer files in {path} ({type(e).__name__}: {e}); save the "
                          f"tokenizer into the folder (tokenizer.save_pretrained(DIR))") from e
    siglip = kind == "siglip"
    tcfg, vcfg = model.config.text_config, model.config.vision_config
    if not tcfg.vocab_size // 2 <= len(inner) <= tcfg.vocab_size:
        raise ConfigError(f"hf:{folder}: the tokenizer has {len(inner)} tokens but the text model's vocabulary has "
                          f"{tcfg.vocab_size}: the tokenizer files do not belong to this model")
    tokenizer = HfTokenizer(inner, tcfg.max_position_embeddings, path)
    if not siglip and tokenizer.eot_id is None:
        raise ConfigError(f"hf:{folder}: the tokenizer has no end-of-text token, which CLIP's text readout needs")
    preprocess = _preprocess(path, int(vcfg.image_size), squash=siglip)
    n_img, n_txt = len(model.vision_model.encoder.layers), len(model.text_model.encoder.layers)
    img_points = {f"blocks.{i}": f"body.vision.encoder.layers.{i}" for i in range(n_img)}
    img_points["ln_post"] = "body.vision.post_layernorm"
    image = Tower(HfImage(model.vision_model, None if siglip else model.visual_projection), img_points,
                  pre=PixelNorm(preprocess.mean, preprocess.std))
    txt_points = {f"blocks.{i}": f"body.layers.{i}" for i in range(n_txt)}
    txt_points["ln_final"] = "body.final_layer_norm"
    text = Tower(HfText(model.text_model, None if siglip else model.text_projection, causal=not siglip,
                        eot_id=tokenizer.eot_id), txt_points)
    with torch.no_grad():
        embed_dim = int(text(torch.from_numpy(tokenizer(["a"]))).shape[-1])
    return DualEncoder(name=f"hf:{path.resolve()}", image=image, text=text, preprocess=preprocess, tokenizer=tokenizer,
                       logit_scale=float(model.logit_scale.detach().exp().clamp(max=100.0)), embed_dim=embed_dim,
                       family="hf", weights=str(path.resolve()), info={"architecture": type(model).__name__})
