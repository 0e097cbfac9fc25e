import pytest

from converters.base import Artifact, TensorSpec, atomic_output


def test_atomic_output_keeps_the_earlier_artifact_on_failure(tmp_path):
    final = tmp_path / "image_fp32.pte"
    with atomic_output(final) as tmp:
        tmp.write_bytes(b"v1")
    assert final.read_bytes() == b"v1"
    with pytest.raises(RuntimeError):
        with atomic_output(final) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("conversion failed")
    assert final.read_bytes() == b"v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image_fp32.pte"]


def test_atomic_output_replaces_packages(tmp_path):
    final = tmp_path / "image_pal4.mlpackage"
    for version in ("a", "b"):
        with atomic_output(final) as tmp:
            tmp.mkdir()
            (tmp / "weights.bin").write_text(version)
    assert (final / "weights.bin").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image_pal4.mlpackage"]


def test_artifact_serializes():
    a = Artifact("tflite", "image", "int8", tmp := __import__("pathlib").Path("x.tflite"),
                 [TensorSpec("pixels", (1, 3, 64, 64), "int8", "NCHW", 1.0, -128)],
                 [TensorSpec("embedding", (1, 192), "float32", "NC")])
    d = a.to_dict()
    assert d["path"] == "x.tflite" and d["inputs"][0]["zero_point"] == -128
