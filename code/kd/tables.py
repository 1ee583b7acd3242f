"""Records -> the course's summary tables, formatted once: every table is a header and rows of strings, built here
from the numbers in the run records, then written as Markdown (README, results/<profile>/05_summary_tables.md)
or passed to Typst as data (report, poster). Nothing here imports torch.
"""
from __future__ import annotations

import json

from .config import TASKS as TASK_SPECS
from .labels import ABLATIONS, CLASSIC_KINDS, METRICS, MODELS, REFERENCES, TASKS
from .lesson import eval_rows
from .noise import Verdict, compare, share_se, single

TASK_IDS = list(TASK_SPECS)  # the course's tasks, in order (kd.config.TASKS)


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def markdown(table: dict) -> str:
    """A GitHub Markdown table from {"header": [...], "rows": [[...], ...]}."""
    lines = [table["header"], ["---"] * len(table["header"]), *table["rows"]]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines) + "\n"


def paper_retention() -> dict:
    """DistilBERT / BERT-base in the paper, per task and on average: the reference our retention is read against."""
    paper = REFERENCES["paper_scores"]
    kept = {t: paper["DistilBERT (paper)"][t] / paper["BERT-base (paper)"][t] for t in TASK_IDS}
    return {**kept, "mean": sum(kept.values()) / len(kept)}


def _median_range(summary: dict) -> str:
    """"56.3" for one seed, "56.3 (54.1–57.0)" for several: the median, then the range."""
    low, high = summary["range"]
    spread = f" ({low:.1f}–{high:.1f})" if len(summary["seeds"]) > 1 else ""
    return f"{summary['median']:.1f}{spread}"


def _kept(retention: dict) -> str:
    """The mean over every task; a model run on some tasks only (task KD: IMDb) shows those, named."""
    if "mean" in retention:
        return pct(retention["mean"])
    return ", ".join(f"{pct(v)} ({TASKS[t]})" for t, v in retention.items())


def retention_table(nb03: dict) -> dict:
    """Fine-tuned scores x100 (median over seeds, and the range where there are several) and mean retention, with
    the paper's rows as references. A model that skips a task shows "–" there."""
    scores, headline = nb03["scores"], nb03["headline_metric"]
    above = nb03["retention_above_majority"]
    header = ["model", *(f"{TASKS[t]} ({METRICS[headline[t]]})" for t in TASK_IDS), "retention (mean)",
              "above majority (mean)"]
    rows = [[MODELS[m], *(_median_range(scores[t][m]) if m in scores[t] else "–" for t in TASK_IDS),
             "" if m == "teacher" else _kept(nb03["retention"][m]),
             "" if m == "teacher" else _kept(above[m])] for m in nb03["models"]]
    for name in ("majority", "chance"):
        rows.append([f"{name} class (baseline)" if name == "majority" else "chance (baseline)",
                     *(f"{100 * nb03['baselines'][t][name][headline[t]]:.1f}" for t in TASK_IDS), "", ""])
    paper = REFERENCES["paper_scores"]
    for name, kept in (("BERT-base (paper)", ""), ("DistilBERT (paper)", pct(paper_retention()["mean"]))):
        rows.append([f"{name}, reference", *(str(paper[name][t]) for t in TASK_IDS), kept, ""])
    earlier = REFERENCES["earlier_course"]
    rows.append([f"{earlier['label']}, reference", "", "", "", f"{earlier['mean_retention_percent']}%", ""])
    return {"header": header, "rows": rows}


def models_table(nb05: dict) -> dict:
    """Every model on one CPU clock: size, latency, IMDb accuracy."""
    header = ["model", "parameters", "weights (MB)", f"CPU ms (batch 1, {nb05['latency_seq_len']} tokens)",
              "IMDb accuracy", "speed-up vs teacher"]
    teacher_ms = next(r["cpu_latency_ms"] for r in nb05["models"] if r["id"] == "teacher")
    rows = [[MODELS[r["id"]], f"{r['params'] / 1e6:.2f}M", f"{r['size_mb']:.1f}", f"{r['cpu_latency_ms']:.2f}",
             f"{100 * r['imdb_accuracy']:.1f}", f"{teacher_ms / r['cpu_latency_ms']:.1f}x"] for r in nb05["models"]]
    return {"header": header, "rows": rows}


