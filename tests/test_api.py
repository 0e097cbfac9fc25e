"""The Python API: the command line's jobs as functions that return objects and print nothing."""

import json
import re

import pytest
import torch

import mobile_sdk


def test_load_model_gives_the_adapter_contract():
    model = mobile_sdk.load_model()
    assert isinstance(model, mobile_sdk.DualEncoder)
    assert model.family == "builtin" and model.image_size == (64, 64)
    with pytest.raises(mobile_sdk.ConfigError):
        mobile_sdk.load_model("no_such_family:thing")


@pytest.mark.slow
def test_export_then_check_parity_return_objects_and_print_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    steps = []

    class Recorder:
        def stage(self, name):
            return lambda label, i, n: steps.append((name, label, i, n))

    torch.manual_seed(0)
    ckpt = mobile_sdk.save_checkpoint(mobile_sdk.create_model("tiny"), tmp_path / "tiny.safetensors", name="tiny")
    result = mobile_sdk.export(mobile_sdk.load_model(ckpt), out, targets=["executorch"],
                               precisions={"executorch": ["fp32"]}, n_test=10, on_progress=Recorder())
    assert [a.path.name for a in result.artifacts] == ["image_fp32.pte", "text_fp32.pte"]
    assert result.parity["passed"] and result.bench is None
    manifest = json.loads(result.manifest.read_text())
    assert {a["file"] for a in manifest["artifacts"]} == {"executorch/image_fp32.pte", "executorch/text_fp32.pte"}
    # one progress step per conversion, then per artifact and task check, with the right totals
    assert [(s, i, n) for s, _, i, n in steps if s == "convert"] == [("convert", 0, 2), ("convert", 1, 2)]
    assert [(i, n) for s, _, i, n in steps if s == "parity"] == [(0, 3), (1, 3), (2, 3)]

    report = mobile_sdk.check_parity(out, n_test=10, write=False)
    assert isinstance(report, mobile_sdk.ParityReport)
    assert report.passed and report.failures() == []
    assert {(a["tower"], a["status"]) for a in report.artifacts} == {("image", "pass"), ("text", "pass")}
    assert report.suite["kind"] == "world"
    captured = capsys.readouterr()  # under pytest the backends' C++ lines reach these buffers; nothing else may
    native = re.compile(r"^\[\w+\.cpp:\d+\]")
    assert [line for line in (captured.out + captured.err).splitlines() if not native.match(line)] == []


def test_export_names_a_missing_backend_with_its_install_command(monkeypatch, tmp_path):
    import converters

    b = converters.backends()["coreml"]
    monkeypatch.setattr(type(b), "missing", lambda self: ["coremltools"] if self.name == "coreml" else [])
    with pytest.raises(mobile_sdk.BackendMissing, match=r'pip install "mobile-sdk\[coreml\]"'):
        mobile_sdk.export(None, tmp_path / "out", targets=["coreml"])
    assert not (tmp_path / "out").exists()
    from mobile_sdk.exporter import resolve_targets

    assert resolve_targets(["all"]) == ["executorch", "tflite"]  # `all`: the installed ones, with a warning


@pytest.mark.slow
def test_the_readmes_python_example_runs_from_another_folder(tmp_path):
    """The README's "From Python" block, run as written from a folder outside the checkout."""
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "out/student/manifest.json" in r.stdout and "True" in r.stdout
    assert (tmp_path / "out" / "student" / "parity.html").is_file()
    native = re.compile(r"^\[\w+\.cpp:\d+\]")
    assert [line for line in r.stderr.splitlines() if line.strip() and not native.match(line)] == []
