"""open_clip models as adapters: `open_clip:ARCH` (an architecture open_clip knows, such as ViT-B-32,
ViT-B-16 or MobileCLIP2-S0) or `open_clip:CONFIG.json` (a model config of open_clip's own format:
embed_dim, vision_cfg, text_cfg), with `--weights` an open_clip state dict (safetensors, or a torch
file read with `weights_only=True`; nothing is unpickled, nothing is downloaded).

The towers take what an app has: the image tower [0, 255] pixels at the model's input size with
the model's mean / std inside the graph; the text tower int32 ids of the CLIP BPE tokenizer. The
text tower's readout is rewritten for export: open_clip pools the token at `ids.argmax()` (the
end-of-text token has the largest id), a gather that LiteRT and XNNPACK do not take; here it is a
one-hot (ids == eot) row times the tokens, the same value.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..errors import CheckpointError, ConfigError
from .adapter import DualEncoder, EotReadout, PixelNorm, Preprocess, Tower
from .sources import register_source

log = logging.getLogger(__name__)


def ensure_torchvision() -> None:
    """Let `import torchvision` (which open_clip and timm need) work beside the CPU torch wheel.

    PyPI's torchvision for torch 2.13 is a CUDA build whose compiled ops do not load beside the CPU
    torch; its import then fails while registering fake kernels for `torchvision::nms` / `qnms`.
    Those ops (detection NMS) are never used by CLIP towers: their schemas are declared here so the
    Python part imports. When torchvision's own extension loads, nothing is declared."""
    if "torchvision" in sys.modules:
        return
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return
    libs = sorted(Path(spec.origin).parent.glob("_C*.so"))
    try:
        if libs:
            torch.ops.load_library(str(libs[0]))
            return
    except (OSError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        try:
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:  # already declared
            pass
    ensure_torchvision._lib = lib  # keep the registration alive


def import_open_clip():
    ensure_torchvision()
    try:
        import open_clip
    except ImportError as e:
        raise ConfigError(f"open_clip models need the open_clip package ({e}); install it in the same pip call as the "
                          f"torch pin: pip install 'torch==2.13.0' 'open_clip_torch==3.3.0' 'timm==1.0.31'") from e
    return open_clip


# --------------------------------------------------------------------------- tokenizer
class ClipBpeTokenizer:
    """open_clip's CLIP BPE tokenizer (its vocabulary ships inside the open_clip package) -> int32
    ids (N, context_length): <start_of_text> BPE tokens <end_of_text>, zero-padded, truncated to
    keep <end_of_text> last."""

    def __init__(self, inner, bpe_path: str | Path):
        self.inner = inner
        self.context_length = int(inner.context_length)
        self.bpe_path = Path(bpe_path)
        self.sot_id, self.eot_id = int(inner.sot_token_id), int(inner.eot_token_id)
        self.vocab_size = len(inner.encoder)

    def __call__(self, texts) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            return np.zeros((0, self.context_length), np.int32)
        return self.inner(list(texts)).numpy().astype(np.int32)

    def describe(self) -> dict:
        return {"kind": "clip_bpe", "vocab_size": self.vocab_size, "context_length": self.context_length,
                "sot_id": self.sot_id, "eot_id": self.eot_id, "pad_id": 0, "lowercase": True,
                "clean": "whitespace (ftfy + html unescape first)"}

    def files(self, out_dir: str | Path) -> dict[str, str]:
        """The BPE merges file (gzip, as open_clip ships it): enough to reproduce the ids."""
        dst = Path(out_dir) / "bpe_simple_vocab_16e6.txt.gz"
        shutil.copyfile(self.bpe_path, dst)
        with gzip.open(dst) as f:  # fail here, not in an app, if the copy is unreadable
            f.read(64)
        return {"merges_file": dst.name}


# --------------------------------------------------------------------------- text tower
class OpenClipText(nn.Module):
    """open_clip's text encoder (the CLIP class's inline one or a TextTransformer) as int32 ids ->
    projected features, with the argmax-of-EOT gather written as a one-hot matmul."""

    def __init__(self, src: nn.Module, pool_type: str, eot_id: int):
        super().__init__()
        if getattr(src, "cls_emb", None) is not None:
            raise ConfigError("open_clip text towers with a class token (CoCa) are not supported")
        if pool_type not in ("argmax", "eos", "first", "last"):
            raise ConfigError(f"open_clip text pool type {pool_type!r} is not supported (argmax, eos, first, last)")
        self.token_embedding = src.token_embedding
        self.positional_embedding = src.positional_embedding
        self.transformer = src.transformer
        self.ln_final = src.ln_final
        proj = src.text_projection
        if isinstance(proj, nn.Parameter):  # x @ P as the Linear every converter and rewrite reads
            linear = nn.Linear(proj.shape[0], proj.shape[1], bias=False)
            linear.weight.data = proj.detach().t().contiguous()
            proj = linear
        self.text_projection = proj
        mask = getattr(src, "attn_mask", None)
        if mask is not None:
            self.register_buffer("attn_mask", mask.detach().clone(), persistent=False)
        else:
            self.attn_mask = None
        self.pool_type = pool_type
        self.readout = EotReadout(int(self.positional_embedding.shape[0]), eot_id,
                                  int(self.token_embedding.num_embeddings))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(ids) + self.positional_embedding  # ids at the full context length
        mask = self.attn_mask
        x = self.transformer(x, attn_mask=mask)
        x = self.ln_final(x)  # (B, T, C)
        if self.pool_type == "first":
            pooled = x[:, 0]
        elif self.pool_type == "last":
            pooled = x[:, -1]
        else:  # argmax / eos: the end-of-text token's features
            pooled = self.readout(ids, x)
        proj = self.text_projection
        if proj is None:
            return pooled
        return proj(pooled) if isinstance(proj, nn.Module) else pooled @ proj


def _block_points(prefix: str, blocks) -> dict[str, str]:
    return {f"blocks.{i}": f"{prefix}.{i}" for i in range(len(blocks))}


def _image_points(visual: nn.Module) -> dict[str, str]:
    if hasattr(visual, "transformer") and hasattr(visual.transformer, "resblocks"):  # open_clip ViT
        pts = _block_points("body.transformer.resblocks", visual.transformer.resblocks)
        if hasattr(visual, "ln_post"):
            pts["ln_post"] = "body.ln_post"
        return pts
    trunk = getattr(visual, "trunk", None)  # timm tower (MobileCLIP's FastViT, ConvNeXt, ...)
    if trunk is not None and hasattr(trunk, "stages"):
        return {f"stages.{i}": f"body.trunk.stages.{i}" for i in range(len(trunk.stages))}
    return {}


# --------------------------------------------------------------------------- weights
def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a torch file (`weights_only=True`: never unpickled code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}; pass an open_clip state dict (.safetensors or .pt)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            sd = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read weights {path} ({type(e).__name__}: {e}); save the state dict with "
                              f"safetensors.torch.save_file(model.state_dict(), PATH) or torch.save") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"weights {path} do not hold a state dict of tensors; save the model's state dict with "
                              f"safetensors.torch.save_file(model.state_dict(), PATH) or torch.save")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_strict(model: nn.Module, sd: dict[str, torch.Tensor], source: str, what: str) -> None:
    """Load `sd` into `model`, refusing missing / unexpected keys, shape mismatches, dtypes of the
    wrong kind (a floating-point weight must be floating point, an integer buffer integer) and
    NaN / Inf, each named, with what to do."""
    from ..checkpoint import dtype_problem

    expected = model.state_dict()
    missing = sorted(set(expected) - set(sd))
    extra = sorted(set(sd) - set(expected))
    fix = f"the weights must be a state dict of the {what} architecture"
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"unexpected {len(extra)} key(s) {extra[:5]}{' ...' if len(extra) > 5 else ''}")
        raise CheckpointError(f"{source}: {'; '.join(parts)}: {fix} (is it another architecture?)")
    for k, v in expected.items():
        t = sd[k]
        if tuple(t.shape) != tuple(v.shape):
            raise CheckpointError(f"{source}: shape mismatch for {k!r}: weights {tuple(t.shape)}, model "
                                  f"{tuple(v.shape)}; {fix}")
        problem = dtype_problem(k, t.dtype, v.dtype)
        if problem:
            raise CheckpointError(f"{source}: {problem}; {fix}")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{source}: {k!r} holds NaN or Inf values; re-export the weights from a "
                                  f"healthy model")
    model.load_state_dict({k: sd[k].to(v.dtype) for k, v in expected.items()}, strict=True)


