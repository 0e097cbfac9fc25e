"""`mobile-sdk bench`: what each row reports and which peers stand beside the artifacts. The
figures themselves are measurements printed by the command, never asserted as speeds here."""

import json
import shutil

import pytest

from click.testing import CliRunner

from mobile_sdk.bench import cpu_name, machine_peak, peak_share
from mobile_sdk.cli import main


def test_machine_peak_names_its_kernels():
    p = machine_peak(1, n=256)
    assert p["fp32_gflops"] > 0 and p["fp32_kernel"] == "torch.mm"
    assert p["int8_gops"] > 0, p
    assert p["int8_kernel"] in p["int8_kernels"]
    assert abs(p["int8_gops"] - max(p["int8_kernels"].values())) <= 0.05  # the best kernel is the peak
    # the fastest kernel at hand, not torch._int_mm's reference loop (1 GOP/s on an AVX2 host)
    assert set(p["int8_kernels"]) - {"torch._int_mm"}, p


def test_cpu_is_named_with_its_isa():
    name = cpu_name()
    assert name and ("avx2" in name or "AVX2" in name or "(" not in name)


@pytest.mark.slow
@pytest.mark.heavy
def test_bench_rows_percentiles_load_memory_and_static_int8_peer(small_export, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(small_export[3], folder)
    r = CliRunner().invoke(main, ["bench", str(folder), "--threads", "1", "--no-runtime-peers",
                                  "--json", str(tmp_path / "b.json")])
    assert r.exit_code == 0, r.output
    result = json.loads((folder / "bench.json").read_text())
    rows = {row["name"]: row for row in result["rows"]}
    art = rows["executorch image fp32"]
    assert art["p50_ms"] <= art["p95_ms"] <= art["p99_ms"] and art["runs"] >= 50
    assert art["load_ms"] > 0 and art["peak_growth_mb"] is not None and art["peak_rss_mb"] >= art["peak_growth_mb"]
    assert art["peak_share"] == peak_share(result, art) and 0 < art["peak_share"]
    ort_best = min(rows[f"onnxruntime {v} image"]["median_ms"] for v in ("fp32", "int8 (dynamic)", "int8 (static QDQ)"))
    assert art["vs_onnxruntime"] == pytest.approx(art["median_ms"] / ort_best)
    assert "skipped" in rows["coreml image fp16"]
    for tower in ("image", "text"):  # every ONNX Runtime variant of both towers, static int8 included
        for v in ("fp32", "int8 (dynamic)", "int8 (static QDQ)"):
            row = rows[f"onnxruntime {v} {tower}"]
            assert row["median_ms"] > 0 and row["load_ms"] > 0, row
    assert rows["onnxruntime int8 (static QDQ) image"]["bytes"] < rows["onnxruntime fp32 image"]["bytes"]
    peak = result["machine"]["peak"]["1"]
    assert peak["int8_kernel"] and result["machine"]["cpu"]
    for words in ("p99 ms", "x ORT", "load ms", "% of peak", "static QDQ", "CPU: ", "the fastest kernel at hand"):
        assert words in r.output, words
