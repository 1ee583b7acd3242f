"""Notebooks 04 and 05's figures (classic students; the summary), and the style every figure of the course shares:
one colour per model id (Okabe-Ito, kd.labels), percentages on score axes, one font size (kd.labels.FIGURE_FONT),
one legend per figure, below or beside the axes and never over the data, a record lacking a figure's data named as
such, and `text_problems`, which says where a drawn figure does not read. kd.figures holds the other figures, the
registry and `redraw`. Nothing here imports torch.
"""
from __future__ import annotations

import functools

from .labels import CLASSIC_KINDS, COLORS, DEPTH_MARKERS, FIGURE_FONT, MARKERS, MODELS, REFERENCES, TASKS
from .tables import TASK_IDS

FILL = "hollow: trained alone, filled: distilled"  # said in a title: no legend marker stands for two things
SEED_DOTS = {"marker": "o", "ms": 5, "ls": "", "color": "k", "mec": "w", "mew": 0.7}  # seen on a black bar too


class RecordLacks(KeyError):
    """A record made before a figure's data was recorded: the notebook that writes it must run again."""


def _styled(fn):
    @functools.wraps(fn)
    def draw(*args, **kwargs):
        import matplotlib.pyplot as plt

        style = {k: FIGURE_FONT for k in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize",
                                          "ytick.labelsize", "legend.fontsize", "figure.titlesize",
                                          "figure.labelsize")}
        style.update({"legend.handlelength": 1.5, "legend.handletextpad": 0.5, "legend.columnspacing": 1.0,
                      "legend.labelspacing": 0.3, "legend.borderpad": 0.3})  # legends as small as they read
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
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _named(fig) -> tuple[list, list]:
    """The handles and labels of every axes, each label once, whichever panels drew it."""
    named = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            named.setdefault(label, handle)
    return list(named.values()), list(named)


def _legend(fig, handles=None, labels=None, ncol: int = 2, where: str = "lower", **kwargs):
    """The figure's one legend, below its axes (above them where a shared x label is below: constrained layout
    would stack the two; or right): off the data, as wide as the figure allows."""
    handles, labels = (handles, labels) if handles is not None else _named(fig)
    return fig.legend(handles, labels, loc=f"outside {where} center", ncol=ncol, **kwargs)


def _model_rows(ax, ids: list[str]) -> None:
    """Models down the y axis, the first on top, each name once on the left (at most two lines): the reader needs
    no legend to map colours back to models."""
    names = [MODELS[m].replace(" (", "\n(", 1) if len(MODELS[m]) > 16 else MODELS[m] for m in ids]
    ax.set_yticks(range(len(ids)), names)
    ax.set_ylim(len(ids) - 0.5, -0.5)


# --- what does not read

def _texts(fig):
    """Every text a reader sees: the tick labels in view, axis labels, titles and texts of each visible axes, the
    legends' texts, the figure's own."""
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * (high - low)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():  # only those in view are drawn
                if low - slack <= tick.get_loc() <= high + slack:
                    yield from (tick.label1, tick.label2)
            yield from (axis.label, axis.get_offset_text())
        yield from (ax.title, *ax.texts)
    for legend in _legends(fig):
        yield from (legend.get_title(), *legend.get_texts())
    yield from fig.texts


def _legends(fig) -> list:
    return [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]


def _overlap(a, b, px: float = 1.0) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > px and min(a.y1, b.y1) - max(a.y0, b.y0) > px


def _inside(a, b, px: float = 1.0) -> bool:
    return a.x0 >= b.x0 - px and a.y0 >= b.y0 - px and a.x1 <= b.x1 + px and a.y1 <= b.y1 + px


def _looks(handle) -> str:
    """What a legend entry's key looks like: its kind, shape, colours, line."""
    props = ("marker", "markerfacecolor", "markeredgecolor", "color", "linestyle", "linewidth", "facecolor",
             "edgecolor", "hatch", "alpha", "paths")
    return type(handle).__name__ + "".join(str(getattr(handle, f"get_{p}", lambda: None)()) for p in props)


