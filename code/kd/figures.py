"""Every figure of the course, drawn from run records alone: each function takes the `metrics` of the records it
reads (the dict a notebook saves), so a notebook shows exactly what `redraw` draws again later from the committed
records, in seconds, with no model and no training (`python report/build.py --figures`).

One style for all: one colour per model id (kd.labels.COLORS, colour-blind safe), percentages on every score axis,
one legend per figure, off the data, and one font size, chosen so that figure text stays legible where the report
and the poster print the figures (kd.labels.FIGURE_FONT); kd.figures_summary.text_problems says where it does not.
Notebooks 04 and 05's figures and the shared style live in kd.figures_summary; every figure is reached from here.
Nothing here imports torch.
"""
from __future__ import annotations

import math
from pathlib import Path

from .figures_summary import (SEED_DOTS, RecordLacks, _legend, _log_ticks, _model_rows, _named,  # noqa: F401
                              _styled, _subplots, accuracy_vs_latency, accuracy_vs_size, retention, text_problems)
from .config import LOSS_TERMS
from .labels import ABLATIONS, COLORS, METRICS, MODELS, REFERENCES, TASKS
from .tables import TASK_IDS


# --- notebook 01

@_styled
def head_fit(m01: dict):
    """The masked-LM loss of the two stages that make the teacher a masked LM; None where no stage ran (t4: BERT
    has its head)."""
    if not m01["head_fit_curves"]:
        return None
    fig, ax = _subplots(figsize=(6.4, 4.2))
    offset = 0
    for stage, label, ls in (("head", "head only, encoder frozen", "-"), ("adapt", "every weight", "--")):
        curve = m01["head_fit_curves"][stage]  # both stages train the teacher: its colour, a line style each
        ax.plot([s + offset for s in curve["step"]], curve["loss"], ls, color=COLORS["teacher"], label=label)
        offset += curve["step"][-1] if curve["step"] else 0
    ax.set(xlabel="optimiser step", ylabel="masked-LM loss (nats)", title="Making the teacher a masked LM")
    _legend(fig)
    return fig


@_styled
def equivalence(m01: dict):
    """Teacher logits against the all-layer copy's and the k-layer student's, and the largest difference per token."""
    import matplotlib.ticker as ticker

    e = m01["equivalence"]
    fig, axes = _subplots(1, 2, figsize=(7.0, 4.2))
    names = {"full": f"all {m01['teacher_layers']} layers", "student": f"layers {m01['student_layers']}"}
    colors = {"full": COLORS["student_full_copy"], "student": COLORS["student_init"]}
    for key, alpha in (("full", 1.0), ("student", 0.4)):  # thousands of dots: pixels, even in the SVG
        axes[0].scatter(e["teacher_logits"], e[f"{key}_logits"], s=2, alpha=alpha, color=colors[key],
                        label=names[key], rasterized=True)
    axes[0].xaxis.set_major_locator(ticker.MaxNLocator(4, steps=[1, 2, 5, 10]))  # few ticks: a narrow panel
    axes[0].set(xlabel="teacher logit", ylabel="student logit",
                title=f"Logits, {len(e['teacher_logits']):,} sampled")
    per_token = [[math.log10(max(v, 1e-9)) for v in e["max_diff_per_token"][k]] for k in ("full", "student")]
    axes[1].hist(per_token, bins=40, label=[names["full"], names["student"]], color=[colors["full"], colors["student"]])
    axes[1].axvline(math.log10(e["tolerance"]), color="k", ls="--", lw=1, label=f"tolerance {e['tolerance']:g}")
    axes[1].set(xlabel="log10 max |Δ logit|", ylabel="tokens", title="All-layer copy: exact")
    handles, labels = axes[1].get_legend_handles_labels()  # below the panels: nothing of the data hidden
    _legend(fig, handles, labels)
    return fig


