"""The adapter contract, battery-style over the model families (timm's tests/test_models.py way):
every family's towers take app inputs and give unit embeddings equal to the family's own forward;
the export rewrites keep the function; every tower exports on every platform at fp32 with cosine
>= 0.9999 against eager on real images; bad sources give typed errors that name the problem."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mobile_sdk.errors import CheckpointError, ConfigError, ConversionError
from mobile_sdk.models.adapter import DualEncoder, as_adapter
from mobile_sdk.models.sources import list_sources, load_adapter

# Small configurations of each family's published architecture (same classes, fewer / narrower
# layers, 64 px) so the battery runs on 2 cores; the published sizes run in benchmarks/adapters.py.
OPEN_CLIP_CONFIGS = {
    # open_clip's CLIP class: ViT image tower, causal text transformer (-inf mask buffer,
    # nn.MultiheadAttention), argmax-of-EOT pooling, CLIP BPE tokenizer (ViT-B-32's layout).
    "tiny-ViT-B-32": {"embed_dim": 64, "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16,
                                                      "head_width": 32},
                      "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}},
    # MobileCLIP2-S0's layout: the real timm FastViT-MCi0 image tower (CustomTextCLIP), a text
    # transformer without causal mask.
    "tiny-MobileCLIP2-S0": {"embed_dim": 64, "custom_text": True,
                            "vision_cfg": {"timm_model_name": "fastvit_mci0", "timm_model_pretrained": False,
                                           "timm_pool": "avg", "timm_proj": "linear", "image_size": 64},
                            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2,
                                         "layers": 2, "no_causal_mask": True}},
}
HF_FAMILIES = ("hf-clip", "hf-siglip")
FAMILIES = ["builtin"] + [f"open_clip:{k}" for k in OPEN_CLIP_CONFIGS] + list(HF_FAMILIES)
PLATFORMS = ("executorch", "tflite", "coreml")


def _seeded_open_clip(name: str, folder: Path) -> tuple[str, Path]:
    """Write the config and a seeded state dict (safetensors) as a user would bring them."""
    from safetensors.torch import save_file

    from mobile_sdk.models._open_clip import import_open_clip

    open_clip = import_open_clip()
    cfg_path = folder / f"{name}.json"
    cfg_path.write_text(json.dumps(OPEN_CLIP_CONFIGS[name]))
    open_clip.add_model_config(cfg_path)
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None)
    weights = folder / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return f"open_clip:{cfg_path}", weights


def _hf_folder(kind: str, folder: Path) -> Path:
    """A Hugging Face folder as save_pretrained writes it: CLIPModel (openai ViT-B/32's layout,
    narrower) with a CLIP BPE tokenizer built from open_clip's vocabulary, or SiglipModel with a
    SentencePiece tokenizer trained here on the calibration captions."""
    import io

    from mobile_sdk.models._open_clip import ensure_torchvision, import_open_clip

    ensure_torchvision()
    import transformers

    out = folder / kind
    out.mkdir()
    small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
    vision = dict(small, image_size=64, patch_size=16)
    if kind == "hf-clip":
        bpe = import_open_clip().tokenizer.SimpleTokenizer()
        rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
        vocab = {rename.get(k, k): v for k, v in bpe.encoder.items()}
        merges = [tuple(m) for m, _ in sorted(bpe.bpe_ranks.items(), key=lambda kv: kv[1])]
        tok = transformers.CLIPTokenizer(vocab=vocab, merges=merges)
        cfg = transformers.CLIPConfig(text_config=dict(small, max_position_embeddings=77, vocab_size=49408,
                                                       bos_token_id=49406, eos_token_id=49407, pad_token_id=49407),
                                      vision_config=vision, projection_dim=48)
        model_cls = transformers.CLIPModel
    else:
        import sentencepiece as spm

        captions = [json.loads(line)["caption"] for line in
                    (Path(__file__).parents[2] / "calibration_data" / "captions.jsonl").read_text().splitlines()]
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(sentence_iterator=iter(captions), model_writer=buf, vocab_size=60,
                                       pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>", eos_piece="</s>",
                                       unk_piece="<unk>", minloglevel=2)
        (out / "spiece.model").write_bytes(buf.getvalue())
        tok = transformers.SiglipTokenizer(vocab_file=str(out / "spiece.model"), model_max_length=16)
        cfg = transformers.SiglipConfig(text_config=dict(small, max_position_embeddings=16, vocab_size=len(tok),
                                                         projection_size=64, bos_token_id=None, eos_token_id=1,
                                                         pad_token_id=1),
                                        vision_config=vision)
        model_cls = transformers.SiglipModel
    torch.manual_seed(0)
    model_cls(cfg).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, tuple[str, Path | None]]:
    folder = tmp_path_factory.mktemp("sources")
    out: dict[str, tuple[str, Path | None]] = {"builtin": ("student", None)}
    for name in OPEN_CLIP_CONFIGS:
        out[f"open_clip:{name}"] = _seeded_open_clip(name, folder)
    for kind in HF_FAMILIES:
        out[kind] = (f"hf:{_hf_folder(kind, folder)}", None)
    return out


@pytest.fixture(scope="module")
def adapters(sources) -> dict[str, DualEncoder]:
    return {k: load_adapter(spec, w) for k, (spec, w) in sources.items()}


@pytest.fixture(scope="module")
def real_inputs(adapters) -> dict[str, object]:
    """Calibration images at each model's input size and calibration captions, tokenized."""
    from mobile_sdk.exporter import prepare_inputs

    return {k: prepare_inputs(a, n=16) for k, a in adapters.items()}


