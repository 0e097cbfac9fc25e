"""The parity checker end to end on real ExecuTorch artifacts of a small model."""

import json

import pytest
import torch
from click.testing import CliRunner

from tests.conftest import copy_calibration

from mobile_sdk.checkpoint import load_checkpoint, save_checkpoint
from mobile_sdk.cli import main
from mobile_sdk.errors import DataError
from mobile_sdk.exporter import export
from mobile_sdk.models import create_model
from mobile_sdk.parity import ParityConfig, check_folder, write_reports

CFG = ParityConfig(n_calibration=8, n_test=6, localize="always", localize_samples=2)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    cal = copy_calibration(root / "cal")
    torch.manual_seed(0)
    ckpt = save_checkpoint(create_model("tiny"), root / "a.safetensors", name="tiny")
    torch.manual_seed(1)
    other = save_checkpoint(create_model("tiny"), root / "b.safetensors", name="tiny")
    model, _ = load_checkpoint(ckpt)
    out = root / "art"
    export(model, out, ["executorch"], {"executorch": ["fp32"]}, calibration_dir=cal, checkpoint=ckpt)
    return out, ckpt, other


@pytest.mark.slow
def test_faithful_artifacts_pass_with_a_flat_layer_curve(exported):
    out, ckpt, _ = exported
    report = check_folder(out, cfg=CFG)
    assert report["checkpoint"] == str(ckpt.resolve()) and report["passed"], report
    assert len(report["artifacts"]) == 2
    for a in report["artifacts"]:
        assert a["status"] == "pass" and a["test"]["cosine_min"] > 0.99999 and a["calibration"]["n"] == 8
        assert a["tasks"]["agreement"]["overall"] == 1.0
        loc = a["localization"]
        assert loc["status"] == "ok" and loc["first_divergent_layer"] is None and loc["replica_max_abs_diff"] == 0.0
        assert [c["layer"] for c in loc["layers"]][-1] == "embedding" and all(c["sqnr_db"] > 60 for c in loc["layers"])
    paths = write_reports(report, out)
    assert [p.name for p in paths] == ["parity.json", "parity.md", "parity.html"]
    assert json.loads(paths[0].read_text())["passed"] is True
    assert "data:image/png;base64," in paths[2].read_text() and "PASSED" in paths[1].read_text()


@pytest.mark.slow
def test_artifacts_of_another_model_fail_and_are_named(exported):
    out, _, other = exported
    report = check_folder(out, checkpoint=other, cfg=CFG)
    assert not report["passed"]
    for a in report["artifacts"]:
        assert a["status"] == "fail" and any("cosine mean" in r for r in a["reasons"]), a["reasons"]
        loc = a["localization"]  # read from the artifact's own debug twin: it diverges from the first layer on
        assert loc["status"] == "ok" and loc["first_divergent_layer"] == loc["layers"][0]["layer"], loc


@pytest.mark.slow
def test_cli_exit_codes(exported, tmp_path):
    out, _, other = exported
    runner = CliRunner()
    r = runner.invoke(main, ["parity", str(out), "--n", "4", "--localize", "never"])
    assert r.exit_code == 0, r.output
    assert "executorch" in r.output and (out / "parity.html").is_file()
    r = runner.invoke(main, ["parity", str(out), "--n", "4", "--localize", "never", "--checkpoint", str(other),
                             "--json", str(tmp_path / "p.json")])
    assert r.exit_code == 1 and "parity FAILED" in r.output
    assert json.loads((tmp_path / "p.json").read_text())["passed"] is False


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(DataError, match="not found"):
        check_folder(tmp_path / "nope")
    with pytest.raises(DataError, match="is not an export folder"):
        check_folder(tmp_path)
    r = CliRunner().invoke(main, ["parity", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "mobile-sdk export" in r.output


@pytest.mark.slow
def test_a_perturbed_layer_is_named_executorch(exported, tmp_path):
    """An artifact made from a model whose image block 2 was perturbed: the checker fails it and
    names blocks.2 (read from the artifact's debug twin, which the export made from the same module)."""
    _, _, _ = exported
    cal = exported[0].parent / "cal"
    torch.manual_seed(0)
    ref = create_model("student")
    ckpt = save_checkpoint(ref, tmp_path / "ref.safetensors", name="student")
    bad = create_model("student")
    bad.load_state_dict(ref.state_dict())
    with torch.no_grad():
        w = bad.visual.blocks[2].mlp.fc.weight
        w.add_(torch.randn_like(w) * 3 * w.std())
    out = tmp_path / "art"
    export(bad, out, ["executorch"], {"executorch": ["fp32"]}, towers=("image",), calibration_dir=cal, checkpoint=ckpt)
    report = check_folder(out, cfg=ParityConfig(n_calibration=8, n_test=4, localize="on_failure", localize_samples=2))
    (a,) = report["artifacts"]
    assert a["status"] == "fail"
    loc = a["localization"]
    assert loc["status"] == "ok" and loc["replica_max_abs_diff"] == 0.0, loc
    assert loc["first_divergent_layer"] == "blocks.2", loc["layers"]
    sqnr = {c["layer"]: c["sqnr_db"] for c in loc["layers"]}
    assert sqnr["blocks.1"] > 60 > sqnr["blocks.2"]
