"""A CLIP-style dual encoder, export-friendly by construction.

- Inputs are what an app has: float32 pixels in [0, 255], NCHW, and int32 token ids.
  Normalization ((x / 255 - mean) / std) is a per-channel affine inside the graph.
- No attention mask at all: the text tower is a bidirectional encoder over the padded sequence and
  pools the <sot> token with a slice (`x[:, :1]`), so there is no -inf, no argmax and no gather.
- Attention is written as 3-D bmm over (B*heads, T, head_dim) with separate q/k/v projections.
- Embeddings are L2-normalized as x * rsqrt(sum(x^2) + eps) (no ReduceL2 / F.normalize).
- Per-layer head counts and MLP widths are config fields, so a structurally pruned model is just
  another config.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn as nn

# Pixel statistics of the normalization folded into the image tower (CLIP's).
PIXEL_MEAN = (0.48145466, 0.4578275, 0.40821073)
PIXEL_STD = (0.26862954, 0.26130258, 0.27577711)
L2_EPS = 1e-12
POOLS = ("cls", "tokens")
TEXT_POOLS = ("sot", "tokens")


def _per_layer(value, depth: int, name: str) -> tuple[int, ...]:
    vals = (value,) * depth if isinstance(value, int) else tuple(int(v) for v in value)
    if len(vals) != depth or any(v < 1 for v in vals):
        raise ValueError(f"{name} must be a positive int or {depth} positive ints, got {value!r}")
    return vals


@dataclass(frozen=True)
class TowerConfig:
    width: int  # residual stream width
    depth: int  # transformer blocks
    heads: int | tuple[int, ...]  # attention heads, one value or one per block (pruned models)
    head_dim: int  # width of one attention head
    mlp_dim: int | tuple[int, ...]  # MLP hidden width, one value or one per block

    def __post_init__(self):
        if self.width < 1 or self.depth < 0 or self.head_dim < 1:
            raise ValueError(f"bad tower size: {self}")
        object.__setattr__(self, "heads", _per_layer(self.heads, self.depth, "heads"))
        object.__setattr__(self, "mlp_dim", _per_layer(self.mlp_dim, self.depth, "mlp_dim"))


@dataclass(frozen=True)
class VisionConfig(TowerConfig):
    image_size: int = 64  # input side in pixels (square)
    patch_size: int = 8  # ViT patch side: (image_size / patch_size)^2 patch tokens + 1 class token
    # Convolutional stem: output channels of 3x3 stride-2 conv + ReLU layers run before the patch
    # embedding, which then covers patch_size / 2**len(stem) pixels of the stem's output. Early
    # convolutions make a small ViT learn shape far faster (Xiao et al. 2021); empty = plain ViT.
    stem: tuple[int, ...] = ()
    # Stride of each stem conv (empty: 2 each). A stride-1 first layer keeps the edges of small
    # shapes (a "small" object is ~8 px across) and learns shape ~2x faster for ~4M MACs more.
    stem_strides: tuple[int, ...] = ()
    # Readout: "cls" pools a class token; "tokens" flattens the normed patch tokens into the
    # projection (no class token). With "tokens" each grid cell has its own projection weights, so
    # where things are is read off directly; a class token must first learn to attend to the object,
    # a slow phase of contrastive training that a CPU budget does not get through (docs/teacher.md).
    pool: str = "cls"
    # eps of the LayerNorm before the blocks. The stem's tokens differ in spread by orders of
    # magnitude (flat background vs objects); with the usual 1e-5 a flat token is blown up to unit
    # variance, and in a full-integer int8 graph (one scale per tensor) its few quantization steps
    # become noise at unit scale. A large eps (1.0) leaves flat tokens small: see converters/tflite.py.
    ln_pre_eps: float = 1e-5

    def __post_init__(self):
        super().__post_init__()
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        object.__setattr__(self, "stem", tuple(int(c) for c in self.stem))
        strides = tuple(int(s) for s in self.stem_strides) or (2,) * len(self.stem)
        object.__setattr__(self, "stem_strides", strides)
        if len(strides) != len(self.stem) or any(s not in (1, 2) for s in strides):
            raise ValueError(f"stem_strides {self.stem_strides}: one stride (1 or 2) per stem layer {self.stem}")
        if any(c < 1 for c in self.stem) or self.patch_size % self.stem_reduction:
            raise ValueError(f"stem {self.stem}: channels must be positive and the stem's total stride "
                             f"{self.stem_reduction} must divide patch_size {self.patch_size}")
        if self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {self.pool!r}")

    @property
    def stem_reduction(self) -> int:
        return math.prod(self.stem_strides)

    @property
    def tokens(self) -> int:
        """Patch tokens, plus the class token when pool == "cls"."""
        return (self.image_size // self.patch_size) ** 2 + (self.pool == "cls")


@dataclass(frozen=True)
class TextConfig(TowerConfig):
    vocab_size: int = 37  # rows of the token embedding (the committed vocabulary)
    context_length: int = 20  # fixed token sequence length
    # Readout: "sot" pools the <sot> token; "tokens" flattens every normed token (pads included, so
    # no mask) into the projection. With "sot" two prompts that differ in one word ("a circle", "a
    # star") start out at cosine ~0.999 (uniform attention averages 20 positions) and contrastive
    # training must escape that saddle for every attribute the images do not already separate;
    # with "tokens" the word itself reaches the embedding from the first step.
    pool: str = "sot"

    def __post_init__(self):
        super().__post_init__()
        if self.pool not in TEXT_POOLS:
            raise ValueError(f"text pool must be one of {TEXT_POOLS}, got {self.pool!r}")


@dataclass(frozen=True)
class CLIPConfig:
    vision: VisionConfig
    text: TextConfig
    embed_dim: int = 256  # shared embedding size
    init_logit_scale: float = math.log(1 / 0.07)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CLIPConfig":
        d = dict(d)
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - allowed
        if unknown:
            raise ValueError(f"unknown CLIPConfig fields {sorted(unknown)}")
        return cls(vision=VisionConfig(**d.pop("vision")), text=TextConfig(**d.pop("text")), **d)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int, head_dim: int):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.q, self.k, self.v = nn.Linear(width, inner), nn.Linear(width, inner), nn.Linear(width, inner)
        self.out = nn.Linear(inner, width)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape  # (B, T, H*D) -> (B*H, T, D)
        return x.reshape(b, t, self.heads, self.head_dim).permute(0, 2, 1, 3).reshape(b * self.heads, t, self.head_dim)

    def _merge(self, y: torch.Tensor, b: int, t: int) -> torch.Tensor:
        return y.reshape(b, self.heads, t, self.head_dim).permute(0, 2, 1, 3).reshape(b, t, self.heads * self.head_dim)

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.q(x), self.k(x), self.v(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self._project(x)
        q = self._split(q) * (self.head_dim ** -0.5)
        k, v = self._split(k), self._split(v)
        attn = torch.bmm(q, k.transpose(1, 2)).softmax(dim=-1)  # (B*H, T, T)
        y = torch.bmm(attn, v)  # (B*H, T, D)
        return self.out(self._merge(y, b, t))


class MLP(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.proj = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.act(self.fc(x)))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, width: int, heads: int, head_dim: int, mlp_dim: int):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(width), Attention(width, heads, head_dim)
        self.ln2, self.mlp = nn.LayerNorm(width), MLP(width, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


def _blocks(cfg: TowerConfig) -> nn.ModuleList:
    return nn.ModuleList(Block(cfg.width, h, cfg.head_dim, m) for h, m in zip(cfg.heads, cfg.mlp_dim))


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt((x * x).sum(dim=-1, keepdim=True) + L2_EPS)


class ImageEncoder(nn.Module):
    """(B, 3, H, W) float32 pixels in [0, 255] -> (B, embed_dim) unit-norm embeddings."""

    def __init__(self, cfg: VisionConfig, embed_dim: int):
        super().__init__()
        self.cfg = cfg
        std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
        self.register_buffer("pixel_scale", 1.0 / (255.0 * std), persistent=False)
        self.register_buffer("pixel_shift", -torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1) / std, persistent=False)
        grid = cfg.image_size // cfg.patch_size
        layers, c_in = [], 3
        for c, s in zip(cfg.stem, cfg.stem_strides):
            layers += [nn.Conv2d(c_in, c, 3, stride=s, padding=1), nn.ReLU()]
            c_in = c
        self.stem = nn.Sequential(*layers)  # empty Sequential is the identity
        k = cfg.patch_size // cfg.stem_reduction
        self.patch = nn.Conv2d(c_in, cfg.width, k, stride=k)
        self.grid = grid
        if cfg.pool == "cls":
            self.cls = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos = nn.Parameter(torch.zeros(1, cfg.tokens, cfg.width))
        self.ln_pre = nn.LayerNorm(cfg.width, eps=cfg.ln_pre_eps)
        self.blocks = _blocks(cfg)
        self.ln_post = nn.LayerNorm(cfg.width)
        readout = cfg.width * (1 if cfg.pool == "cls" else grid * grid)
        self.proj = nn.Linear(readout, embed_dim, bias=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels * self.pixel_scale + self.pixel_shift
        x = self.patch(self.stem(x)).flatten(2).transpose(1, 2)  # (B, N, C)
        if self.cfg.pool == "cls":
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.ln_pre(x + self.pos)
        for blk in self.blocks:
            x = blk(x)
        return l2_normalize(self.proj(self.ln_post(self.readout(x)).flatten(1)))

    def readout(self, x: torch.Tensor) -> torch.Tensor:
        """The tokens the projection reads: the class token, sliced (no gather), or every token in
        grid order (flattened to (B, N*C) after the final norm)."""
        return x[:, :1] if self.cfg.pool == "cls" else x


class TextEncoder(nn.Module):
    """(B, T) int32 token ids -> (B, embed_dim) unit-norm embeddings."""

    def __init__(self, cfg: TextConfig, embed_dim: int):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos = nn.Parameter(torch.zeros(1, cfg.context_length, cfg.width))
        self.blocks = _blocks(cfg)
        self.ln_final = nn.LayerNorm(cfg.width)
        readout = cfg.width * (1 if cfg.pool == "sot" else cfg.context_length)
        self.proj = nn.Linear(readout, embed_dim, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos  # (B, T, C)
        for blk in self.blocks:
            x = blk(x)
        return l2_normalize(self.proj(self.ln_final(self.readout(x)).flatten(1)))

    def readout(self, x: torch.Tensor) -> torch.Tensor:
        """The tokens the projection reads: the <sot> token, sliced (no argmax/gather), or every
        position, pads included (flattened to (B, T*C) after the final norm)."""
        return x[:, :1] if self.cfg.pool == "sot" else x


class CLIP(nn.Module):
    def __init__(self, cfg: CLIPConfig):
        super().__init__()
        self.cfg = cfg
        self.visual = ImageEncoder(cfg.vision, cfg.embed_dim)
        self.text = TextEncoder(cfg.text, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(cfg.init_logit_scale)))
        self.apply(_init_weights)
        # The image input path needs unit-scale signals (std 0.02 through three convs would leave the
        # content ~1% of the position code and training stalls): He init for the ReLU stem, Xavier
        # for the patch embedding (as MAE).
        for m in self.visual.stem:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        nn.init.xavier_uniform_(self.visual.patch.weight.view(self.visual.patch.weight.shape[0], -1))
        nn.init.normal_(self.text.pos, std=0.01)
        # With a token readout, words start well apart (std 0.3, not 0.02): the blocks' LayerNorms and
        # the uniform attention of an untrained tower otherwise wash one changed word out.
        if cfg.text.pool == "tokens":
            nn.init.normal_(self.text.tok.weight, std=0.3)
        if cfg.vision.pool == "cls":
            nn.init.normal_(self.visual.cls, std=0.01)
        with torch.no_grad():  # 2-D sin-cos start for the image positions (learnable, as in MAE)
            first = 1 if cfg.vision.pool == "cls" else 0
            self.visual.pos[0, first:] = sincos_2d(self.visual.grid, cfg.vision.width)
            self.visual.pos[0, :first] = 0.0

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.visual(pixels)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.text(ids)

    def forward(self, pixels: torch.Tensor, ids: torch.Tensor):
        """-> (image embeddings, text embeddings, logit scale (clamped exp))."""
        return self.visual(pixels), self.text(ids), self.logit_scale.exp().clamp(max=100.0)


def sincos_2d(grid: int, width: int) -> torch.Tensor:
    """(grid*grid, width) fixed 2-D sine-cosine position code, row-major like the patch tokens."""
    quarter = width // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float32) / max(1, quarter)))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32), indexing="ij")
    parts = []
    for coord in (xs.flatten(), ys.flatten()):
        ang = coord[:, None] * omega[None, :]
        parts += [ang.sin(), ang.cos()]
    code = torch.cat(parts, dim=1)
    return torch.nn.functional.pad(code, (0, width - code.shape[1]))


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, std=0.02)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