# --------------------------------------------------------------------------- the adapter
def open_clip_adapter(model: nn.Module, arch: str, tokenizer=None, weights: str | None = None,
                      source: str | None = None) -> DualEncoder:
    """A DualEncoder over an open_clip model object (`open_clip.create_model(...)`, weights loaded).
    `source`: the spec that loads it again (default `open_clip:ARCH`)."""
    open_clip = import_open_clip()
    model = model.eval().float()
    visual = model.visual
    if not hasattr(visual, "preprocess_cfg"):
        raise ConfigError(f"open_clip model {arch}: its visual tower has no preprocess_cfg; create it with "
                          f"open_clip.create_model")
    pp = visual.preprocess_cfg
    size = pp["size"] if isinstance(pp["size"], (tuple, list)) else (pp["size"], pp["size"])
    resize = {"shortest": "center_crop", "squash": "squash", "longest": "pad"}.get(pp.get("resize_mode", "shortest"),
                                                                                  "center_crop")
    preprocess = Preprocess(size=(int(size[0]), int(size[1])), mean=tuple(float(v) for v in pp["mean"]),
                            std=tuple(float(v) for v in pp["std"]), resize=resize,
                            interpolation=pp.get("interpolation", "bicubic"))
    if hasattr(visual, "trunk"):
        # timm towers with train-time branches (MobileCLIP's FastViT / MobileOne blocks) fused into
        # their inference form, as MobileCLIP deploys them: the same function, about half the ops.
        from timm.models import reparameterize_model
        visual = reparameterize_model(visual)
    image = Tower(visual, _image_points(visual), pre=PixelNorm(preprocess.mean, preprocess.std))

    src = getattr(model, "text", model)  # CustomTextCLIP keeps a TextTransformer; CLIP holds it inline
    if not hasattr(src, "token_embedding"):
        raise ConfigError(f"open_clip model {arch}: its text tower ({type(src).__name__}) is not an open_clip "
                          f"text transformer (Hugging Face text towers are loaded with hf:DIR)")
    if tokenizer is None:
        inner = open_clip.get_tokenizer(arch) if arch in open_clip.list_models() else \
            open_clip.tokenizer.SimpleTokenizer(context_length=int(src.positional_embedding.shape[0]))
        if not isinstance(inner, open_clip.tokenizer.SimpleTokenizer):
            raise ConfigError(f"open_clip model {arch} uses the {type(inner).__name__} tokenizer; only the CLIP BPE "
                              f"tokenizer that ships inside open_clip works offline")
        tokenizer = ClipBpeTokenizer(inner, open_clip.tokenizer.default_bpe())
    pool = getattr(src, "pool_type", None) or getattr(model, "text_pool_type", "argmax")
    text_body = OpenClipText(src, pool, tokenizer.eot_id)
    text_points = _block_points("body.transformer.resblocks", text_body.transformer.resblocks)
    text_points["ln_final"] = "body.ln_final"
    text = Tower(text_body, text_points)
    proj = text_body.text_projection
    if isinstance(proj, nn.Linear):
        embed_dim = int(proj.out_features)
    else:  # no projection: the width of the final norm's output
        embed_dim = int(text_body.ln_final.normalized_shape[-1]) if proj is None else int(proj.shape[-1])
    return DualEncoder(name=source or f"open_clip:{arch}", image=image, text=text, preprocess=preprocess, tokenizer=tokenizer,
                       logit_scale=float(model.logit_scale.detach().exp().clamp(max=100.0)), embed_dim=embed_dim,
                       family="open_clip", weights=weights, info={"architecture": arch})