def test_sources_are_registered():
    assert {"open_clip", "hf"} <= set(list_sources())


@pytest.mark.parametrize("family", FAMILIES)
def test_towers_take_app_inputs_and_give_unit_embeddings(adapters, real_inputs, family):
    a = adapters[family]
    x = real_inputs[family]
    img = torch.cat(x.calibration["image"][:4])
    ids = torch.cat(x.calibration["text"][:4])
    assert img.dtype == torch.float32 and img.shape[1:] == (3, *a.image_size) and float(img.max()) <= 255
    assert ids.dtype == torch.int32 and ids.shape[1] == a.context_length
    with torch.no_grad():
        for emb in (a.image(img), a.text(ids)):
            assert emb.shape == (4, a.embed_dim)
            np.testing.assert_allclose(emb.norm(dim=-1).numpy(), 1.0, atol=1e-5)
    assert a.logit_scale > 0 and a.points("image") and a.points("text")


@pytest.mark.parametrize("name", list(OPEN_CLIP_CONFIGS))
def test_open_clip_towers_match_open_clip(adapters, real_inputs, name):
    """The adapter's towers (normalization in the graph, one-hot EOT readout) are open_clip's
    encode_image / encode_text, normalized."""
    from mobile_sdk.models._open_clip import import_open_clip, read_state_dict

    open_clip = import_open_clip()
    a = adapters[f"open_clip:{name}"]
    ref = open_clip.create_model(name, pretrained=None)
    ref.load_state_dict(read_state_dict(a.weights))
    ref.eval()
    x = real_inputs[f"open_clip:{name}"]
    img, ids = torch.cat(x.calibration["image"][:4]), torch.cat(x.calibration["text"][:4])
    mean = torch.tensor(a.preprocess.mean).view(1, 3, 1, 1)
    std = torch.tensor(a.preprocess.std).view(1, 3, 1, 1)
    with torch.no_grad():
        want_img = ref.encode_image((img / 255 - mean) / std, normalize=True)
        want_txt = ref.encode_text(ids.long(), normalize=True)
        torch.testing.assert_close(a.image(img), want_img, atol=1e-5, rtol=0)
        torch.testing.assert_close(a.text(ids), want_txt, atol=1e-5, rtol=0)
    tok = open_clip.get_tokenizer("ViT-B-32")
    np.testing.assert_array_equal(a.tokenizer(["a red circle", "Two big BLUE stars!"]),
                                  tok(["a red circle", "Two big BLUE stars!"]).numpy())


