"""The procedural world: scenes of one to three coloured shapes and the captions that describe them.

A scene is a small, frozen description (objects with shape, colour, size, position, rotation and
colour jitter, plus a background seed); `render.py` turns it into pixels and this module turns it
into text. Everything is a pure function of a numpy Generator, so a split is a pure function of
(seed, split, index).

Coordinates are fractions of the image side (x to the right, y down), so scenes render at any size.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

# Hue in degrees of each colour word; the rendered hue is jittered by +-HUE_JITTER.
COLORS: dict[str, float] = {
    "red": 0.0, "orange": 28.0, "yellow": 56.0, "green": 122.0,
    "cyan": 185.0, "blue": 228.0, "purple": 275.0, "pink": 322.0,
}
HUE_JITTER = 9.0
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross", "star")
# Circumradius range of each size word, as a fraction of the image side (64 px: 3.8-5.8, 7.4-9.3, 10.9-12.8).
SIZES: dict[str, tuple[float, float]] = {
    "small": (0.060, 0.090), "medium": (0.115, 0.145), "large": (0.170, 0.200),
}
R_MAX = max(hi for _, hi in SIZES.values())
# Single-object scenes: a 3x3 grid of cells; centres are drawn inside a cell's core range so the
# class is never ambiguous (gaps between the ranges), and every object stays inside the frame.
_AXIS_RANGES = ((0.20, 0.30), (0.42, 0.58), (0.70, 0.80))
_ROWS, _COLS = ("top", "", "bottom"), ("left", "", "right")
POSITIONS: tuple[str, ...] = tuple(
    (f"{r} {c}".strip() or "center") for r in _ROWS for c in _COLS
)
# How a position is said in a caption ("a small red circle in the top left").
POSITION_PHRASES: dict[str, str] = {
    "top left": "in the top left", "top": "at the top", "top right": "in the top right",
    "left": "on the left", "center": "in the center", "right": "on the right",
    "bottom left": "in the bottom left", "bottom": "at the bottom", "bottom right": "in the bottom right",
}
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
_INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
# Objects per scene and how often each count is drawn.
OBJECT_COUNTS = (1, 2, 3)
OBJECT_COUNT_P = (0.35, 0.40, 0.25)
# Multi-object placement: a relation needs a clear dominant axis, objects must not touch.
_REL_MIN_OFFSET = 0.15
_REL_DOMINANCE = 1.5
_GAP = 0.03
_MAX_TRIES = 500

# Words the captions and prompts use besides the attribute values (the tokenizer vocabulary).
FUNCTION_WORDS: tuple[str, ...] = ("a", "an", "and", "object", "of", "in", "at", "on", "the")


@dataclass(frozen=True)
class Obj:
    shape: str
    color: str
    size: str
    x: float  # centre, fraction of width
    y: float  # centre, fraction of height
    r: float  # circumradius, fraction of the side
    angle: float  # rotation in degrees
    hsv: tuple[float, float, float]  # rendered colour (hue deg, sat, val), jittered around the word

    def describe(self, size: bool = True, color: bool = True, shape: bool = True) -> str:
        words = [self.size if size else "", self.color if color else "", self.shape if shape else "object"]
        return " ".join(w for w in words if w)


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    relation: str | None  # how objects[0] stands to objects[1]; None for one object
    position: str | None  # grid cell of the single object; None for several
    render_seed: int  # background, distractors and noise

    @property
    def caption(self) -> str:
        """The canonical caption: every attribute, fixed order. Two scenes with the same
        canonical caption are the same as far as language can tell."""
        return caption_of(self)


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def caption_of(scene: Scene, drop: frozenset[str] = frozenset(), flip: bool = False,
               drop_third: bool = False, no_relation: bool = False) -> str:
    """Render a caption. `drop` removes attribute words ("size", "color", "shape", "position"),
    `flip` states the relation from the other object ("B right of A"), `drop_third` leaves the
    third object out, `no_relation` says "A and B". Every variant stays true of the scene."""
    keep = {k: k not in drop for k in ("size", "color", "shape")}
    objs = scene.objects
    if len(objs) == 1:
        text = _article(objs[0].describe(**keep))
        if "position" not in drop:
            text += " " + POSITION_PHRASES[scene.position]
        return text
    a, b = _article(objs[0].describe(**keep)), _article(objs[1].describe(**keep))
    if no_relation:
        text = f"{a} and {b}"
    elif flip:
        text = f"{b} {_INVERSE[scene.relation]} {a}"
    else:
        text = f"{a} {scene.relation} {b}"
    if len(objs) == 3 and not drop_third:
        text += " and " + _article(objs[2].describe(**keep))
    return text


def random_caption(scene: Scene, rng: np.random.Generator, focus: float = 0.0) -> str:
    """A random true caption of the scene: training-time text augmentation.

    `focus` > 0: with that probability the caption leaves out colour (and, half the time, size)
    but keeps shape and position / relation, so that in a batch only shape and where things are
    tell the caption's image from the others (colour alone separates most pairs otherwise)."""
    if focus > 0 and rng.random() < focus:
        drop = frozenset({"color"} | ({"size"} if rng.random() < 0.5 else set()))
        return caption_of(scene, drop=drop, flip=bool(rng.random() < 0.5), drop_third=bool(rng.random() < 0.3))
    u = rng.random()
    if u < 0.35:
        return scene.caption
    facts = ("size", "color", "shape") + (("position",) if len(scene.objects) == 1 else ())
    if u < 0.55:  # one fact alone: "a red object", "a circle", "an object in the top left"
        keep = facts[rng.integers(len(facts))]
        drop = frozenset(f for f in ("size", "color", "shape", "position") if f != keep)
    else:
        drop = frozenset(k for k in ("size", "color", "shape", "position") if rng.random() < 0.3)
        if {"size", "color", "shape"} <= drop:  # keep at least one object attribute
            drop = drop - {("size", "color", "shape")[rng.integers(3)]}
    return caption_of(scene, drop=drop, flip=bool(rng.random() < 0.5),
                      drop_third=bool(rng.random() < 0.3), no_relation=bool(rng.random() < 0.1))


