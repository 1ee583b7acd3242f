"""Every figure from the run records alone (kd.figures): the committed cpu records redrawn in seconds as PNG and SVG,
one colour-blind-safe colour per model id, one font size, and text that reads (kd.figures_summary.text_problems).
The t4-shapes course redraws its own records (tests/test_t4_shapes.py), and notebook 05 redraws the smoke records
under nbval."""
import json
import os
import time
from pathlib import Path

import kd
import kd.figures
import pytest
from kd.figures_summary import text_problems

RESULTS = kd.REPO / "results" / "cpu"
RECORDS = sorted({p.parent for p in (kd.REPO / "results").glob("*/0*.json")}  # every committed profile's records,
                 | {Path(f) for f in os.environ.get("KD_FIGURE_RECORDS", "").split(":") if f})  # and a fresh run's
DRAWN = [(folder, nb, name) for folder in RECORDS for nb, figures in kd.figures.FIGURES.items() for name in figures]


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
    # the committed records of notebooks 01 and 02 predate fields their figures need: the message names the notebook
    assert set(lacking) <= {f"{nb}_{n}.png" for nb in ("01_student_init", "02_mlm_distillation")
                            for n in kd.figures.FIGURES[nb]} - {"02_mlm_distillation_loss_curves.png",
                                                                  "02_mlm_distillation_ablation.png"}
    for file, why in lacking.items():
        assert f"run code/{file.split('_')[0]}_" in why and "again" in why, (file, why)
    assert {p.name for p in tmp_path.glob("*.png")} == {f for f, s in redrawn.items() if s == "drawn"}
    assert {p.stem for p in tmp_path.glob("*.svg")} == {p.stem for p in tmp_path.glob("*.png")}  # vector beside
    assert seconds < 60, seconds
    for png in tmp_path.glob("*.png"):  # at most 7.5 in wide as saved (120 dpi), so that FIGURE_FONT prints large
        width = int.from_bytes(png.read_bytes()[16:20], "big")  # enough in the report and on the poster
        assert width <= 7.5 * 120, (png.name, width)
    for svg in tmp_path.glob("*.svg"):  # vector: pixels only where the 01 logit scatter's thousands of dots are
        assert svg.stat().st_size < 300_000, svg.name
        assert ("<image" in svg.read_text()) == svg.name.startswith("01_student_init_equivalence"), svg.name


def test_one_colour_per_model_and_every_model_has_one():
    colors, models = kd.labels.COLORS, kd.labels.MODELS
    assert set(models) <= set(colors)
    for kind in kd.labels.CLASSIC_KINDS:  # one colour per kind of classic student: depth is the marker
        assert colors[f"{kind}-1"] == colors[f"{kind}-2"]
    others = [c for m, c in colors.items() if m in models and m not in kd.labels.CLASSIC_IDS]
    assert len(others) == len(set(others))  # the DistilBERT half: one colour each
    kinds = [colors[f"{kind}-1"] for kind in kd.labels.CLASSIC_KINDS]
    beside = {colors[m] for m in kd.labels.MARKERS}  # the models drawn with the classic students
    assert len(set(kinds)) == len(kinds) and not beside & set(kinds)


def test_every_colour_is_okabe_ito_or_a_grey():
    import matplotlib.colors as mc

    safe = {c.lower() for c in kd.labels.OKABE_ITO.values()}
    for name, color in kd.labels.COLORS.items():
        r, g, b = mc.to_rgb(color)
        assert color.lower() in safe or r == g == b, (name, color)


@pytest.mark.parametrize("folder,notebook,name", DRAWN, ids=[f"{f.name}-{nb}-{n}" for f, nb, n in DRAWN])
def test_no_figure_has_clipped_or_colliding_text(folder, notebook, name):
    """Drawn from each record set's metrics as saved (any schema): a figure whose data the record lacks is the
    redraw test's business, not this one's."""
    import matplotlib.pyplot as plt

    fn, sources = kd.figures.FIGURES[notebook][name]
    try:
        fig = fn(*[json.loads((folder / f"{nb}.json").read_text())["metrics"] for nb in sources])
    except (FileNotFoundError, kd.figures.RecordLacks) as why:
        pytest.skip(str(why))
    if fig is None:
        pytest.skip(kd.figures.NOTHING)
    try:
        assert text_problems(fig) == []
    finally:
        plt.close(fig)


def test_text_problems_names_each_planted_problem():
    import matplotlib.pyplot as plt

    curve = {"step": [10, 20, 30], "loss": [9.0, 7.0, 6.5]}
    fig = kd.figures.head_fit({"head_fit_curves": {"head": curve, "adapt": curve}})
    assert text_problems(fig) == []
    ax = fig.axes[0]
    ax.set_xticks([10, 11, 12], ["a long tick label"] * 3)  # colliding tick labels
    ax.set_ylabel("a y label far longer than the axes is tall, " * 3)  # cut by the figure's edge
    ax.text(60, 6, "a note that runs off its panel")
    ax.scatter([], [], color="0.3", label="1 layer")
    ax.scatter([], [], color="0.3", label="filled: distilled")  # one marker, two meanings
    ax.legend(loc="center")  # a second legend, over the data
    problems = "\n".join(text_problems(fig))
    plt.close(fig)
    for expected in ("'a long tick label' overlaps 'a long tick label'", "crosses the figure's edge",
                     "runs off its panel", "2 legends", "a legend covers the data",
                     "'1 layer' and 'filled: distilled' look alike"):
        assert expected in problems, (expected, problems)


def test_a_record_without_a_figures_data_is_named_not_drawn():
    with pytest.raises(kd.figures.RecordLacks, match="loss_curves"):
        kd.figures.loss_curves({"distill_config": {}})