@_styled
def size(m01: dict):
    """Where the encoders' parameters are: embeddings against transformer layers."""
    fig, ax = _subplots(figsize=(7.2, 4.6))
    ids = list(m01["params"])
    labels = [MODELS[i] for i in ids]
    emb = [m01["embedding_params"][i] / 1e6 for i in ids]
    layers = [(m01["params"][i] - m01["embedding_params"][i]) / 1e6 for i in ids]
    ax.bar(labels, emb, color="0.75", label="embeddings")
    ax.bar(labels, layers, bottom=emb, color=[COLORS[i] for i in ids], label="transformer layers (colour: model)")
    ax.set(ylabel="parameters (millions)", title="Where the encoder's parameters are")
    _legend(fig)  # layers: each model's colour
    return fig


# --- notebook 02

TERM_AXES = {"ce": ("L_ce: soft-target KL", "nats × T²"), "mlm": ("L_mlm: masked-LM CE", "nats"),  # a new term
             "cos": ("L_cos: cosine", "1 − cos(h_s, h_t)")}  # without an entry: its LOSS_TERMS name, "loss"

@_styled
def loss_curves(m02: dict):
    """The weighted total and each term of the triple loss, unweighted, as logged."""
    c, w, terms = m02["loss_curves"], m02["distill_config"], list(LOSS_TERMS)
    total = "total:\n" + " + ".join(f"{w[f'alpha_{t}']:g} L_{t}" for t in terms)
    rows = (len(terms) + 2) // 2
    fig, axes = _subplots(rows, 2, figsize=(7.2, 2.8 * rows), sharex=True, squeeze=False)
    for ax, key, (title, unit) in zip(axes.flat, ["loss", *(f"loss_{t}" for t in terms)],
                                      [(total, "loss"), *(TERM_AXES.get(t, (f"L_{t}: {LOSS_TERMS[t]}", "loss"))
                                                         for t in terms)]):
        ax.plot(c["step"], c[key], color=COLORS["student_distilled"])
        ax.set(title=title, ylabel=unit)
    for ax in axes.flat[1 + len(terms):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set(xlabel="optimiser step")
    return fig


@_styled
def learning_curve(m02: dict):
    """Held-out masked-token accuracy and perplexity against tokens seen, for the triple loss and its control (the
    same run on the masked-LM loss alone): each seed a thin line, their mean a thick one; the teacher's level dashed."""
    import matplotlib.ticker as ticker

    arms, per_step = m02["arms"], m02["tokens_seen"] / m02["steps"]  # tokens per optimiser step
    fig, (acc, ppl) = _subplots(1, 2, figsize=(7.2, 4.8), sharex=True)
    for arm, model in (("triple", "student_distilled"), ("mlm_only", "student_mlm")):
        curves = arms[arm]["curves"]
        steps = [p["step"] for p in curves[0]]
        for key, ax, scale in (("masked_acc", acc, 100), ("perplexity", ppl, 1)):
            for c in curves:
                ax.plot([p["step"] * per_step / 1e3 for p in c], [scale * p[key] for p in c],
                        color=COLORS[model], lw=0.8, alpha=0.5)
            mean = [scale * sum(c[i][key] for c in curves) / len(curves) for i in range(len(steps))]
            ax.plot([s * per_step / 1e3 for s in steps], mean, color=COLORS[model], lw=2.2, label=MODELS[model])
    for key, ax, scale in (("masked_acc", acc, 100), ("perplexity", ppl, 1)):
        ax.axhline(scale * m02[key]["teacher"], color=COLORS["teacher"], ls="--", lw=1.2, label=MODELS["teacher"])
        ax.xaxis.set_major_locator(ticker.MaxNLocator(3))
    acc.set(ylabel="masked-token accuracy (%)")
    ppl.set(ylabel="perplexity (log scale)")
    _log_ticks(ppl.yaxis)
    fig.supxlabel("tokens seen (thousands)")
    _legend(fig, *acc.get_legend_handles_labels(), where="upper")
    return fig


@_styled
def temperature(m02: dict):
    """The teacher's probabilities for its ten likeliest words at one masked token, at each temperature."""
    st = m02["soft_targets"]
    import matplotlib

    fig, ax = _subplots(figsize=(7.2, 5.2))
    n, temps = len(st["words"]), st["temperatures"]
    width, shade = 0.8 / len(temps), matplotlib.colormaps["viridis"]  # one scale: colder to hotter, no model colour
    for i, T in enumerate(temps):
        ax.bar([x + (i - (len(temps) - 1) / 2) * width for x in range(n)], [100 * p for p in st["probs"][str(T)]],
               width, label=f"T = {T:g}", color=shade(i / max(1, len(temps) - 1)))
    ax.set_xticks(range(n), st["words"], rotation=90)  # upright words would collide
    _log_ticks(ax.yaxis)  # at high T every word gets a little: only a log axis shows both ends
    ax.set(xlabel="the teacher's likeliest words at T = 1", ylabel="teacher probability (%, log scale)",
           title=f"Soft targets where {st['token']!r} is masked")
    _legend(fig, ncol=1, where="right")
    return fig


@_styled
def ablation(m02: dict):
    """Each ablation row, in held-out accuracy and in perplexity (log scale: the random student's is far off): the
    mean over seeds (bar), the spread (error bar: sd), each seed (dot)."""
    from matplotlib.patches import Patch

    a = m02["ablation"]
    rows = list(a["masked_acc"])[::-1]
    panels = [("masked_acc", 100, "accuracy (%)")] + ([("perplexity", 1, "perplexity")] if "perplexity" in a else [])
    fig, axes = _subplots(1, len(panels), figsize=(7.2, 4.4), sharey=True, squeeze=False)
    colors = [COLORS["ablation_triple"] if r == "triple" else COLORS["ablation_other"] for r in rows]
    for ax, (key, scale, label) in zip(axes[0], panels):
        means = [scale * a[key][r]["mean"] for r in rows]
        if key == "masked_acc":
            ax.barh([ABLATIONS[r] for r in rows], means, xerr=[scale * a[key][r]["std"] for r in rows], color=colors)
        else:  # a dot per row, not a bar: its axis leaves out the random student's, which is printed instead
            close = [v for r in rows if r != "random_init" for v in a[key][r]["runs"]]
            hi = 1.08 * max(close)
            ax.set_xlim(0.92 * min(close), hi)
            for y, (r, m) in enumerate(zip(rows, means)):
                if m > hi:
                    ax.text(hi, y, f"{m:.0f} →", ha="right", va="center", color=colors[y])
                else:
                    ax.errorbar(m, y, xerr=a[key][r]["std"], fmt="s", color=colors[y], ms=9)
        for y, r in enumerate(rows):
            runs = [scale * v for v in a[key][r]["runs"] if key == "masked_acc" or v <= ax.get_xlim()[1]]
            ax.plot(runs, [y] * len(runs), **SEED_DOTS, label="one seed" if y == 0 else None)
        ax.set(xlabel=label)
    fig.suptitle(f"Ablation, held-out: {a['steps']} steps, {len(a['seeds'])} seeds")
    handles, _ = axes[0][0].get_legend_handles_labels()
    handles.append(Patch(color=COLORS["ablation_other"], label="mean over seeds ± sd"))
    _legend(fig, handles, [h.get_label() for h in handles])
    return fig


# --- notebook 03

@_styled
def comparison(m03: dict):
    """Per task: each model's median over seeds (bar) and each seed (dot), the paper's scores as references, and
    the majority-class and chance baselines where the record has them. Models down the side, named once."""
    from matplotlib.patches import Patch

    ids = list(m03["models"])
    fig, axes = _subplots(1, len(TASK_IDS), figsize=(7.2, 3.6 + 0.6 * len(ids)), sharex=True, sharey=True)
    for ax, t in zip(axes, TASK_IDS):
        scores, metric = m03["scores"][t], m03["headline_metric"][t]
        for y, m in enumerate(ids):
            if m not in scores:
                ax.text(4, y, "not run", va="center", color="0.4")
                continue
            ax.barh(y, scores[m]["median"], color=COLORS[m])
            ax.plot([100 * r[metric] for r in scores[m]["runs"]], [y] * len(scores[m]["runs"]), **SEED_DOTS,
                    label="one seed")
        if "baselines" in m03:  # before the references: the legend's columns pair short with long
            for kind, label, ls in (("majority", "majority class", "-"), ("chance", "chance", "-.")):
                ax.axvline(100 * m03["baselines"][t][kind][metric], color=COLORS["baseline"], lw=1.5, ls=ls,
                           label=label)
        for ls, ref in zip(["--", ":"], ("BERT-base (paper)", "DistilBERT (paper)")):
            ax.axvline(REFERENCES["paper_scores"][ref][t], color="0.3", ls=ls, lw=1.5,
                       label=f"{ref}, reference")
        ax.set(title=f"{TASKS[t]}\n{METRICS[metric]}", xlim=(0, 100), xticks=[0, 50, 100])
    _model_rows(axes[0], ids)
    fig.supxlabel("score × 100 (accuracy and F1 in %)")
    handles, labels = _named(fig)  # first, what a bar is: white, no model's colour
    _legend(fig, [Patch(fc="w", ec="k"), *handles], ["median over seeds", *labels], where="upper")
    return fig

# --- every figure, and who draws it from which records

FIGURES = {  # notebook -> figure name -> (function, the notebooks whose metrics it reads, in order)
    "01_student_init": {"head_fit": (head_fit, ["01_student_init"]), "equivalence": (equivalence, ["01_student_init"]),
                        "size": (size, ["01_student_init"])},
    "02_mlm_distillation": {"temperature": (temperature, ["02_mlm_distillation"]),
                            "loss_curves": (loss_curves, ["02_mlm_distillation"]),
                            "learning_curve": (learning_curve, ["02_mlm_distillation"]),
                            "ablation": (ablation, ["02_mlm_distillation"])},
    "03_finetune_glue_imdb": {"comparison": (comparison, ["03_finetune_glue_imdb"])},
    "04_classic_kd_imdb": {"accuracy_vs_latency": (accuracy_vs_latency, ["04_classic_kd_imdb",
                                                                         "03_finetune_glue_imdb"])},
    "05_summary": {"retention": (retention, ["03_finetune_glue_imdb"]),
                   "accuracy_vs_size": (accuracy_vs_size, ["05_summary", "04_classic_kd_imdb"])},
}


NOTHING = "nothing to draw in this profile"


def redraw(profile: str, folder: Path | None = None) -> dict[str, str]:
    """Every figure of a profile drawn again from its records in results/<profile>/, written beside them as PNG and
    SVG (or to `folder`; kd.Run.figure). Returns PNG file name -> "drawn", or why not (a record missing, or made
    before the figure's data was recorded: then it names the notebook to run again; the figure there is kept)."""
    import matplotlib.pyplot as plt

    from .config import PROFILES
    from .records import Run, load_record

    done = {}
    for notebook, figures in FIGURES.items():
        for name, (fn, sources) in figures.items():
            file = f"{notebook}_{name}.png"
            try:
                metrics = [load_record(profile, nb)["metrics"] for nb in sources]
            except (FileNotFoundError, ValueError) as why:  # no record, or another profile's or schema's
                done[file] = f"not drawn: {why}"
                continue
            try:
                fig = fn(*metrics)
            except RecordLacks as why:
                done[file] = f"not drawn: {why.args[0]}; run code/{notebook}.ipynb again to record it"
                continue
            if fig is None:
                done[file] = NOTHING
                continue
            Run(PROFILES[profile], notebook, folder=folder).figure(fig, name)
            plt.close(fig)
            done[file] = "drawn"
    return done