def true_captions(scene: Scene) -> frozenset[str]:
    """Every caption `caption_of` can say of the scene (any facts dropped, the relation stated
    either way, the third object left out, "and" instead of the relation). A training caption is
    true of a scene exactly when it is in this set, so a batch's caption/image truth table is
    exact: "a circle" is true of every one-object scene with a circle, not only of its own image."""
    facts = ("size", "color", "shape", "position")
    out = set()
    for mask in range(16):
        drop = frozenset(f for b, f in enumerate(facts) if mask >> b & 1)
        if len(scene.objects) == 1:
            out.add(caption_of(scene, drop=drop))
            continue
        for flip in (False, True):
            for drop_third in (False, True):
                for no_relation in (False, True):
                    out.add(caption_of(scene, drop=drop, flip=flip, drop_third=drop_third, no_relation=no_relation))
    return frozenset(out)


def relation_between(a: Obj, b: Obj) -> str | None:
    """How `a` stands to `b`, or None when neither axis clearly dominates."""
    dx, dy = b.x - a.x, b.y - a.y
    if abs(dx) >= _REL_MIN_OFFSET and abs(dx) >= _REL_DOMINANCE * abs(dy):
        return "left of" if dx > 0 else "right of"
    if abs(dy) >= _REL_MIN_OFFSET and abs(dy) >= _REL_DOMINANCE * abs(dx):
        return "above" if dy > 0 else "below"
    return None


