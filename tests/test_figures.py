"""Every figure from the run records alone (kd.figures): the committed cpu records redrawn in seconds, one colour
per model id, one font size. The t4-shapes course redraws its own records (tests/test_t4_shapes.py), and notebook 05
redraws the smoke records under nbval."""
import time

import kd
import kd.figures
import pytest

RESULTS = kd.REPO / "results" / "cpu"


def test_every_committed_figure_has_a_drawing_function():
    named = {f"{nb}_{name}.png" for nb, figures in kd.figures.FIGURES.items() for name in figures}
    assert {p.name for p in RESULTS.glob("*.png")} <= named  # a figure added since the cpu run: drawn at its rerun


def test_the_cpu_figures_redraw_from_the_committed_records_in_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv("KD_RESULTS_DIR", str(kd.REPO / "results"))  # read the committed records
    monkeypatch.setenv("MPLBACKEND", "Agg")
    started = time.perf_counter()
    redrawn = kd.figures.redraw("cpu", folder=tmp_path)
    seconds = time.perf_counter() - started
    lacking = {f: s for f, s in redrawn.items() if s != "drawn"}
    assert not lacking, lacking  # every figure of the course from the committed records alone
    assert {p.name for p in tmp_path.glob("*.png")} == {f for f, s in redrawn.items() if s == "drawn"}
    assert seconds < 60, seconds
    for png in tmp_path.glob("*.png"):  # at most 7.5 in wide as saved (120 dpi), so that FIGURE_FONT prints large
        width = int.from_bytes(png.read_bytes()[16:20], "big")  # enough in the report and on the poster
        assert width <= 7.5 * 120, (png.name, width)


def test_one_colour_per_model_and_every_model_has_one():
    assert set(kd.labels.MODELS) <= set(kd.labels.COLORS)
    for kind in kd.labels.CLASSIC_KINDS:  # one colour per kind of classic student: depth is the marker
        assert kd.labels.COLORS[f"{kind}-1"] == kd.labels.COLORS[f"{kind}-2"]
    others = [c for m, c in kd.labels.COLORS.items() if m in kd.labels.MODELS and "-" not in m]
    assert len(others) == len(set(others))


def test_a_record_without_a_figures_data_is_named_not_drawn():
    with pytest.raises(kd.figures.RecordLacks, match="loss_curves"):
        kd.figures.loss_curves({"distill_config": {}})
