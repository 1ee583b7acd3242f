"""Notebooks 04 and 05's figures (classic students; the summary), and the style every figure of the course shares:
one colour per model id, percentages on score axes, one font size (kd.labels.FIGURE_FONT), a record lacking a
figure's data named as such. kd.figures holds the other figures, the registry and `redraw`. Nothing here imports
torch.
"""
from __future__ import annotations

import functools

from .labels import CLASSIC_KINDS, COLORS, FIGURE_FONT, MODELS, REFERENCES, TASKS
from .tables import TASK_IDS


class RecordLacks(KeyError):
    """A record made before a figure's data was recorded: the notebook that writes it must run again."""


def _styled(fn):
    @functools.wraps(fn)
    def draw(*args, **kwargs):
        import matplotlib.pyplot as plt

        style = {f"{k}": FIGURE_FONT for k in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize",
                                                "ytick.labelsize", "legend.fontsize", "figure.titlesize")}
        with plt.rc_context(style):
            try:
                return fn(*args, **kwargs)
            except KeyError as missing:
                raise RecordLacks(f"the record has no {missing} for figure {fn.__name__!r}") from None
    return draw


def _subplots(*args, **kwargs):
    import matplotlib.pyplot as plt

    return plt.subplots(*args, layout="constrained", **kwargs)


def _log_ticks(axis) -> None:
    """A log-scaled axis with plain numbers at 1, 2, 5, 10, 20, ...."""
    import matplotlib.ticker as ticker

    axis.axes.set_xscale("log") if axis.axis_name == "x" else axis.axes.set_yscale("log")
    axis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
    axis.set_major_formatter(ticker.ScalarFormatter())
    axis.set_minor_formatter(ticker.NullFormatter())


# --- notebook 04

def _classic_points(ax, table: list[dict], x_of, legend: bool = True) -> None:
    """Each classic student twice, alone (hollow) and distilled (filled), joined; a colour per kind, a marker per
    depth (the legend names each kind once; _marker_key explains the markers)."""
    for r in table:
        x, marker, color = x_of(r["id"]), "os"[r["layers"] - 1], COLORS[r["id"]]
        named = legend and r["layers"] == min(q["layers"] for q in table if q["kind"] == r["kind"])
        for mode in ("single", "distilled"):  # the seeds' range, where there are several
            runs = r.get(f"{mode}_runs", [])
            if len(runs) > 1:
                ax.plot([x, x], [100 * min(runs), 100 * max(runs)], color=color, lw=3, alpha=0.35)
        ax.scatter(x, 100 * r["single"], marker=marker, facecolors="none", edgecolors=color)
        ax.scatter(x, 100 * r["distilled"], marker=marker, color=color,
                   label=CLASSIC_KINDS[r["kind"]] if named else None)
        ax.plot([x, x], [100 * r["single"], 100 * r["distilled"]], color=color, lw=0.8)


def _marker_key(ax, table: list[dict]) -> None:
    """Legend entries for what the markers mean, beside the models' colours."""
    for marker, text in (("o", "1 layer"), ("s", "2 layers")):
        ax.scatter([], [], marker=marker, color="0.3", label=text)
    ax.scatter([], [], marker="o", facecolors="none", edgecolors="0.3", label="hollow: trained alone")
    ax.scatter([], [], marker="o", color="0.3", label="filled: distilled")
    if any(len(r.get("single_runs", [])) > 1 for r in table):
        ax.plot([], [], color="0.3", lw=3, alpha=0.35, label="range over seeds")


@_styled
def accuracy_vs_latency(m04: dict, m03: dict):
    """The classic students alone and distilled, the teacher and the DistilBERT student, against CPU latency."""
    ms = m04["latency"]["ms"]
    fig, ax = _subplots(figsize=(7.2, 6.2))
    _classic_points(ax, m04["table"], ms.get)
    ax.scatter(ms["teacher"], 100 * m04["teacher_accuracy"], marker="*", s=160, color=COLORS["teacher"],
               label=MODELS["teacher"])
    ax.scatter(ms["student_distilled"], m03["scores"]["imdb"]["student_distilled"]["median"], marker="D",
               color=COLORS["student_distilled"], label=MODELS["student_distilled"])
    _marker_key(ax, m04["table"])
    _log_ticks(ax.xaxis)
    ax.set(xlabel=f"CPU latency (ms, batch 1, {m04['latency']['seq_len']} tokens, log scale)",
           ylabel="IMDb test accuracy (%)", title="Accuracy against CPU latency")
    fig.legend(loc="outside lower center", ncol=2)
    return fig


# --- notebook 05

@_styled
def retention(m03: dict):
    """Student / teacher per task and on average, with the paper's DistilBERT / BERT-base as a reference."""
    import numpy as np

    from .tables import paper_retention

    students, groups = list(m03["retention"]), TASK_IDS + ["mean"]
    width = 0.8 / len(students)
    fig, ax = _subplots(figsize=(7.2, 6.6))
    for i, m in enumerate(students):
        r = m03["retention"][m]
        x = np.arange(len(groups)) + (i - (len(students) - 1) / 2) * width
        kept = [100 * r[g] if r.get(g) is not None else np.nan for g in groups]
        ax.bar(x, kept, width, color=COLORS[m], label=MODELS[m])
        for xi, g in zip(x, groups):
            if g not in r:  # task KD runs on IMDb only: no bar, and no mean
                ax.text(xi, 3, "no mean" if g == "mean" else "not run", rotation=90, ha="center", va="bottom",
                        color="0.4")
    paper = paper_retention()
    ax.scatter(range(len(groups)), [100 * paper[g] for g in groups], marker="_", s=600, color="k", zorder=3,
               label="paper: DistilBERT / BERT-base (reference)")
    mean_x = groups.index("mean")  # a mean over tasks: drawn over the mean's bars only
    ax.hlines(REFERENCES["earlier_course"]["mean_retention_percent"], mean_x - 0.45, mean_x + 0.45, color="0.4",
              ls=":", lw=2, label="earlier reproduction, mean (reference)")
    ax.set(xticks=range(len(groups)), xticklabels=[TASKS.get(g, g) for g in groups], ylim=(0, 110),
           ylabel="student / teacher (%)", title="Retention of the teacher's score")
    fig.legend(loc="outside lower center", ncol=1)
    return fig


@_styled
def accuracy_vs_size(m05: dict, m04: dict):
    """Every model: IMDb accuracy against the bytes of its weights (int8 keeps the parameters and stores the linear
    layers' weights in a quarter of the bytes). Accuracy against latency is notebook 04's figure."""
    row = {r["id"]: r for r in m05["models"]}
    fig, ax = _subplots(figsize=(7.2, 6.2))
    _classic_points(ax, m04["table"], lambda i: row[i]["size_mb"])
    for m, marker in zip(("teacher", "student_distilled", "student_int8"), "*Dd"):
        ax.scatter(row[m]["size_mb"], 100 * row[m]["imdb_accuracy"], marker=marker, color=COLORS[m],
                   s=160 if m == "teacher" else 60, label=MODELS[m])
    _marker_key(ax, m04["table"])
    _log_ticks(ax.xaxis)
    ax.set(xlabel="weights (MB, log scale)", ylabel="IMDb test accuracy (%)", title="Accuracy against size")
    fig.legend(loc="outside lower center", ncol=2)
    return fig