def _sample_obj(rng: np.random.Generator, x: float = 0.5, y: float = 0.5, *, shape=None,
                color=None, size=None) -> Obj:
    shape = shape or SHAPES[rng.integers(len(SHAPES))]
    color = color or list(COLORS)[rng.integers(len(COLORS))]
    size = size or list(SIZES)[rng.integers(len(SIZES))]
    lo, hi = SIZES[size]
    hue = (COLORS[color] + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 360.0
    hsv = (float(hue), float(rng.uniform(0.6, 1.0)), float(rng.uniform(0.6, 1.0)))
    return Obj(shape, color, size, float(x), float(y), float(rng.uniform(lo, hi)),
               float(rng.uniform(-12.0, 12.0)), hsv)


def _with_size(rng: np.random.Generator, o: Obj, size: str) -> Obj:
    return dataclasses.replace(o, size=size, r=float(rng.uniform(*SIZES[size])))


def _overlaps(objs) -> bool:
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            a, b = objs[i], objs[j]
            if np.hypot(a.x - b.x, a.y - b.y) < a.r + b.r + _GAP:
                return True
    return False


def _distinct(objs) -> bool:
    """Objects must be tellable apart by words: distinct (colour, shape) pairs."""
    keys = [(o.color, o.shape) for o in objs]
    return len(set(keys)) == len(keys)


def sample_scene(rng: np.random.Generator, n_objects: int | None = None) -> Scene:
    """Draw one scene. `n_objects` forces the count (1-3); otherwise it is drawn."""
    n = int(n_objects or rng.choice(OBJECT_COUNTS, p=OBJECT_COUNT_P))
    if n not in OBJECT_COUNTS:
        raise ValueError(f"n_objects must be one of {OBJECT_COUNTS}, got {n}")
    render_seed = int(rng.integers(2**31 - 1))
    if n == 1:
        cell = int(rng.integers(len(POSITIONS)))
        ry, rx = _AXIS_RANGES[cell // 3], _AXIS_RANGES[cell % 3]
        obj = _sample_obj(rng, rng.uniform(*rx), rng.uniform(*ry))
        return Scene((obj,), None, POSITIONS[cell], render_seed)
    for _ in range(_MAX_TRIES):
        objs = []
        for _ in range(n):
            xy = rng.uniform(R_MAX, 1.0 - R_MAX, size=2)
            objs.append(_sample_obj(rng, xy[0], xy[1]))
        rel = relation_between(objs[0], objs[1])
        if rel and not _overlaps(objs) and _distinct(objs):
            return Scene(tuple(objs), rel, None, render_seed)
    raise RuntimeError("could not place objects; the world's geometry constants are inconsistent")


def _valid(scene: Scene) -> bool:
    if len(scene.objects) == 1:
        return True
    return (not _overlaps(scene.objects) and _distinct(scene.objects)
            and len({o.describe() for o in scene.objects}) == len(scene.objects)
            and relation_between(scene.objects[0], scene.objects[1]) == scene.relation)


def hard_negatives(scene: Scene, rng: np.random.Generator, k: int,
                   prefer_binding: bool = True) -> list[tuple[str, Scene]]:
    """Up to `k` scenes that differ from `scene` in exactly one fact, as (kind, scene) pairs.

    Kinds: one attribute of one object changed (`color`, `shape`, `size`, `position`), two
    objects' attributes swapped (`swap_color`, `swap_shape`, `swap_size`: the binding of
    attributes to objects), or the relation reversed (`relation`, by swapping the two objects'
    places). Each negative renders with the same background and noise as the original, and its
    canonical caption differs from the original's, so it is false of the original image.

    `prefer_binding=True` (the evaluation tasks) puts binding and relation negatives first;
    `False` (training) deals the kinds round-robin in random order, so every fact gets contrasted.
    """
    objs = list(scene.objects)
    cands: list[tuple[str, Scene]] = []

    def add(kind: str, new_objs, **changes):
        s = dataclasses.replace(scene, objects=tuple(new_objs), **changes)
        if _valid(s):
            cands.append((kind, s))

    for i, o in enumerate(objs):
        for attr, values in (("color", list(COLORS)), ("shape", list(SHAPES)), ("size", list(SIZES))):
            for v in values:
                if v == getattr(o, attr):
                    continue
                new = list(objs)
                if attr == "size":
                    new[i] = _with_size(rng, o, v)
                elif attr == "color":
                    hue = (COLORS[v] + (o.hsv[0] - COLORS[o.color] + 180) % 360 - 180) % 360
                    new[i] = dataclasses.replace(o, color=v, hsv=(hue, o.hsv[1], o.hsv[2]))
                else:
                    new[i] = dataclasses.replace(o, shape=v)
                add(attr, new)
    if len(objs) == 1:
        o = objs[0]
        for cell, pos in enumerate(POSITIONS):
            if pos != scene.position:
                ry, rx = _AXIS_RANGES[cell // 3], _AXIS_RANGES[cell % 3]
                moved = dataclasses.replace(o, x=float(rng.uniform(*rx)), y=float(rng.uniform(*ry)))
                add("position", [moved], position=pos)
    else:
        a, b = objs[0], objs[1]
        for attr in ("color", "shape", "size"):
            if getattr(a, attr) != getattr(b, attr):
                fields = ("color", "hsv") if attr == "color" else ("size", "r") if attr == "size" else ("shape",)
                na = dataclasses.replace(a, **{f: getattr(b, f) for f in fields})
                nb = dataclasses.replace(b, **{f: getattr(a, f) for f in fields})
                add(f"swap_{attr}", [na, nb, *objs[2:]])
        na, nb = dataclasses.replace(a, x=b.x, y=b.y), dataclasses.replace(b, x=a.x, y=a.y)
        add("relation", [na, nb, *objs[2:]], relation=_INVERSE[scene.relation])

    # Unique by meaning; prefer binding/relation negatives (the hard ones), then random others.
    seen, unique = {scene.caption}, []
    for kind, s in cands:
        if s.caption not in seen:
            seen.add(s.caption)
            unique.append((kind, s))
    if not prefer_binding:
        by_kind: dict[str, list] = {}
        for c in unique:
            by_kind.setdefault(c[0], []).append(c)
        pools = [by_kind[kind] for kind in sorted(by_kind)]
        pools = [[p[i] for i in rng.permutation(len(p))] for p in (pools[j] for j in rng.permutation(len(pools)))]
        dealt = []
        while len(dealt) < k and any(pools):
            dealt += [p.pop() for p in pools if p]
        return dealt[:k]
    hard = [c for c in unique if c[0].startswith("swap_") or c[0] == "relation"]
    rest = [c for c in unique if c not in hard]
    order = rng.permutation(len(rest))
    return (hard + [rest[i] for i in order])[:k]


def vocabulary_words() -> list[str]:
    """Every word a caption or prompt of this world can contain, sorted."""
    words = set(FUNCTION_WORDS) | set(SHAPES) | set(SIZES)
    for group in (COLORS, RELATIONS, POSITION_PHRASES.values()):
        for phrase in group:
            words.update(phrase.split())
    return sorted(words)
