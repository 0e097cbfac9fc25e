"""parity.html as a person sees it: rendered by headless Chromium from a report with a passing and
a failing artifact, per-layer curves, task changes and the bench trade-off."""

import base64
import io
import re
import shutil
import subprocess

import pytest
from PIL import Image

from mobile_sdk.parity.report import write_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def _artifact(tower, precision, status, cos, zeroshot, layers):
    ref = {"zeroshot_color": 1.0, "zeroshot_shape": 0.9, "retrieval_i2t": 0.6}
    acc = {"zeroshot_color": 1.0, "zeroshot_shape": 0.9 - (0.05 if status == "fail" else 0.0), "retrieval_i2t": 0.55}
    return {"platform": "tflite", "tower": tower, "precision": precision, "file": f"tflite/{tower}_{precision}.tflite",
            "bytes": 800_000, "status": status,
            "reasons": ["tasks: zero-shot top-1 agreement 0.9500 < 0.98"] if status == "fail" else [],
            "tolerance": {"cosine_mean": 0.99, "cosine_min": 0.97, "agreement": 0.98, "layer_sqnr_db": 15.0},
            "calibration": {"cosine_mean": cos}, "test": {"cosine_mean": cos, "cosine_min": cos - 0.002, "sqnr_db": 27.0},
            "seconds": 0.5,
            "localization": {"status": "ok", "threshold_db": 15.0, "first_divergent_layer": None,
                             "weakest_layer": "ln_post",
                             "layers": [{"layer": f"blocks.{i}", "sqnr_db": v} for i, v in enumerate(layers)]},
            "tasks": {"agreement": {"zeroshot": zeroshot, "retrieval": 0.9, "zeroshot_color": 1.0,
                                    "zeroshot_shape": zeroshot, "retrieval_i2t": 0.9},
                      "accuracy": acc, "accuracy_delta": {t: acc[t] - ref[t] for t in acc}}}, ref


def _report(tmp_path):
    arts, ref = [], None
    for tower in ("image", "text"):
        for precision, status, cos, zs in (("int8", "fail", 0.9989, 0.95), ("int8_cpu", "pass", 0.9992, 0.99)):
            a, ref = _artifact(tower, precision, status, cos, zs, [40.0, 33.0, 28.0, 26.0])
            arts.append(a)
    report = {"schema": 1, "folder": str(tmp_path), "checkpoint": "student.safetensors", "model": "student",
              "calibration": "calibration_data", "n_calibration": 32, "n_test_per_task": 100,
              "reference_accuracy": ref, "artifacts": arts, "passed": False, "suite": {"kind": "world"}}
    rows = [{"name": f"tflite {t} {p}", "kind": "artifact", "tower": t, "precision": p, "bytes": 800_000 + 1000 * i,
             "threads": 2, "median_ms": 0.9 + 0.1 * i, "p90_ms": 1.0, "gflops": 1.0, "rss_growth_mb": 0.0}
            for i, (t, p) in enumerate([(t, p) for t in ("image", "text") for p in ("int8", "int8_cpu")])]
    rows += [{"name": f"onnxruntime fp32 {t}", "kind": "peer", "tower": t, "precision": "fp32", "bytes": 4_000_000,
              "threads": 2, "median_ms": 0.8, "p90_ms": 0.9, "gflops": 1.0, "rss_growth_mb": 0.0} for t in ("image", "text")]
    bench = {"rows": rows, "machine": {"cpu": "Test CPU (avx2)", "cores": 2, "peak": {}}, "flops": {}}
    return report, bench


def test_the_report_explains_every_figure_and_shows_each_bar(tmp_path):
    report, bench = _report(tmp_path)
    write_reports(report, tmp_path, bench=bench)
    page = (tmp_path / "parity.html").read_text()
    for phrase in ("What each figure means", "zero-shot agreement", "cosine min", "first divergent layer",
                   "bar &gt;= 98.0%", "Per-layer SQNR", "Task accuracy change", "Size, latency and agreement",
                   "Test CPU (avx2)"):
        assert phrase in page, phrase
    assert page.count('<td class="fail">97.0%') == 0 and page.count('class="fail">95.0%') == 2  # the failing cells
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3  # accuracy change, per-layer SQNR (every artifact), trade-off
    for b64 in images:
        w, h = Image.open(io.BytesIO(base64.b64decode(b64))).size
        assert w > 300 and h > 150


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (make test installs Debian's chromium where it can)")
def test_the_report_renders_in_headless_chromium(tmp_path):
    report, bench = _report(tmp_path)
    write_reports(report, tmp_path, bench=bench)
    url = (tmp_path / "parity.html").as_uri()
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    summary = re.search(r'<table id="summary">(.*?)</table>', dom.stdout, re.S)
    assert summary and summary.group(1).count("<tr>") == 1 + len(report["artifacts"])
    assert dom.stdout.count("<img") == 3 and 'id="metrics"' in dom.stdout
    shot = tmp_path / "shot.png"
    r = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1300,3000",
                        f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    colours = img.resize((130, 300)).getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 50  # tables and charts drew, not a blank page
