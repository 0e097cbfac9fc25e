import hashlib

import numpy as np
import pytest

from mobile_sdk.data import WorldDataset, build_tasks, hard_negatives, render, scene_at
from mobile_sdk.data.tasks import CHANCE, TASKS, score, summarize
from mobile_sdk.data.world import POSITIONS, RELATIONS, caption_of, random_caption, relation_between


def test_deterministic():
    a, b = WorldDataset("val", length=5), WorldDataset("val", length=5)
    for i in range(5):
        assert (a[i][0] == b[i][0]).all() and a[i][1] == b[i][1]
    assert not (a[0][0] == a[1][0]).all()
    t1, t2 = build_tasks(n=5), build_tasks(n=5)
    assert (t1["zeroshot_color"].images == t2["zeroshot_color"].images).all()
    assert t1["retrieval"].captions == t2["retrieval"].captions


def test_seed_changes_the_world():
    assert WorldDataset("test", seed=0, length=1)[0][1] != WorldDataset("test", seed=1, length=1)[0][1] or \
        not (WorldDataset("test", seed=0, length=1)[0][0] == WorldDataset("test", seed=1, length=1)[0][0]).all()


def test_splits_never_share_an_image():
    def hashes(split, n):
        return {hashlib.sha256(WorldDataset(split, length=n)[i][0].tobytes()).hexdigest() for i in range(n)}

    sets = {s: hashes(s, 150) for s in ("train", "val", "test", "calibration")}
    for s1 in sets:
        assert len(sets[s1]) == 150
        for s2 in sets:
            if s1 < s2:
                assert not sets[s1] & sets[s2], (s1, s2)
    tasks = build_tasks(n=50)
    task_hashes = {hashlib.sha256(img.tobytes()).hexdigest() for img in tasks["zeroshot_shape"].images}
    assert not task_hashes & sets["train"]


def test_image_format_and_size():
    img, cap = WorldDataset("train", image_size=96, length=1)[0]
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8 and isinstance(cap, str)


def test_scene_invariants():
    counts = {1: 0, 2: 0, 3: 0}
    for i in range(300):
        scene, rng = scene_at("train", i)
        counts[len(scene.objects)] += 1
        for o in scene.objects:
            assert o.r <= o.x <= 1 - o.r and o.r <= o.y <= 1 - o.r
        if len(scene.objects) == 1:
            assert scene.position in POSITIONS and scene.relation is None
        else:
            assert relation_between(*scene.objects[:2]) == scene.relation in RELATIONS
            assert len({(o.color, o.shape) for o in scene.objects}) == len(scene.objects)
        cap = random_caption(scene, rng)
        assert cap and set(cap.split()) <= set(scene.caption.split()) | {"object", "an", "a", "and"} | \
            {w for r in RELATIONS for w in r.split()}
    assert all(c > 30 for c in counts.values()), counts


def test_flipped_caption_is_the_same_fact():
    for i in range(50):
        scene, _ = scene_at("train", i, n_objects=2)
        a, b = scene.objects
        flipped = caption_of(scene, flip=True)
        assert flipped.startswith("a " + b.describe()) or flipped.startswith("an " + b.describe())


def test_hard_negatives_are_false_and_share_the_background():
    kinds = set()
    for i in range(200):
        scene, rng = scene_at("test", i)
        negs = hard_negatives(scene, rng, 7)
        assert len(negs) == 7
        caps = [s.caption for _, s in negs]
        assert scene.caption not in caps and len(set(caps)) == 7
        for kind, neg in negs:
            kinds.add(kind)
            assert neg.render_seed == scene.render_seed
            diff = render(neg) != render(scene)
            assert diff.any(), kind  # the change is visible
            assert diff.mean() < 0.5  # ... and only local: same background and noise
    assert {"color", "shape", "size", "position", "relation", "swap_color", "swap_shape"} <= kinds


def test_training_negatives_cover_every_kind_in_turn():
    from collections import Counter

    seen = Counter()
    for i in range(100):
        scene, rng = scene_at("train", i)
        negs = hard_negatives(scene, rng, 4, prefer_binding=False)
        kinds = [k for k, _ in negs]
        available = {k for k, _ in hard_negatives(scene, rng, 99, prefer_binding=False)}
        assert len(set(kinds)) == min(4, len(available))  # round-robin: kinds repeat only when exhausted
        assert scene.caption not in {s.caption for _, s in negs}
        seen.update(kinds)
    # position (one object) and relation (two or more) negatives are dealt, not crowded out
    assert seen["position"] > 20 and seen["relation"] > 20, seen


def test_dataset_hard_negatives_are_false_captions():
    ds = WorldDataset("train", augment=True, hard_negatives=3)
    for i in range(30):
        image, caption, negs = ds[i]
        scene, _ = scene_at("train", i)
        assert len(negs) == 3 and scene.caption not in negs and caption not in negs


def test_tasks_build_and_perfect_encoders_score_one(tokenizer):
    sets = build_tasks(n=20)
    assert set(sets) == {t for t in TASKS if t.startswith("zeroshot")} | {"retrieval"}
    # An oracle that embeds an image as its true caption scores 100%; a constant one scores ~0.
    lookup = {}
    for task in ("zeroshot_color", "zeroshot_shape", "zeroshot_size", "zeroshot_position", "zeroshot_relation"):
        s = sets[task]
        for img, label, prompts in zip(s.images, s.labels, s.prompts):
            lookup[img.tobytes()] = prompts[label]
    r = sets["retrieval"]
    for img, caps in zip(r.images, r.captions):
        lookup[img.tobytes()] = caps[0]
    vocab = {}

    def enc_text(ids):
        out = np.zeros((len(ids), 4096), np.float32)
        for k, row in enumerate(ids):
            out[k, vocab.setdefault(row.tobytes(), len(vocab))] = 1
        return out

    def enc_image(pixels):
        texts = [lookup.get(p.tobytes(), "") for p in pixels]
        return enc_text(tokenizer(texts))

    res = score(sets, enc_image, enc_text, tokenizer)
    assert res == {t: 1.0 for t in TASKS}
    assert summarize(res) == {"zeroshot_mean": 1.0, "retrieval_mean": 1.0}
    assert all(0 < CHANCE[t] < 1 for t in CHANCE)


def test_twin_pairs_differ_in_one_fact_and_share_the_background():
    ds = WorldDataset("train", augment=True, hard_negatives=1, pairs=1.0)
    for j in range(0, 40, 2):
        (img_a, cap_a, _), (img_b, cap_b, _) = ds[j], ds[j + 1]
        base, _ = scene_at("train", j)
        assert cap_a == base.caption and cap_b != cap_a  # full captions, and they differ
        diff = img_a != img_b
        assert diff.any() and diff.mean() < 0.5  # a local change on the same background
    assert all(scene_at("train", i)[0].caption == WorldDataset("train")[i][1] for i in range(4))


def test_true_captions_hold_every_training_caption_and_no_negative():
    from mobile_sdk.data.world import true_captions

    ds = WorldDataset("train", augment=True, hard_negatives=3, truth=True)
    for i in range(40):
        image, caption, negs, truth = ds[i]
        assert caption in truth  # the sampled caption is one of the true ones
        assert not set(negs) & truth  # a hard negative is never true of the image
        scene, rng = scene_at("train", i)
        assert scene.caption in true_captions(scene)
        for _ in range(5):
            assert random_caption(scene, rng) in true_captions(scene)
