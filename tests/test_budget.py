"""`export --budget`: per platform, the smallest (or fastest) candidate within the budget is kept,
the others are removed, and the manifest records every candidate with its figures."""

import json

import pytest
from click.testing import CliRunner

from mobile_sdk.budget import Budget, choose, parse_budget
from mobile_sdk.cli import main
from mobile_sdk.errors import ConfigError, ConversionError
from mobile_sdk.folder import ExportFolder


def _art(plat, tower, prec, size, cos, agree, status="pass"):
    return {"platform": plat, "tower": tower, "precision": prec, "file": f"{plat}/{tower}_{prec}", "bytes": size,
            "status": status, "reasons": [] if status != "skipped" else ["runtime not available"],
            "test": {"cosine_mean": cos}, "tasks": {"agreement": {"zeroshot": agree}}}


def _report(*pairs):
    return {"artifacts": [_art(p, t, prec, size, cos, agree) for p, prec, size, cos, agree in pairs
                          for t in ("image", "text")]}


def test_the_smallest_candidate_within_the_budget_is_chosen():
    report = _report(("tflite", "int8", 100, 0.995, 0.97), ("tflite", "int8_cpu", 110, 0.996, 0.985),
                     ("tflite", "fp32", 400, 1.0, 1.0), ("tflite", "fp16", 200, 0.985, 0.99))
    sel = choose(report, ("image", "text"), Budget(0.98))["tflite"]
    assert sel["chosen"] == "int8_cpu"
    rows = {r["precision"]: r for r in sel["candidates"]}
    assert rows["int8"]["reason"] == "agreement 97.0% < 98.0%" and not rows["int8"]["passed"]
    assert rows["fp16"]["reason"].startswith("cosine mean 0.9850 < 0.99")
    assert rows["fp32"]["passed"] and not rows["fp32"]["chosen"] and rows["int8_cpu"]["bytes"] == 220
    assert choose(report, ("image", "text"), Budget(0.995))["tflite"]["chosen"] == "fp32"


def test_prefer_latency_keeps_the_fastest_within_the_budget():
    report = _report(("executorch", "int8_dynamic", 100, 0.999, 0.995), ("executorch", "fp32", 400, 1.0, 1.0))
    ms = {"int8_dynamic": 2.0, "fp32": 1.0}
    bench = {"rows": [{"name": f"executorch {t} {p}", "kind": "artifact", "threads": 1, "median_ms": ms[p]}
                      for p in ms for t in ("image", "text")]}
    assert choose(report, ("image", "text"), Budget(0.98), bench)["executorch"]["chosen"] == "int8_dynamic"
    sel = choose(report, ("image", "text"), Budget(0.98, prefer="latency"), bench)["executorch"]
    assert sel["chosen"] == "fp32" and {r["precision"]: r["latency_ms"] for r in sel["candidates"]} == \
        {"int8_dynamic": 4.0, "fp32": 2.0}


def test_no_candidate_within_the_budget_is_an_error_with_every_figure():
    report = _report(("coreml", "pal4", 100, 0.95, 0.90), ("coreml", "pal6", 150, 0.98, 0.96))
    with pytest.raises(ConversionError, match=r"coreml: no precision is within the budget .*pal4: cosine mean 0.9500"):
        choose(report, ("image", "text"), Budget(0.98))


@pytest.mark.parametrize("text, value", [("0.98", 0.98), ("98", 0.98), ("98%", 0.98), ("99.5%", 0.995)])
def test_budget_values(text, value):
    assert parse_budget(text) == pytest.approx(value)


def test_bad_budget_values():
    with pytest.raises(ConfigError, match="e.g. 0.98 or 98%"):
        parse_budget("most")
    with pytest.raises(ConfigError, match=r"in \(0, 1\]"):
        Budget(parse_budget("150%"))


@pytest.mark.slow
@pytest.mark.heavy
def test_export_with_a_budget_keeps_one_precision_per_platform(small_export, tmp_path):
    root, cal, ckpt, _ = small_export
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["export", "--checkpoint", str(ckpt), "--target", "executorch", "--precision",
                                  "int8_dynamic", "--precision", "fp32", "--budget", "90%", "--out", str(out),
                                  "--calibration", str(cal), "--n", "8", "--no-bench", "--localize", "never"])
    assert r.exit_code == 0, r.output
    folder = ExportFolder.open(out)  # the rejected candidates' files are gone, the manifest is exact
    sel = folder.manifest["selection"]["executorch"]
    kept = {(a["platform"], a["precision"]) for a in folder.artifacts}
    assert kept == {("executorch", sel["chosen"])}
    rows = {c["precision"]: c for c in sel["candidates"]}
    assert set(rows) == {"int8_dynamic", "fp32"} and sel["budget"] == {"agreement": 0.9, "cosine": 0.99,
                                                                      "prefer": "size"}
    passing = [c for c in sel["candidates"] if c["passed"]]
    assert min(passing, key=lambda c: c["bytes"])["precision"] == sel["chosen"]
    assert all(c["agreement"] is not None and c["cosine_mean"] is not None for c in sel["candidates"])
    assert not [p for p in (out / "executorch").iterdir() if "int8_dynamic" in p.name and sel["chosen"] == "fp32"
                or "fp32" in p.name and sel["chosen"] == "int8_dynamic"]
    parity = json.loads((out / "parity.json").read_text())
    assert {a["precision"] for a in parity["artifacts"]} == {sel["chosen"]} and parity["selection"] == \
        folder.manifest["selection"]
    assert 'id="selection"' in (out / "parity.html").read_text() and "verdict" in r.output