def text_problems(fig) -> list[str]:
    """Why a drawn figure does not read, one line each; [] when it does: text cut by the figure's edge (saved
    "tight", it would widen the figure past the width the report and poster print), a note running off its panel,
    two texts on top of each other (tick labels of one axis, titles of two panels), more than one legend, a legend
    over an axes' data area or taking more than a fifth of the figure, two legend entries that look alike (one
    marker, two meanings)."""
    fig.canvas.draw()
    renderer, page = fig.canvas.get_renderer(), fig.bbox
    texts = [(t, t.get_window_extent(renderer)) for t in dict.fromkeys(_texts(fig))
             if t.get_visible() and t.get_text().strip()]
    problems = [f"{t.get_text()!r} crosses the figure's edge" for t, b in texts if not _inside(b, page)]
    for ax in fig.axes:  # a note on the data ("not run") stays on its panel
        box = ax.get_window_extent(renderer)
        problems += [f"{t.get_text()!r} runs off its panel" for t in ax.texts if t.get_visible() and ax.get_visible()
                     and not _inside(t.get_window_extent(renderer), box)]
    for i, (t, b) in enumerate(texts):
        problems += [f"{t.get_text()!r} overlaps {u.get_text()!r}" for u, c in texts[i + 1:] if _overlap(b, c)]
    legends = _legends(fig)
    if len(legends) > 1:
        problems.append(f"{len(legends)} legends: one per figure")
    for legend in legends:
        box = legend.get_window_extent(renderer)
        problems += [f"a legend covers the data of {ax.get_title()!r}" for ax in fig.axes
                     if ax.get_visible() and _overlap(box, ax.get_window_extent(renderer))]
        if (share := box.width * box.height / (page.width * page.height)) > 0.2:
            problems.append(f"the legend takes {share:.0%} of the figure, more than a fifth")
        keys = [(_looks(h), t.get_text()) for h, t in zip(legend.legend_handles, legend.get_texts())]
        problems += [f"legend entries {a!r} and {b!r} look alike" for i, (key, a) in enumerate(keys)
                     for other, b in keys[i + 1:] if key == other]
    return problems


# --- notebook 04

def _classic_points(ax, table: list[dict], x_of, ranges: bool = True) -> None:
    """Each classic student twice, alone (hollow) and distilled (filled), joined: a colour per kind, a shape per
    depth (kd.labels), the same in every figure; the seeds' range behind, where there are several seeds."""
    for r in table:
        x, marker, color = x_of(r["id"]), DEPTH_MARKERS[r["layers"]], COLORS[r["id"]]
        for mode in ("single", "distilled"):
            runs = r.get(f"{mode}_runs", [])
            if ranges and len(runs) > 1:
                ax.plot([x, x], [100 * min(runs), 100 * max(runs)], color=color, lw=3, alpha=0.35)
        ax.plot([x, x], [100 * r["single"], 100 * r["distilled"]], color=color, lw=0.8)
        ax.scatter(x, 100 * r["single"], marker=marker, facecolors="w", edgecolors=color, linewidths=1.5, zorder=3)
        ax.scatter(x, 100 * r["distilled"], marker=marker, color=color, zorder=3)


def _big_points(ax, points: dict[str, tuple[float, float]]) -> None:
    """The teacher and the DistilBERT students (id -> (x, accuracy %)), each its shape and colour."""
    for m, (x, y) in points.items():
        ax.scatter(x, y, marker=MARKERS[m], color=COLORS[m], s=220 if m == "teacher" else 70, zorder=3,
                   label=MODELS[m])


def _classic_legend(fig, table: list[dict], ranges: bool, axes) -> None:
    """One legend: a colour patch per kind, per depth its shape hollow and filled (FILL, in the title, says which
    is which), then the big models' markers and the seeds' range."""
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    kinds = {r["kind"]: COLORS[r["id"]] for r in table}
    handles = [Patch(color=c) for c in kinds.values()]
    labels = [CLASSIC_KINDS[k] for k in kinds]
    for n in sorted({r["layers"] for r in table}):
        shape = {"marker": DEPTH_MARKERS[n], "ls": "", "ms": 8}
        handles.append((Line2D([], [], mfc="w", mec="0.3", mew=1.5, **shape), Line2D([], [], color="0.3", **shape)))
        labels.append(f"{n} layer{'s' if n > 1 else ''}")
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.append(h), labels.append(label)
    if ranges and any(len(r.get("single_runs", [])) > 1 for r in table):
        handles.append(Line2D([], [], color="0.3", lw=3, alpha=0.35)), labels.append("range over seeds")
    _legend(fig, handles, labels, ncol=3, handler_map={tuple: HandlerTuple(ndivide=None)})