def resolve_arch(arch: str) -> str:
    """The open_clip model name of ARCH or CONFIG.json (registering the config with open_clip)."""
    open_clip = import_open_clip()
    name = arch
    if arch.endswith(".json"):
        cfg_path = Path(arch)
        if not cfg_path.is_file():
            raise ConfigError(f"open_clip config not found: {cfg_path}")
        open_clip.add_model_config(cfg_path)
        name = cfg_path.stem
    if name not in open_clip.list_models():
        import difflib
        close = difflib.get_close_matches(name, open_clip.list_models(), n=3)
        raise ConfigError(f"unknown open_clip architecture {name!r}"
                          f"{'; did you mean ' + ', '.join(close) + '?' if close else ''} "
                          f"(open_clip.list_models() lists them; or pass open_clip:CONFIG.json)")
    return name


def create_open_clip(arch: str) -> tuple[nn.Module, str]:
    """(a freshly initialized open_clip model of ARCH / CONFIG.json, its open_clip name)."""
    open_clip = import_open_clip()
    name = resolve_arch(arch)
    logging.getLogger().disabled = True  # open_clip logs "no pretrained weights" through the root logger
    try:
        model = open_clip.create_model(name, pretrained=None, pretrained_image=False, pretrained_text=False)
    except Exception as e:
        raise ConfigError(f"open_clip cannot build {name}: {type(e).__name__}: {e}") from e
    finally:
        logging.getLogger().disabled = False
    return model, name