@pytest.mark.parametrize("kind", HF_FAMILIES)
def test_hf_towers_match_transformers(adapters, real_inputs, sources, kind):
    """The adapter's towers are get_image_features / get_text_features, normalized, on the
    tokenizer's own ids (padded to the full context length)."""
    import transformers

    a = adapters[kind]
    folder = sources[kind][0][len("hf:"):]
    ref = transformers.AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
    x = real_inputs[kind]
    img, ids = torch.cat(x.calibration["image"][:4]), torch.cat(x.calibration["text"][:4])
    mean = torch.tensor(a.preprocess.mean).view(1, 3, 1, 1)
    std = torch.tensor(a.preprocess.std).view(1, 3, 1, 1)
    with torch.no_grad():
        want_img = torch.nn.functional.normalize(ref.get_image_features(pixel_values=(img / 255 - mean) / std).pooler_output, dim=-1)
        want_txt = torch.nn.functional.normalize(ref.get_text_features(input_ids=ids.long()).pooler_output, dim=-1)
        torch.testing.assert_close(a.image(img), want_img, atol=1e-5, rtol=0)
        torch.testing.assert_close(a.text(ids), want_txt, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("tower", ["image", "text"])
def test_export_rewrites_keep_the_function(adapters, real_inputs, family, tower):
    from converters.rewrites import export_form, for_xnnpack

    a = adapters[family]
    x = torch.cat(real_inputs[family].calibration[tower][:8])
    module = a.tower(tower)
    with torch.no_grad():
        ref = module(x)
        for rewrite in (export_form, for_xnnpack):
            got = rewrite(module)(x)
            torch.testing.assert_close(got, ref, atol=2e-5, rtol=0, msg=f"{rewrite.__name__} changed {family} {tower}")
        form = export_form(module)
    # What the backends are handed holds no infinite or huge constant (int8, Core ML fp16, k-means).
    for name, buf in list(form.named_buffers()) + list(form.named_parameters()):
        assert torch.isfinite(buf).all() and buf.abs().max() < 1e4, f"{family} {tower}: {name} is not export-safe"
    assert not any(isinstance(m, torch.nn.MultiheadAttention) or type(m).__name__ in ("CLIPAttention", "SiglipAttention")
                   for m in form.modules())


def test_causal_mask_rewrite_is_exact_for_sharp_attention():
    """A masked logit is replaced, not added to: rows whose kept logits are far below the masked
    ones (where an additive -30 would leak) still match -inf masking."""
    from converters.rewrites import export_form

    class Causal(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch.nn.MultiheadAttention(16, 2, batch_first=True)
            self.register_buffer("attn_mask", torch.full((6, 6), float("-inf")).triu(1))

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False, attn_mask=self.attn_mask)[0]

    torch.manual_seed(0)
    m = Causal().eval()
    with torch.no_grad():
        m.attn.in_proj_weight.mul_(8.0)  # logits in the hundreds
        x = torch.randn(3, 6, 16)
        torch.testing.assert_close(export_form(m)(x), m(x), atol=1e-4, rtol=1e-4)


def test_as_adapter_wraps_the_builtin_clip_without_copying():
    from mobile_sdk.models import create_model

    m = create_model("tiny")
    a = as_adapter(m)
    assert a.image is m.visual and a.text is m.text and a.family == "builtin"
    assert a.points("image") == {p: p for p in ["ln_pre", "blocks.0", "ln_post"]}


# --------------------------------------------------------------------------- errors
def test_unknown_sources_are_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown open_clip architecture 'ViT-B-33'.*ViT-B-32"):
        load_adapter("open_clip:ViT-B-33", tmp_path / "w.safetensors")
    with pytest.raises(ConfigError, match="needs its weights: pass --weights"):
        load_adapter("open_clip:ViT-B-32")
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        load_adapter("nope")
    with pytest.raises(ConfigError, match="cannot import module 'no_such_module'"):
        load_adapter("no_such_module:make")


def test_weights_that_do_not_match_name_the_keys(sources, tmp_path):
    from safetensors.torch import load_file, save_file

    spec, weights = sources["open_clip:tiny-ViT-B-32"]
    sd = load_file(str(weights))
    bad = dict(sd)
    bad.pop("text_projection")
    bad["extra.weight"] = torch.zeros(2)
    save_file(bad, str(tmp_path / "keys.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing 1 key\(s\) \['text_projection'\].*unexpected 1 key\(s\) "
                                              r"\['extra.weight'\].*must be a state dict of the open_clip"):
        load_adapter(spec, tmp_path / "keys.safetensors")
    shaped = dict(sd, text_projection=torch.zeros(3, 3))
    save_file(shaped, str(tmp_path / "shape.safetensors"))
    with pytest.raises(CheckpointError, match="shape mismatch for 'text_projection'"):
        load_adapter(spec, tmp_path / "shape.safetensors")
    ints = dict(sd, text_projection=sd["text_projection"].to(torch.int32))
    save_file(ints, str(tmp_path / "dtype.safetensors"))
    with pytest.raises(CheckpointError, match="torch.int32 where a floating-point weight belongs"):
        load_adapter(spec, tmp_path / "dtype.safetensors")
    # torch files are read with weights_only=True: a pickled object is refused, not run
    torch.save({"state_dict": sd, "hook": Path("x")}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_adapter(spec, tmp_path / "pickled.pt")
    torch.save(sd, tmp_path / "plain.pt")
    assert load_adapter(spec, tmp_path / "plain.pt").embed_dim == 64


def test_custom_module_function_source(tmp_path, monkeypatch):
    (tmp_path / "my_clip.py").write_text(
        "from mobile_sdk.models import create_model\n"
        "from mobile_sdk.models.adapter import as_adapter\n"
        "def make():\n    return as_adapter(create_model('tiny'))\n"
        "def wrong():\n    return 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    a = load_adapter("my_clip:make")
    assert a.family == "custom" and a.embed_dim == 32
    with pytest.raises(ConfigError, match="returned int, not a mobile_sdk.models.DualEncoder"):
        load_adapter("my_clip:wrong")


# --------------------------------------------------------------------------- every platform
# What the battery converts, to keep the suite within its time budget: the ViT-B-32 layout (open_clip's
# CLIP class: ViT, causal text transformer, CLIP BPE) goes through the three platforms at their
# default precisions, trained, as a user runs the CLI from another folder, in
# tests/parity/test_fixture_parity.py (the shipped vit-bpe-world model); MobileCLIP2's text tower is open_clip's text transformer without a
# mask, the form SigLIP's converts in, so its FastViT image tower is what it adds, on ExecuTorch and
# Core ML here (LiteRT takes ~190 s for it on 2 cores: benchmarks/adapters.py converts the
# full-size MobileCLIP2-S0 on every platform, each artifact checked against eager).
CONVERTED = [("open_clip:tiny-MobileCLIP2-S0", "executorch", ("image",)),
             ("open_clip:tiny-MobileCLIP2-S0", "coreml", ("image",))] + [
    (f, p, ("image", "text")) for f in HF_FAMILIES for p in PLATFORMS]


@pytest.mark.slow
@pytest.mark.parametrize("family,platform,towers", CONVERTED)
def test_every_tower_exports_at_fp32_matching_eager(adapters, real_inputs, family, platform, towers, tmp_path,
                                                   monkeypatch):
    """fp32 on each platform: the export's own check passes (cosine >= 0.9999 on the calibration
    images it was made from), and the artifact matches eager on other real images too. (ExecuTorch
    without its debug twin, which only localization reads: tests/parity/test_check.py lowers it.)"""
    import functools

    import converters.executorch as et
    from converters import platform_module

    from mobile_sdk.exporter import ExportInputs, export

    monkeypatch.setattr(et, "CONFIG", functools.partial(et.ExecuTorchConfig, debug_twin=False))

    a = adapters[family]
    x = real_inputs[family]
    first = ExportInputs(dict(x.example), {t: v[:8] for t, v in x.calibration.items()})
    arts = export(a, tmp_path, [platform], {platform: ["fp32"]}, towers=towers, inputs=first)
    assert len(arts) == len(towers)
    mod = platform_module(platform)
    for art in arts:
        assert art.extra["eager_check"]["cosine_min"] >= 0.9999
        if platform == "executorch":  # one XNNPACK island (rewrites.for_xnnpack + executorch.xnnpack_pass)
            assert art.extra["delegation"]["delegated_subgraphs"] == 1, art.extra["delegation"]
        held_out = torch.cat(x.calibration[art.tower][8:16])
        runner = mod.load(art.path)
        got = np.concatenate([runner(held_out[i:i + 1].numpy()) for i in range(len(held_out))])
        with torch.no_grad():
            ref = a.tower(art.tower)(held_out).numpy()
        cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
        assert cos.min() >= 0.9999, f"{family} {platform} {art.tower}: cosine {cos.min()}"


@pytest.mark.slow
@pytest.mark.parametrize("family,towers", [("open_clip:tiny-ViT-B-32", ("image", "text")), ("hf-siglip", ("image",))])
def test_executorch_lowers_each_tower_into_one_xnnpack_island(adapters, real_inputs, family, towers, tmp_path):
    """int8_dynamic (whose three q / k / v Linears used to split the delegate at every layer), with
    open_clip's class-token expand and readout select, the causal mask's amin and the L2 norm all
    inside the delegate: one XNNPACK island per tower, only the token lookups on portable kernels,
    and the program still computes the tower. SigLIP: its attention-pooling query, a Linear on a
    learned probe, stays fp32 (an int8-dynamic Linear on a constant does not lower)."""
    from converters.executorch import ExecuTorchConfig, PteRunner, convert

    a, x = adapters[family], real_inputs[family]
    for tower in towers:
        example = x.example[tower]
        art = convert(a, tower, example, ExecuTorchConfig("int8_dynamic", debug_twin=False), tmp_path)
        rep = art.extra["delegation"]
        assert rep["delegated_subgraphs"] == 1, rep
        assert set(rep["portable_ops"]) <= {"aten_embedding_default"}, rep
        got = PteRunner(art.path)(example.numpy())
        with torch.no_grad():
            ref = a.tower(tower)(example).numpy()
        assert float((got * ref).sum() / np.linalg.norm(got) / np.linalg.norm(ref)) >= 0.999


@pytest.mark.slow
def test_a_drifting_fp32_artifact_fails_the_export_and_is_not_kept(adapters, real_inputs, tmp_path, monkeypatch):
    """Nothing silent: an artifact whose runtime output drifts from eager fails the export loudly,
    naming the first diverging layer, and its files are removed."""
    import converters.coreml as cml

    from mobile_sdk.exporter import ExportInputs, export

    family = "open_clip:tiny-ViT-B-32"
    x = real_inputs[family]
    inputs = ExportInputs(dict(x.example), {t: v[:4] for t, v in x.calibration.items()})
    real = cml.load

    def drifting(path, *a, **k):
        runner = real(path, *a, **k)
        return lambda inp: runner(inp) + 0.05 * np.sign(np.arange(runner(inp).size).reshape(1, -1) % 2 - 0.5)
    monkeypatch.setattr(cml, "load", drifting)
    with pytest.raises(ConversionError, match=r"coreml text fp32: the converted artifact gives cosine .* It was not "
                                              r"kept"):
        export(adapters[family], tmp_path, ["coreml"], {"coreml": ["fp32"]}, towers=("text",), inputs=inputs)
    assert not list((tmp_path / "coreml").glob("text_fp32*"))


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "builtin"])
def test_residual_rotation_applies_to_every_prenorm_text_tower(adapters, real_inputs, family):
    """The residual-stream rotation (int8-friendly LiteRT text towers) is found from the tower's
    structure for every family, keeps the function on real captions, and spreads the stream."""
    from converters.rewrites import rotate_residual
    from mobile_sdk.parity.localize import reference_intermediates

    a = adapters[family]
    ids = torch.cat(real_inputs[family].calibration["text"][:8])
    rotated = rotate_residual(a.text)
    with torch.no_grad():
        torch.testing.assert_close(rotated(ids), a.text(ids), atol=2e-5, rtol=0)
    assert not any(m.elementwise_affine for m in rotated.modules() if isinstance(m, torch.nn.LayerNorm))
    # trained towers have LayerNorm biases (folded into the projection's new bias): still exact
    import copy
    trained = copy.deepcopy(a.text)
    with torch.no_grad():
        for m in trained.modules():
            if isinstance(m, torch.nn.LayerNorm) and m.bias is not None:
                m.bias.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(rotate_residual(trained)(ids), trained(ids), atol=2e-5, rtol=0)
    before = reference_intermediates(a.text, ids[:2])["blocks.0"]
    after = reference_intermediates(rotated, ids[:2])["blocks.0"]
    centred = before - before.mean(-1, keepdims=True)
    # same stream, centred and in another basis: equal norms per token
    np.testing.assert_allclose(np.linalg.norm(after, axis=-1), np.linalg.norm(centred, axis=-1), rtol=1e-3, atol=1e-4)


def test_hf_folder_errors_name_the_missing_piece(sources, tmp_path):
    import shutil

    src = Path(sources["hf-clip"][0][len("hf:"):])
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(src / name, bare / name)
    with pytest.raises(ConfigError, match="no usable tokenizer files"):
        load_adapter(f"hf:{bare}")
    (bare / "model.safetensors").rename(bare / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="no .safetensors weights"):
        load_adapter(f"hf:{bare}")
    with pytest.raises(ConfigError, match="no config.json"):
        load_adapter(f"hf:{tmp_path / 'nothing'}")
    with pytest.raises(ConfigError, match="drop --weights"):
        load_adapter(f"hf:{src}", src / "model.safetensors")


def test_hf_weights_are_loaded_strictly(sources, tmp_path, caplog):
    """transformers fills a missing weight with random values, casts an integer tensor into a float
    weight and loads NaN without a word: hf:DIR refuses each, naming the key."""
    import shutil

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    src = Path(sources["hf-clip"][0][len("hf:"):])
    folder = tmp_path / "hf"
    shutil.copytree(src, folder)
    with safe_open(str(src / "model.safetensors"), framework="pt") as f:
        meta = f.metadata()
    sd = load_file(str(src / "model.safetensors"))
    key = "text_projection.weight"
    fix = "check that config.json and the weights come from the same save_pretrained, or save them again"
    for tensors, message in [
        ({**sd, key: sd[key].to(torch.int32)},
         rf"model.safetensors: '{key}' holds torch.int32 where a floating-point weight belongs \(the model's is "
         rf"torch.float32\); {fix}$"),
        ({k: v for k, v in sd.items() if k != key},
         rf"the weights lack 1 key\(s\) of the CLIPModel \['{key}'\] \(transformers would fill them with random "
         rf"values\); {fix}$"),
        ({**sd, key: sd[key] * float("nan")}, rf"'{key}' holds NaN or Inf values; re-save the weights from a healthy"),
    ]:
        save_file(tensors, str(folder / "model.safetensors"), metadata=meta)
        with pytest.raises(CheckpointError, match=message):
            load_adapter(f"hf:{folder}")
    save_file({**sd, "extra.weight": torch.zeros(2)}, str(folder / "model.safetensors"), metadata=meta)
    with caplog.at_level("WARNING", logger="mobile_sdk.models._hf"):
        assert load_adapter(f"hf:{folder}").embed_dim == 48
    assert any("not used by the CLIPModel and are ignored: ['extra.weight']" in m for m in caplog.messages)