@_styled
def accuracy_vs_latency(m04: dict, m03: dict):
    """The classic students alone and distilled, the teacher and the DistilBERT student, against CPU latency."""
    ms = m04["latency"]["ms"]
    fig, ax = _subplots(figsize=(7.2, 6.4))
    _classic_points(ax, m04["table"], ms.get)
    _big_points(ax, {"teacher": (ms["teacher"], 100 * m04["teacher_accuracy"]),
                     "student_distilled": (ms["student_distilled"],
                                           m03["scores"]["imdb"]["student_distilled"]["median"])})
    _log_ticks(ax.xaxis)
    ax.set(xlabel=f"CPU latency (ms, batch 1, {m04['latency']['seq_len']} tokens, log scale)",
           ylabel="IMDb test accuracy (%)", title=f"Accuracy against CPU latency\n{FILL}")
    _classic_legend(fig, m04["table"], True, [ax])
    return fig


# --- notebook 05

@_styled
def retention(m03: dict):
    """Student / teacher per task and on average, with the paper's DistilBERT / BERT-base as a reference."""
    from .tables import paper_retention

    students, groups, paper = list(m03["retention"]), TASK_IDS + ["mean"], paper_retention()
    fig, axes = _subplots(2, 2, figsize=(7.2, 1.8 + 1.2 * len(students)), sharex=True, sharey=True)
    for ax, g in zip(axes.flat, groups):
        for y, m in enumerate(students):
            kept = m03["retention"][m].get(g)
            if kept is None:  # task KD runs on IMDb only: no bar, and no mean
                ax.text(4, y, "no mean" if g == "mean" else "not run", va="center", color="0.4")
            else:
                ax.barh(y, 100 * kept, color=COLORS[m])
        ax.axvline(100 * paper[g], color="k", lw=1.5, label="paper: DistilBERT / BERT-base (reference)")
        ax.set(title=TASKS.get(g, "mean of the tasks"), xlim=(0, 110), xticks=[0, 25, 50, 75, 100])
    axes[-1, -1].axvline(REFERENCES["earlier_course"]["mean_retention_percent"], color="0.4", ls=":", lw=2,
                         label="earlier reproduction, mean (reference)")  # a mean over tasks: on the mean's panel
    for ax in axes[:, 0]:
        _model_rows(ax, students)
    fig.supxlabel("student / teacher (%): the teacher's score retained")
    _legend(fig, ncol=1, where="upper")
    return fig


@_styled
def accuracy_vs_size(m05: dict, m04: dict):
    """IMDb accuracy against the bytes of a model's weights: the classic students (about the size of their word
    embeddings) on a linear axis of their own, beside the teacher and the DistilBERT students (int8 keeps the
    parameters and stores the linear layers' weights in a quarter of the bytes). Against latency: notebook 04."""
    import matplotlib.ticker as ticker

    row = {r["id"]: r for r in m05["models"]}
    fig, (small, big) = _subplots(1, 2, figsize=(7.2, 6.4), sharey=True, width_ratios=(3, 2))
    _classic_points(small, m04["table"], lambda i: row[i]["size_mb"], ranges=False)  # the ranges: in 04's figure
    _big_points(big, {m: (row[m]["size_mb"], 100 * row[m]["imdb_accuracy"])
                      for m in ("teacher", "student_distilled", "student_int8")})
    small.set(xlabel="weights (MB)", ylabel="IMDb test accuracy (%)", title="classic students")
    big.set(xlabel="weights (MB)", title="BERT, DistilBERT")
    big.margins(x=0.2)
    for ax, bins in ((small, 4), (big, 3)):
        ax.xaxis.set_major_locator(ticker.MaxNLocator(bins))
    fig.suptitle(f"Accuracy against size\n{FILL}")
    _classic_legend(fig, m04["table"], False, [big])
    return fig
