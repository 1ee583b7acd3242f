"""Expect, then compare: a notebook's main numbers beside the course's committed `cpu` run and the papers' (labelled
references), with a verdict from the recorded noise. One helper for every notebook; nothing here imports torch.

The noise a number is judged by is the larger of its seeds' standard error and the standard error of its test set:
sqrt(p(1 - p) / n) for a share such as accuracy (about 1.3 points on 1,000 reviews near 80%), and (1 - r²) / sqrt(n - 1)
for a correlation such as MCC. Two runs agree ("in range") when kd.noise, the course's one rule, calls their
difference a tie.
"""
from __future__ import annotations

import json
import subprocess

from .config import REPO
from .labels import METRICS, MODELS, REFERENCES, TASKS
from .noise import compare as judge, correlation_se, mean_noise, paired, share_se, single

COMMITTED = "results/cpu"  # the course's own run, in the repository


def committed(notebook: str) -> dict | None:
    """The committed cpu record of a notebook as git has it (the file may since hold your own run), else the file."""
    path = f"{COMMITTED}/{notebook}.json"
    try:
        shown = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=REPO, capture_output=True, text=True, timeout=20)
        if shown.returncode == 0:
            return json.loads(shown.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    file = REPO / path
    return json.loads(file.read_text()) if file.exists() else None


def quantities(notebook: str, m: dict, rows: dict) -> dict[str, tuple[float, float]]:
    """name -> (value x100, noise x100) of a notebook's main numbers, from its metrics; rows: evaluation rows by
    task (notebooks 03-05) or masked tokens (01-02)."""
    q = {}
    if notebook == "01_student_init":
        n = m["eval_masked_tokens"]
        stage = "adapted" if m["head_fitted"] else "as_loaded"
        for name, p in (("teacher masked-token accuracy", m["teacher_masked_acc"][stage]),
                        ("student before distillation, masked-token accuracy", m["student_init_masked_acc"])):
            q[name] = (100 * p, 100 * share_se(p, n))
    elif notebook == "02_mlm_distillation":
        for model, p in m["masked_acc"].items():
            q[f"{MODELS[model]}, masked-token accuracy"] = (100 * p, 100 * share_se(p, m["eval_masked_tokens"]))
    elif notebook == "03_finetune_glue_imdb":
        for task, by_model in m["scores"].items():
            metric, n = m["headline_metric"][task], rows.get(task, 1000)
            for model, s in by_model.items():
                v = s["median"] / 100
                se = correlation_se(v, n) if metric == "matthews_correlation" else share_se(v, n)
                runs = [100 * r[metric] for r in s["runs"]]
                q[f"{TASKS[task]} {METRICS[metric]}, {MODELS[model]}"] = (s["median"], mean_noise(runs, 100 * se))
    elif notebook == "04_classic_kd_imdb":
        n = rows.get("imdb", 1000)
        q["teacher IMDb accuracy"] = (100 * m["teacher_accuracy"], 100 * share_se(m["teacher_accuracy"], n))
        for r in m["table"]:
            for mode in ("single", "distilled"):
                runs = [100 * v for v in r[f"{mode}_runs"]]
                q[f"{MODELS[r['id']]}, {mode}"] = (100 * r[mode], mean_noise(runs, 100 * share_se(r[mode], n)))
    elif notebook == "05_summary":
        n = m["int8_check"]["eval_rows"]
        for kind in ("fp32", "int8"):
            p = m["int8_check"][kind]
            q[f"student IMDb accuracy, {kind}"] = (100 * p, 100 * share_se(p, n))
    return q


def eval_rows(record: dict) -> dict:
    """Evaluation rows by task from a record's data notes (the subset where one was taken)."""
    out = {}
    for key, info in record.get("data", {}).items():
        dataset, split = key.split("/")
        if split in ("validation", "test"):
            out[dataset] = info.get("subset_rows", info["rows"])
    return out


def paper_reference(notebook: str, name: str) -> str:
    """The paper's number for a quantity, where the paper reports one (DistilBERT's Tables 1-2)."""
    if notebook != "03_finetune_glue_imdb":
        return ""
    paper = REFERENCES["paper_scores"]
    model = name.split(", ", 1)[-1]
    for task_id, task in TASKS.items():
        if name.startswith(f"{task} "):
            if model == MODELS["teacher"]:
                return f"BERT-base {paper['BERT-base (paper)'][task_id]}"
            if model == MODELS["student_distilled"]:
                return f"DistilBERT {paper['DistilBERT (paper)'][task_id]}"
    return ""


def compare(notebook: str, metrics: dict, record_data: dict, profile: str, against: dict | None = None) -> str:
    """A Markdown table: each main number of this run, the committed cpu run's, the paper's (a reference, where it
    reports one), and whether the two runs agree within their noise. against: the record to compare with (default:
    the committed cpu record of the notebook)."""
    base = against if against is not None else committed(notebook)
    ours = quantities(notebook, metrics, eval_rows({"data": record_data}))
    theirs = quantities(notebook, base["metrics"], eval_rows(base)) if base else {}
    lines = [f"| {notebook}: quantity (x100) | this run ({profile}) | committed cpu run | paper (reference) "
             "| verdict |",
             "| --- | --- | --- | --- | --- |"]
    ties = apart = 0
    for name, (value, noise) in ours.items():
        ref = paper_reference(notebook, name)
        if name not in theirs:
            lines.append(f"| {name} | {value:.1f} ± {noise:.1f} | – | {ref} | no committed number |")
            continue
        other, other_noise = theirs[name]
        v = single(value, other, noise, other_noise)
        same = v.verdict == "tie"
        ties, apart = ties + same, apart + (not same)
        verdict = "in range" if same else f"differs by {v.diff:+.1f} (more than {v.margin:.1f})"
        lines.append(f"| {name} | {value:.1f} ± {noise:.1f} | {other:.1f} ± {other_noise:.1f} | {ref} | {verdict} |")
    if not base:
        lines.append("\nNo committed cpu record to compare with.")
    elif profile != "cpu":
        lines.append(f"\nThe committed run is `cpu` (a smaller teacher): a `{profile}` run is not expected to match it;"
                     " read the paper's column, where it has one.")
    else:
        lines.append(f"\n{ties} of {ties + apart} numbers in range of the committed cpu run (± is the noise: the "
                     "seeds' standard error or the test set's, whichever is larger; kd.noise).")
    return "\n".join(lines) + "\n"


def retrain_time(notebook: str) -> str:
    """What rerunning a notebook costs, for its exercises: the committed cpu run's minutes on 2 CPU cores (its
    record's wall_seconds) and kd.budget's estimate for the t4 profile on a Colab T4, both ends."""
    from .budget import estimate
    from .config import PROFILES

    record = committed(notebook)
    cpu = (f"{record['wall_seconds'] / 60:.0f} min on 2 CPU cores (the committed cpu run)" if record
           else "no committed cpu run to time it by")
    hours = sorted(estimate(PROFILES["t4"], end)[notebook]["hours"] for end in ("low", "high"))
    low, high = (f"{h:.1f}" for h in hours)
    return (f"Rerunning {notebook} takes about {cpu}, and {low if low == high else f'{low}-{high}'} h in the t4 "
            "profile on a Colab T4 "
            "(kd.budget's estimate); an exercise that retrains costs about that.")


def teacher_added(arms: dict, n: int) -> dict:
    """What the teacher added in notebook 02: the triple loss against its control (kd.ARMS: the same runs on the
    masked-LM loss alone), by the one rule (kd.noise). Masked-token accuracy in points, paired by seed (one seed:
    against the standard error of n held-out masked tokens); perplexity paired by seed as control - triple (a gain is a
    lower perplexity with the teacher), None with one seed (a single
    run's perplexity has no standard error here). arms: arm -> {"seeds", "masked_acc", "perplexity"}."""
    t, c = arms["triple"], arms["mlm_only"]
    if t["seeds"] != c["seeds"]:
        raise ValueError(f"the two arms ran different seeds ({t['seeds']} and {c['seeds']}): run both with the same")
    acc = judge([100 * a for a in t["masked_acc"]], [100 * a for a in c["masked_acc"]],
                *(100 * share_se(sum(x["masked_acc"]) / len(x["masked_acc"]), n) for x in (t, c)), floor=100 / n)
    ppl = paired(c["perplexity"], t["perplexity"]) if len(t["seeds"]) >= 2 else None  # control - triple
    return {"masked_acc": acc.as_dict(), "perplexity": ppl.as_dict() if ppl else None}


# Notebook 03's comparisons, each (a, b): a - b paired by seed. What the teacher's signal added (the distilled student
# against the same training without the teacher), what distillation added in all (against the untrained copy), and
# what training on the text alone added.
PAIRS_03 = {"teacher_signal": ("student_distilled", "student_mlm"),
            "distillation": ("student_distilled", "student_init"), "text_alone": ("student_mlm", "student_init")}


def _task_se(value: float, metric: str, n: int) -> float:
    """The test set's standard error of a score x100 (MCC: a correlation's; else a share's)."""
    p = value / 100
    return 100 * (correlation_se(p, n) if metric == "matthews_correlation" else share_se(p, n))


def finetune_comparisons(scores: dict, headline: dict, rows: dict, majority: dict) -> dict:
    """Per task: each pair of PAIRS_03 by the one rule (kd.noise, points of the headline metric, paired by seed), and
    whether the task can tell models apart at all: the teacher against the majority class (a tie: it cannot).
    scores: task -> model -> kd.seed_summary; rows: evaluation rows by task; majority: the majority class x100."""
    out = {}
    for task, by_model in scores.items():
        metric, n = headline[task], rows[task]
        runs = {m: [100 * r[metric] for r in s["runs"]] for m, s in by_model.items()}
        teacher = runs["teacher"]
        out[task] = {"teacher_vs_majority": single(sum(teacher) / len(teacher), majority[task],
                                                   _task_se(sum(teacher) / len(teacher), metric, n), 0.0).as_dict()}
        for name, (a, b) in PAIRS_03.items():
            if a in runs and b in runs:
                out[task][name] = judge(runs[a], runs[b], *(_task_se(sum(runs[m]) / len(runs[m]), metric, n)
                                                              for m in (a, b)), floor=100 / n).as_dict()
    return out


def teacher_imdb_accuracy(nb03: dict, profile) -> float | None:
    """The IMDb teacher's test accuracy from notebook 03's record (the saved model, seed 0) when notebook 04 scores
    the same reviews at the same length, so one quantity has one home; None when 04's reviews differ (t4: 512 tokens
    in 03, classic_max_len in 04), and 04 measures the teacher at its own length."""
    task, imdb = nb03["tasks"]["imdb"], nb03["scores"]["imdb"]["teacher"]
    if (task["eval_rows"], task["max_len"]) != (profile.classic_eval_rows, profile.classic_max_len):
        return None
    return imdb["runs"][imdb["seeds"].index(0)]["accuracy"]