class OpenClipTrainNet(nn.Module):
    """An open_clip model in training form: (pixels in [0, 255] NCHW, int ids) -> (unit image
    embeddings, unit text embeddings, exp(logit_scale)), the built-in CLIP's forward. Its state
    dict is the open_clip model's own (`model.`-prefixed), so a checkpoint is what a user brings."""

    def __init__(self, model: nn.Module, arch: str):
        super().__init__()
        pp = model.visual.preprocess_cfg
        self.model = model
        self.arch = arch
        self.pre = PixelNorm(pp["mean"], pp["std"])
        self.embed_dim = int(model.text_projection.shape[-1]) if isinstance(model.text_projection, torch.Tensor) \
            else int(model.text_projection.out_features)

    @property
    def logit_scale(self) -> nn.Parameter:
        return self.model.logit_scale

    def forward(self, images: torch.Tensor, ids: torch.Tensor):
        img = self.model.encode_image(self.pre(images), normalize=True)
        txt = self.model.encode_text(ids, normalize=True)
        return img, txt, self.model.logit_scale.exp()

    def adapter(self, source: str) -> DualEncoder:
        """The model as it is now, in the adapter contract (shares the weights; eval mode)."""
        return open_clip_adapter(self.model, self.arch, source=source)


@register_source("open_clip")
def load_open_clip(arch: str, weights: str | Path | None = None) -> DualEncoder:
    """open_clip:ARCH (or open_clip:CONFIG.json), with --weights FILE (an open_clip state dict)."""
    resolve_arch(arch)
    if weights is None:
        raise ConfigError(f"open_clip:{arch} needs its weights: pass --weights FILE (an open_clip state dict as "
                          f".safetensors, or a torch file); nothing is downloaded")
    sd = read_state_dict(weights)
    model, name = create_open_clip(arch)
    load_strict(model, sd, str(weights), f"open_clip {name}")
    source = f"open_clip:{Path(arch).resolve()}" if arch.endswith(".json") else f"open_clip:{arch}"
    return open_clip_adapter(model, name, weights=str(Path(weights).resolve()), source=source)
