"""Measurements: task scores (kd.metrics' evaluate.Metric subclasses, which work offline), masked-LM accuracy,
retention, and CPU latency — each measured in one place."""
from __future__ import annotations

import math
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from .models import kept_in_place, masked_lm_logits


def masked_lm_eval(model, batches: list[dict]) -> dict:
    """Masked-token accuracy and perplexity (exp of mean cross-entropy) over the masked positions.
    Runs on the GPU when there is one; the model goes back where it was, in the mode it was in. The moves happen
    outside inference mode: parameters moved inside it would become inference tensors that can't be trained."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    correct = total = 0
    nll = 0.0
    with kept_in_place(model):
        model.eval().to(device)
        with torch.inference_mode():
            for batch in batches:
                inputs = {k: batch[k].to(device) for k in ("input_ids", "attention_mask")}
                labels = batch["labels"].to(device)
                sel = labels != -100
                logits = masked_lm_logits(model, **inputs, picked=sel)  # (masked tokens, vocab)
                correct += (logits.argmax(-1) == labels[sel]).sum().item()
                nll += F.cross_entropy(logits.float(), labels[sel], reduction="sum").item()
                total += sel.sum().item()
    return {"masked_acc": correct / total, "perplexity": math.exp(nll / total), "masked_tokens": total}


def task_scores(predictions, references) -> dict:
    """Every metric the course reports for a binary task, from class predictions."""
    from .metrics import F1, Accuracy, MatthewsCorrelation  # here: importing `evaluate` takes seconds

    scores = {**Accuracy().compute(predictions=predictions, references=references),
              **F1().compute(predictions=predictions, references=references),
              **MatthewsCorrelation().compute(predictions=predictions, references=references)}
    scores["f1_acc_mean"] = (scores["f1"] + scores["accuracy"]) / 2  # MRPC's single number in the paper
    return scores


def compute_task_metrics(eval_pred) -> dict:
    logits, labels = eval_pred
    return task_scores(np.argmax(logits, axis=-1).tolist(), np.asarray(labels).tolist())


def baselines(train_labels, eval_labels, draws: int = 20, seed: int = 0) -> dict:
    """What a model scores without reading the text, measured on the evaluation labels: "majority", always the
    training set's most frequent label (the label it names too), and "chance", uniform random labels (the mean over
    `draws` seeded draws). A score is worth reading against these: on MRPC the majority class alone is most of it."""
    majority = int(np.bincount(np.asarray(train_labels)).argmax())
    refs = np.asarray(eval_labels).tolist()
    rng = np.random.default_rng(seed)
    drawn = [task_scores(rng.integers(0, 2, len(refs)).tolist(), refs) for _ in range(draws)]
    return {"majority_label": majority, "majority": task_scores([majority] * len(refs), refs),
            "chance": {k: statistics.mean(d[k] for d in drawn) for k in drawn[0]}}


def retention_above(student: float, teacher: float, baseline: float) -> float | None:
    """How much of the teacher's gain over a baseline the student keeps: (student - baseline) / (teacher -
    baseline); None where the teacher does not beat the baseline. Scores, not x100."""
    return (student - baseline) / (teacher - baseline) if teacher > baseline else None


def retention(student: float, teacher: float) -> float | None:
    """How much of the teacher's score the student keeps (student / teacher); None where the teacher scores <= 0,
    as a Matthews correlation of 0 (constant predictions) does."""
    return student / teacher if teacher > 0 else None


def seed_summary(runs: list[dict], metric: str, seeds: list[int]) -> dict:
    """One model on one task over seeds: the runs' scores, and the median and range of `metric` x100, as the paper
    prints them (it reports the median of 5 seeds)."""
    values = [100 * r[metric] for r in runs]
    return {"seeds": seeds, "runs": runs, "median": statistics.median(values), "range": [min(values), max(values)]}


def mean_spread(values: list[float], seeds: list[int]) -> dict:
    """Runs of one setting over seeds: each value, their mean, and their spread (sample standard deviation; 0 for
    a single run) and range."""
    return {"seeds": seeds, "runs": values, "mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "range": [min(values), max(values)]}


def mean_retention(per_task: dict) -> float | None:
    kept = [v for v in per_task.values() if v is not None]
    return statistics.mean(kept) if kept else None


def cpu_latency_ms(models: dict, seq_len: int, runs: int, vocab_size: int, warmup: int = 3) -> dict[str, float]:
    """Median wall time (ms) of one forward pass at batch 1 on the CPU, per model.

    The models take turns within each repeat, so a slow spell of the machine hits all of them alike. Each goes
    back to its device and mode afterwards.
    """
    ids = torch.randint(min(1000, vocab_size // 2), vocab_size, (1, seq_len),
                        generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    times = {name: [] for name in models}
    with kept_in_place(*models.values()):
        for model in models.values():
            model.eval().cpu()  # moved outside inference mode (see masked_lm_eval), whatever the caller had
        with torch.inference_mode():
            for i in range(warmup + runs):
                for name, model in models.items():
                    t0 = time.perf_counter()
                    model(input_ids=ids, attention_mask=mask)
                    if i >= warmup:
                        times[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 quantization of every linear layer (torch.ao.quantization.quantize_dynamic): weights stored as
    8-bit integers, computed with on the CPU only; no retraining. A copy: the model itself stays fp32."""
    return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