def size_speed_table(nb05: dict, profile: str) -> dict:
    ours, paper = nb05["size_speed"]["ours"], nb05["size_speed"]["paper"]
    return {"header": ["student / teacher", f"ours ({profile})", "DistilBERT paper (reference)"],
            "rows": [["parameters", pct(ours["params"]), pct(paper["params"])],
                     ["CPU time", pct(ours["latency"]), pct(paper["latency"])]]}


def _sd(values: list[float]) -> float:
    n = len(values)
    mean = sum(values) / n
    return (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0


def classic_gain(row: dict, n: int) -> Verdict:
    """A classic student's gain from distillation in points, by the course's one rule (kd.noise): paired over seeds,
    or, with one seed, against the standard error of n test reviews."""
    distilled, single = ([100 * v for v in row[f"{mode}_runs"]] for mode in ("distilled", "single"))
    return compare(distilled, single, 100 * share_se(row["distilled"], n), 100 * share_se(row["single"], n),
                   floor=100 / n)


def classic_pooled(nb04: dict) -> Verdict:
    """Every student's gain pooled, by the same rule: each student is one pair (its mean over seeds, distilled and
    single), so that the students, not their seeds, are the units: seeds are shared between students (the same data
    order), and their runs are not independent."""
    table = nb04["table"]
    return compare([100 * r["distilled"] for r in table], [100 * r["single"] for r in table])


def classic_controls(nb04: dict) -> dict:
    """What the teacher gives apart from the extra text (notebook 04's control students, those with a "labelled_kd"
    mode: the soft targets of the labelled reviews alone): per student and pooled over them, in points, paired by
    seed (kd.noise): the soft targets alone against training alone, and the transfer set's text on top of them."""
    rows = [r for r in nb04["table"] if "labelled_kd_runs" in r]
    if not rows:
        raise ValueError("no control students in notebook 04's record: run it with profile.classic_control set")

    def runs(mode: str, chosen: list) -> list[float]:
        return [100 * v for r in chosen for v in r[f"{mode}_runs"]]
    out = {}
    for chosen, key in [([r], r["id"]) for r in rows] + [(rows, "pooled")]:
        out[key] = {"soft_targets_alone": compare(runs("labelled_kd", chosen), runs("single", chosen)).as_dict(),
                    "extra_text": compare(runs("distilled", chosen), runs("labelled_kd", chosen)).as_dict()}
    return out


def _mean_sd(row: dict, mode: str) -> str:
    runs = row.get(f"{mode}_runs")
    if not runs or len(runs) < 2:
        return f"{100 * row[mode]:.1f}"
    return f"{100 * row[mode]:.1f} ± {100 * _sd(runs):.1f}"


def classic_table(nb04: dict, teacher_layers: int, n: int) -> dict:
    """Classic students, single vs distilled (the mean over seeds ± their standard deviation where there are several),
    the gain with its 95% interval and verdict (kd.noise), all students pooled, and the earlier demo as a reference.
    n: test reviews scored."""
    rows = [[CLASSIC_KINDS[r["kind"]], str(r["layers"]), f"{r['params'] / 1e6:.2f}M", _mean_sd(r, "single"),
             _mean_sd(r, "distilled"), str(classic_gain(r, n))] for r in nb04["table"]]
    if len(nb04["table"][0]["single_runs"]) * len(nb04["table"]) >= 2:
        pooled = classic_pooled(nb04)
        rows.append([f"all {pooled.pairs} students pooled", "", "", "", "", str(pooled)])
    demo = REFERENCES["earlier_demo"]
    rows += [["teacher (fine-tuned)", str(teacher_layers), f"{nb04['teacher_params'] / 1e6:.2f}M",
              f"{100 * nb04['teacher_accuracy']:.1f}", "", ""],
             ["earlier demo, reference", "1-2", "", "{}-{}".format(*demo["single"]), "{}-{}".format(*demo["distilled"]),
              f"teacher {demo['teacher']}"]]
    return {"header": ["student", "layers", "parameters", "single", "distilled", "gain (95% interval, kd.noise)"],
            "rows": rows}


def mlm_table(nb02: dict) -> dict:
    return {"header": ["model", "masked-token accuracy", "perplexity"],
            "rows": [[MODELS[m], pct(a), f"{nb02['perplexity'][m]:.0f}"] for m, a in nb02["masked_acc"].items()]}


def ablation_verdicts(nb02: dict, key: str = "masked_acc") -> dict[str, Verdict]:
    """Each ablation row against the triple loss, paired by seed (kd.noise): held-out masked-token accuracy in points
    (resolution: one masked token), or perplexity as triple - row (lower is better), so that a loss is always the
    row doing worse."""
    rows, n = nb02["ablation"][key], nb02["eval_masked_tokens"]
    if key == "perplexity":
        triple = rows["triple"]["runs"]
        return {a: compare(triple, r["runs"]) for a, r in rows.items() if a != "triple"}
    triple = [100 * v for v in rows["triple"]["runs"]]
    return {a: compare([100 * v for v in r["runs"]], triple, floor=100 / n) for a, r in rows.items() if a != "triple"}


def ablation_table(nb02: dict) -> dict:
    """Each row's mean over seeds, and its difference from the triple loss with its 95% interval and verdict, paired
    by seed (kd.noise), in held-out accuracy and in perplexity (a loss: the row does worse)."""
    ablation, acc, ppl = nb02["ablation"], ablation_verdicts(nb02), ablation_verdicts(nb02, "perplexity")
    return {"header": [f"ablation ({ablation['steps']} steps, {len(ablation['seeds'])} seeds)", "accuracy",
                       "vs triple (points)", "perplexity", "vs triple"],
            "rows": [[ABLATIONS[a], pct(r["mean"]), str(acc[a]) if a in acc else "",
                      f"{ablation['perplexity'][a]['mean']:.1f}", str(ppl[a]) if a in ppl else ""]
                     for a, r in ablation["masked_acc"].items()]}


def teacher_verdicts(records: dict) -> list[tuple[str, str, str, Verdict]]:
    """Every comparison of the course that isolates the teacher, read from the records (each judged by kd.noise
    where it ran): (notebook, what, its control, verdict), the verdict's difference taken so that a gain favours
    the teacher."""
    m2, m3, m4 = (records[nb]["metrics"] for nb in ("02_mlm_distillation", "03_finetune_glue_imdb",
                                                   "04_classic_kd_imdb"))
    out = [("02", "masked LM, held-out accuracy (points)", "masked-LM loss alone",
            Verdict.from_dict(m2["teacher_added"]["masked_acc"]))]
    if m2["teacher_added"]["perplexity"]:
        out.append(("02", "masked LM, held-out perplexity (lower by)", "masked-LM loss alone",
                    Verdict.from_dict(m2["teacher_added"]["perplexity"])))
    if "no_ce" in m2["ablation"]["masked_acc"]:  # turned round: what the soft targets add to the other two terms
        steps = m2["ablation"]["steps"]
        for key, what in (("masked_acc", "accuracy (points)"), ("perplexity", "perplexity (lower by)")):
            if key in m2["ablation"]:
                v = ablation_verdicts(m2, key)["no_ce"]
                out.append(("02", f"ablation ({steps} steps), soft targets: {what}", "the triple loss without L_ce",
                            Verdict(-v.diff, v.margin, v.pairs, v.rule)))
    for task, c in m3["comparisons"].items():
        blind = Verdict.from_dict(c["teacher_vs_majority"]).verdict != "gain"  # the task tells nothing apart
        out.append(("03", f"fine-tuned on {TASKS[task]} ({METRICS[m3['headline_metric'][task]]})"
                    + (": the teacher is not above the majority class" if blind else ""),
                    "the masked-LM-only student", Verdict.from_dict(c["teacher_signal"])))
    pooled = m4["controls"]["pooled"]
    out += [("04", f"IMDb, all {len(m4['table'])} small students pooled (points)", "each trained alone",
             classic_pooled(m4)),
            ("04", "IMDb, the soft targets of the labelled reviews only (points)", "trained alone",
             Verdict.from_dict(pooled["soft_targets_alone"]))]
    return out


def teacher_table(records: dict) -> dict:
    """The course's headline: what the teacher added, against its control, by the one rule (teacher_verdicts)."""
    return {"header": ["notebook", "with the teacher: what was compared", "control (no teacher)", "difference (95%)",
                       "verdict"],
            "rows": [[nb, what, control, v.interval, v.verdict]
                     for nb, what, control, v in teacher_verdicts(records)]}


def summary_tables(records: dict, nb05: dict) -> dict[str, dict]:
    """All summary tables from the records of notebooks 01-04 (by notebook name) and notebook 05's metrics."""
    nb01, nb02, nb03, nb04 = (records[n]["metrics"] for n in
                              ("01_student_init", "02_mlm_distillation", "03_finetune_glue_imdb", "04_classic_kd_imdb"))
    profile = records["01_student_init"]["profile"]
    n04 = eval_rows(records["04_classic_kd_imdb"])["imdb"]
    return {"teacher": teacher_table(records), "retention": retention_table(nb03),
            "size_speed": size_speed_table(nb05, profile), "models": models_table(nb05),
            "classic": classic_table(nb04, nb01["teacher_layers"], n04), "mlm": mlm_table(nb02),
            "ablation": ablation_table(nb02)}


def tables_markdown(tables: dict[str, dict], profile: str) -> str:
    """The file results/<profile>/05_summary_tables.md."""
    return (f"<!-- written by code/05_summary.ipynb (and report/build.py), profile {profile} -->\n\n"
            + "\n".join(f"### {name}\n\n{markdown(table)}" for name, table in tables.items()))


def derived(records: dict) -> dict:
    """What the report's sentences quote that no record holds, computed here from the records and the references:
    the paper's retention (a constant), each classic student's gain (distilled - single, points) and its verdict,
    the gains pooled, the ablation rows' verdicts (accuracy, perplexity), what the teacher added (teacher_verdicts),
    and the noise margins of the teacher against the distilled student
    in masked LM and of task KD against none on IMDb (kd.noise, the one rule)."""
    table = records["04_classic_kd_imdb"]["metrics"]["table"]
    n04 = eval_rows(records["04_classic_kd_imdb"])["imdb"]
    gains = {r["id"]: classic_gain(r, n04) for r in table}
    acc, m03 = records["02_mlm_distillation"]["metrics"], records["03_finetune_glue_imdb"]
    imdb, rows = {m: s["median"] / 100 for m, s in m03["metrics"]["scores"]["imdb"].items()}, eval_rows(m03)["imdb"]
    n02 = acc["eval_masked_tokens"]

    def margin(a: float, b: float, n: int) -> float:  # one number each, on the same n items: a share's margin
        return single(a, b, share_se(a, n), share_se(b, n)).margin
    return {"paper_retention": paper_retention(), "classic_gain": {k: v.diff / 100 for k, v in gains.items()},
            "classic_verdict": {k: v.as_dict() for k, v in gains.items()},
            "classic_pooled": classic_pooled(records["04_classic_kd_imdb"]["metrics"]).as_dict(),
            "ablation_verdict": {k: v.as_dict() for k, v in ablation_verdicts(acc).items()},
            "ablation_perplexity": {k: v.as_dict() for k, v in ablation_verdicts(acc, "perplexity").items()},
            "mlm_margin": margin(acc["masked_acc"]["teacher"], acc["masked_acc"]["student_distilled"], n02),
            "imdb_rows": rows, "task_kd_margin": margin(imdb["student_task_kd"], imdb["student_distilled"], rows),
            "teacher": [{"notebook": nb, "what": what, "control": control, **v.as_dict()}
                        for nb, what, control, v in teacher_verdicts(records)]}


def typst_inputs(tables: dict[str, dict], records: dict) -> dict[str, str]:
    """What the Typst documents read besides the records: the formatted tables, the label map, other people's
    numbers and the derived values, as JSON."""
    from .labels import ALL
    return {"tables": json.dumps(tables), "labels": json.dumps(ALL), "references": json.dumps(REFERENCES),
            "derived": json.dumps(derived(records))}


def budget_table(ends: dict[str, dict[str, dict]]) -> dict:
    """kd.budget.estimate's rows at each end (end -> rows): estimated hours per notebook at the low and the high end,
    and Drive GB at the low end (a slower run writes more periodic checkpoints), with the course's Drive footprint."""
    low, high = ends["low"], ends["high"]
    cpu = {nb: "" if r["gpu"] else " (CPU runtime)" for nb, r in low.items() if nb != "course"}
    body = [[nb, f"{r['hours']:.1f}{cpu[nb]}", f"{high[nb]['hours']:.1f}{cpu[nb]}", f"{r['written_gb']:.1f}",
             f"{r['kept_gb']:.1f}", f"{r['trash_gb']:.1f}"] for nb, r in low.items() if nb != "course"]
    body.append(["whole course", f"{low['course']['hours']:.1f}", f"{high['course']['hours']:.1f}", "",
                 f"{low['course']['drive_gb']:.1f} at most on Drive", ""])
    return {"header": ["notebook", "hours at the low share: pessimistic (estimate)",
                       "hours at the high share: optimistic (estimate)", "Drive GB written",
                       "Drive GB kept", "Drive GB in the trash"], "rows": body}
