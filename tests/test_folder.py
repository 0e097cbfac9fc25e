"""The export folder: one reader that refuses anything missing, extra, unreadable or changed, and
one writer (lock, staging, swap) that leaves OUT as it was when a run fails, is interrupted or
is killed. Every case goes through the CLI, where a user meets it."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mobile_sdk.cli import main
from mobile_sdk.folder import ExportFolder, FolderError, locked
from mobile_sdk.models import create_model

from .conftest import export_args as _export_args


@pytest.fixture(scope="module")
def made(small_export):
    return small_export


@pytest.fixture
def folder(made, tmp_path):
    dst = tmp_path / "out"
    shutil.copytree(made[3], dst, symlinks=True)
    return dst


def _fingerprint(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(args, *needles):
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    for n in needles:
        assert n in r.output, r.output
    return r.output


def _edit_manifest(folder, fn):
    m = json.loads((folder / "manifest.json").read_text())
    fn(m)
    (folder / "manifest.json").write_text(json.dumps(m))


def test_a_valid_folder_opens(folder):
    f = ExportFolder.open(folder)
    assert {(a["platform"], a["precision"]) for a in f.artifacts} == {("executorch", "fp32"), ("coreml", "fp16")}
    assert f.record["checkpoint"].endswith("tiny.safetensors")
    assert all(Path(a["file"]).exists() and a["entry"]["sha256"] for a in f.artifacts)


DAMAGE = {
    "manifest missing": (lambda f: (f / "manifest.json").unlink(), ["has artifacts but no manifest.json"]),
    "manifest unparseable": (lambda f: (f / "manifest.json").write_text('{"schema": "mobile-sdk-manifest", '),
                             ["is not valid JSON", "cut short or edited", "mobile-sdk export --out"]),
    "manifest from a newer SDK": (lambda f: _edit_manifest(f, lambda m: m.update(schema_version=2, sdk_version="9.0")),
                                  ["written by mobile-sdk 9.0 (manifest schema 2)", "pip install -U mobile-sdk"]),
    "manifest from an older SDK": (lambda f: _edit_manifest(f, lambda m: m.update(schema_version=0, sdk_version="0.0.1")),
                                   ["written by mobile-sdk 0.0.1 (manifest schema 0)", "with this version"]),
    "not a manifest": (lambda f: (f / "manifest.json").write_text("[1, 2]"), ["is not a mobile-sdk manifest"]),
    "sidecar unparseable": (lambda f: (f / "executorch" / "image_fp32.json").write_text("{oops"),
                            ["artifact sidecar", "image_fp32.json is not valid JSON"]),
    "sidecar missing": (lambda f: (f / "executorch" / "image_fp32.json").unlink(), ["image_fp32.json is missing"]),
    "sidecar of another artifact": (
        lambda f: (f / "executorch" / "image_fp32.json").write_text(
            (f / "executorch" / "image_fp32.json").read_text().replace('"fp32"', '"int8"')),
        ["does not describe executorch/image_fp32.pte"]),
    "artifact changed": (lambda f: (f / "executorch" / "image_fp32.pte").open("ab").write(b"\0"),
                         ["image_fp32.pte does not match its sha256"]),
    "artifact deleted": (lambda f: (f / "executorch" / "image_fp32.pte").unlink(), ["image_fp32.pte is missing"]),
    "Core ML weights deleted": (
        lambda f: (f / "coreml" / "image_fp16.mlpackage" / "Data" / "com.apple.CoreML" / "weights"
                   / "weight.bin").unlink(), ["image_fp16.mlpackage does not match its sha256"]),
    "extra artifact": (lambda f: [shutil.copy(f / "executorch" / f"image_fp32.{s}", f / "executorch" / f"text_fp32.{s}")
                                  for s in ("pte", "json")],
                       ["holds 2 file(s) manifest.json does not list", "executorch/text_fp32.pte"]),
    "export record unparseable": (lambda f: (f / "export.json").write_text("{"),
                                  ["export record", "export.json is not valid JSON"]),
    "export record of the wrong shape": (lambda f: (f / "export.json").write_text('{"checkpoint": 3}'),
                                         ["'checkpoint' is 3, expected str or NoneType"]),
    "tokenizer file missing": (lambda f: (f / "vocab.txt").unlink(), ["vocab.txt (the tokenizer file"]),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_parity_and_bench_refuse_a_damaged_folder(folder, case):
    damage, needles = DAMAGE[case]
    damage(folder)
    before = _fingerprint(folder)
    for cmd in ("parity", "bench"):
        _refused([cmd, str(folder)], *needles)
    assert _fingerprint(folder) == before  # nothing written into the folder


def test_golden_vectors_read_through_the_reader(folder):
    from mobile_sdk.golden import build_golden

    (folder / "executorch" / "image_fp32.pte").open("ab").write(b"\0")
    with pytest.raises(FolderError, match="does not match its sha256"):
        build_golden(folder, create_model("tiny"))


def test_not_an_export_folder(tmp_path):
    _refused(["parity", str(tmp_path / "nope")], "export folder", "not found", "mobile-sdk export --out")
    (tmp_path / "empty").mkdir()
    _refused(["bench", str(tmp_path / "empty")], "is not an export folder (no manifest.json)")


# -- writing ---------------------------------------------------------------------------------------

def test_out_that_cannot_be_written_fails_before_any_conversion(made, tmp_path):
    root, cal, ckpt, _ = made
    (tmp_path / "file").write_text("x")
    _refused(_export_args(ckpt, cal, tmp_path / "file" / "out"), "is a file", "choose another --out")
    if os.geteuid() == 0:  # root writes anywhere a permission bit forbids: /sys refuses everyone
        target = Path("/sys/mobile-sdk-out")
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        target = ro / "out"
    out = _refused(_export_args(ckpt, cal, target), f"--out {target}: cannot write in", "Permission denied")
    assert "convert" not in out  # refused before any conversion started


def test_out_that_is_someone_elses_folder_is_refused(made, tmp_path):
    root, cal, ckpt, _ = made
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    _refused(_export_args(ckpt, cal, mine), "not an export folder", "choose a new or empty folder")
    assert (mine / "thesis.txt").read_text() == "precious" and len(list(mine.iterdir())) == 1


def test_a_second_run_into_a_locked_folder_fails_at_once(made, folder):
    root, cal, ckpt, _ = made
    before = _fingerprint(folder)
    with locked(folder, "mobile-sdk export"):
        t0 = time.perf_counter()
        _refused(_export_args(ckpt, cal, folder), "is being written by another mobile-sdk run",
                 f"mobile-sdk export, pid {os.getpid()}")
        _refused(["parity", str(folder)], "is being written by another mobile-sdk run")
        assert time.perf_counter() - t0 < 30
    assert _fingerprint(folder) == before


def test_leftovers_of_a_killed_run_are_removed_and_a_damaged_folder_repaired(made, folder):
    root, cal, ckpt, _ = made
    stale = folder.parent / f".{folder.name}.staging-killed"
    (stale / "executorch").mkdir(parents=True)
    (stale / "executorch" / "image_fp32.pte").write_bytes(b"half")
    (folder / "coreml" / "image_fp16.json").write_text("{broken")  # re-exporting only ExecuTorch repairs it
    r = CliRunner().invoke(main, ["export", "--checkpoint", str(ckpt), "--target", "executorch", "--precision", "fp32",
                                  "--tower", "image", "--out", str(folder), "--calibration", str(cal), "--no-parity",
                                  "--no-bench"])
    assert r.exit_code == 0, r.output
    assert not stale.exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    assert "dropping image_fp16" in r.output or "dropping coreml/image_fp16" in r.output, r.output
    f = ExportFolder.open(folder)
    assert {a["platform"] for a in f.artifacts} == {"executorch"}


# SIGTERM once the first artifact is in the staging folder (while Core ML converts); Ctrl-C as soon
# as the conversions start
@pytest.mark.parametrize("sig, code, when", [(signal.SIGTERM, 143, "coreml image"), (signal.SIGINT, 130, "convert")])
def test_an_interrupted_export_leaves_the_folder_as_it_was(made, folder, sig, code, when):
    """The export is stopped while it converts: OUT is as it was, and no staging folder is left."""
    root, cal, ckpt, _ = made
    before = _fingerprint(folder)
    args = _export_args(ckpt, cal, folder)
    args[args.index("coreml:fp16")] = "coreml:fp32"  # a different artifact set than OUT's
    proc = subprocess.Popen([sys.executable, "-m", "mobile_sdk", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    for line in proc.stdout:  # numbered progress lines: stop it inside the conversion stage
        lines.append(line)
        if when in line:
            break
    time.sleep(1.0)
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=120)
    out = "".join(lines) + rest
    assert proc.returncode == code, out
    assert "nothing was changed" in out and "Traceback" not in out, out
    assert _fingerprint(folder) == before
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")]
    ExportFolder.open(folder)
