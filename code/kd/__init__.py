"""kd: the helpers the course notebooks share. Each notebook shows its idea and calls these.

    config     profiles (t4, cpu, smoke, t4-shapes), the distillation configs, tasks no torch
    budget     hours and Drive bytes a profile costs on a free Colab T4 (estimates)  no torch
    records    folders, run records, the registry of saved artifacts                 no torch
    labels     ids -> display labels, and other people's numbers (references)        no torch
    tables     records -> the summary tables (Markdown here, Typst in the report)     no torch
    figures    records -> every figure of the course, in one style                     no torch
    data       datasets from the hub or a local mirror, masked-LM blocks, tasks
    models     teacher and every-other-layer student
    losses     the triple loss and the task-level loss, as pure functions
    resume     the last complete checkpoint, one kept at a time, time budgets, out-of-memory hints
    training   Trainers: head fit, distillation, fine-tuning
    measure    task scores, masked-LM accuracy, retention, CPU latency
    students   small BiLSTM / BiGRU / Attention / Transformer students
    metrics    accuracy, F1, Matthews correlation as evaluate.Metric subclasses (offline)
    runtime    the notebooks' set-up: Colab's installs and Drive, versions against the tested range   no torch

`import kd` is cheap: the torch-free modules load at once, the others on first use of one of their names
(`kd.distill` imports kd.training), so the report builder never imports torch.
"""
import importlib

from .config import (MINILM, REPO, SMOKE_DATA, TASK_KD_TASKS, TASKS, TINY_BERT, DistillConfig, Profile, PROFILES, Task,
                     TaskKDConfig, get_profile)
from .records import (ARTIFACTS, NOTEBOOKS, SCHEMA, Run, artifacts_dir, cpu_bf16, finetune_dir, fingerprint, load_record,
                      load_saved, precision, results_dir, saved_path, versions)
from . import budget, figures, labels, tables  # noqa: F401

_LAZY = ("data", "models", "losses", "resume", "training", "measure", "students",
         "metrics")  # these import torch, transformers, datasets (metrics: evaluate)


def __getattr__(name: str):
    """kd.<name> from the heavy modules, imported on first use (PEP 562); also kd.torch, kd.transformers, kd.datasets."""
    if not name.startswith("__"):
        for module in _LAZY:
            mod = importlib.import_module(f".{module}", __name__)
            if name == module or hasattr(mod, name):
                globals()[name] = value = mod if name == module else getattr(mod, name)
                return value
    raise AttributeError(f"module 'kd' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {n for m in _LAZY for n in dir(importlib.import_module(f".{m}", __name__))
                                    if not n.startswith("__")})
