"""`python -m kd.gpu_check`, the GPU check of the t4 settings: its code path on the CPU at tiny shapes (--tiny), the
record it writes (never over another), and its refusal to run without a GPU unless --tiny."""
import json

import kd.gpu_check
import pytest
import torch

PARTS = ("distill", "finetune_imdb", "student")


def test_tiny_run_writes_a_record_of_the_three_parts(tmp_path, capsys):
    kd.gpu_check.main(["--tiny", "--out", str(tmp_path)])
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert record["notebook"] == "gpu_check" and record["profile"] == "t4"
    m = record["metrics"]
    assert m["tiny"] and set(m["parts"]) == set(PARTS) and m["skipped_by_time_cap"] == []
    for part in PARTS:
        r = m["parts"][part]
        assert r["tokens_per_s"] > 0 and r["items_per_s"] > 0 and r["step_seconds"] > 0
        assert "peak_gib" in r and "fits_t4" in r  # None on a CPU: torch.cuda.max_memory_allocated has no CPU twin
        if not torch.cuda.is_available():
            assert r["peak_gib"] is None
    for part in ("distill", "finetune_imdb"):  # the parts kd.budget prices: FLOPs counted, TFLOP/s achieved
        assert m["parts"][part]["tflops"] > 0
    assert "kd.budget assumes 10.0-14.4%" in capsys.readouterr().out
    kd.gpu_check.save(kd.Run(kd.PROFILES["t4"], "gpu_check"), {"again": 1}, tmp_path)  # a second run: beside it
    assert json.loads((tmp_path / "gpu_check.json").read_text())["metrics"] == m
    assert len(list(tmp_path.glob("gpu_check-*.json"))) == 1


def test_without_a_gpu_it_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA GPU visible: run on a GPU runtime, or --tiny"):
        kd.gpu_check.main(["--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())


def test_tiny_never_writes_into_results():
    with pytest.raises(SystemExit, match="never writes into a results folder"):
        kd.gpu_check.main(["--tiny", "--out", str(kd.REPO / "results" / "t4")])


def test_fp16_peaks_by_device_name():
    peak = kd.gpu_check.fp16_peak
    assert peak("Tesla T4") == 65 and peak("NVIDIA H100 PCIe") == 756 and peak("NVIDIA H100 80GB HBM3") == 989
    assert peak("NVIDIA L4") == 121 and peak("NVIDIA L40S") is None and peak("NVIDIA A100-SXM4-40GB") == 312
