"""kd: the helpers the course notebooks share. Each notebook shows its idea and calls these.

    config     profiles (t4, cpu, smoke, t4-shapes), the distillation configs, tasks no torch
    budget     hours and Drive bytes a profile costs on a free Colab T4 (estimates)  no torch
    records    folders, run records, the registry of saved artifacts                 no torch
    machine    the precision a CPU computes in, versions and hardware for the records no torch
    labels     ids -> display labels, and other people's numbers (references)        no torch
    tables     records -> the summary tables (Markdown here, Typst in the report)     no torch
    figures    records -> every figure of the course, in one style                     no torch
    lesson     a run beside the committed cpu run and the papers, with a verdict       no torch
    noise      the one rule for gain / loss / tie: paired over seeds, else test-set SE  no torch
    data       datasets from the hub or a local mirror, masked-LM blocks, tasks
    models     teacher and every-other-layer student
    losses     the triple loss and the task-level loss, as pure functions
    resume     the last complete checkpoint, one kept at a time, time budgets, out-of-memory hints
    training   Trainers: shared arguments, head fit, distillation, learning curves
    finetuning fine-tuning on labels, with or without soft targets; logits on a dataset
    measure    task scores, masked-LM accuracy, retention, CPU latency
    students   small BiLSTM / BiGRU / Attention / Transformer students: the model
    student_runs  notebook 04's runs: every student, mode and seed, several at once
    augment    Tang et al.'s augmented transfer set, the teacher's masked LM picking replacements
    transfer   notebook 04's transfer set, built and labelled by the teacher in one place
    metrics    accuracy, F1, Matthews correlation as evaluate.Metric subclasses (offline)
    runtime    the notebooks' set-up: Colab's installs and Drive, versions against the tested range   no torch
    hub_check  every hub id a profile loads, resolved before the long runs (metadata only)
    gpu_check  the t4 settings measured on a GPU in minutes (python -m kd.gpu_check)

`import kd` is cheap: the torch-free modules load at once, the others on first use of one of their names
(`kd.distill` imports kd.training), so the report builder never imports torch.
"""
import importlib

from .config import (ABLATION_ROWS, ARMS, MINILM, PROFILES, REPO, SMOKE_DATA, TASK_KD_TASKS, TASKS, TINY_BERT,
                     DistillConfig, Profile, Task, TaskKDConfig, arm_config, get_profile)
from .machine import cpu_bf16, precision, versions
from .records import (ARTIFACTS, NOTEBOOKS, SCHEMA, Run, artifact_path, artifacts_dir, finetune_dir, fingerprint,
                      load_record, logits_cache, load_saved, portable, results_dir, save_artifact, saved_path,
                      summary_profile)
from . import budget, figures, labels, lesson, noise, tables

# What the heavy modules export, by module: kd.<name> imports its module on first use (PEP 562). Nothing else
# resolves: a notebook imports torch, transformers and datasets from themselves, not through kd.
_LAZY = {
    "data": ["DATASETS", "cached_blocks", "data_root", "encode", "fixed_masked_batches", "load_split", "mlm_blocks",
             "mlm_collator", "mlm_corpus", "noted_split", "provenance", "random_subset", "task_data", "task_split"],
    "models": ["BERT_VOCAB", "RANDOM_MODELS", "build_student", "count_params", "fill_mask", "kept_in_place",
               "load_imdb_teacher", "load_masked_lm", "load_mlm_teacher", "masked_lm_logits", "mlm_teacher_source",
               "model_source", "random_model", "serialized_mb", "student_layer_ids", "student_weight_map",
               "teacher_source"],
    "losses": ["classic_kd_loss", "cosine_loss", "distillation_terms", "masked_lm_loss", "soft_target_loss",
               "weighted_loss"],
    "resume": ["KeepLastCheckpoint", "TimeBudget", "complete_checkpoints", "explain_oom", "remove_checkpoint",
               "scores_file", "train_resumable", "weights_digest"],
    "training": ["DistillationTrainer", "HeldOutCurve", "MaskedLMTrainer", "OwnLossTrainer",
                 "blocks_per_step", "distill", "distillation_metrics", "fit_mlm_head", "loss_history",
                 "session_tokens_per_second", "training_args"],
    "finetuning": ["SoftTargetTrainer", "finetune", "predict_logits"],
    "measure": ["baselines", "compute_task_metrics", "cpu_latency_ms", "masked_lm_eval", "mean_retention",
                "mean_spread", "quantize_int8", "retention", "retention_above", "seed_summary", "task_scores"],
    "students": ["SmallStudent", "make_student", "projected_embeddings"],
    "student_runs": ["BF16_SLOWER", "student_precision", "train_students"],
    "augment": ["AugmentConfig", "augment_reviews"],
    "transfer": ["TRANSFER_CHOICES", "TransferKey", "classic_reviews", "transfer_set"],
    "metrics": ["Accuracy", "F1", "MatthewsCorrelation"],  # imports evaluate (seconds)
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}
__all__ = ["ABLATION_ROWS", "ARMS", "arm_config", "MINILM", "REPO", "SMOKE_DATA", "TASK_KD_TASKS", "TASKS",
           "TINY_BERT", "DistillConfig", "Profile", "PROFILES", "Task", "TaskKDConfig", "get_profile", "cpu_bf16",
           "precision", "versions", "ARTIFACTS", "NOTEBOOKS", "SCHEMA", "Run", "artifact_path", "artifacts_dir",
           "finetune_dir", "fingerprint", "load_record", "logits_cache", "load_saved", "portable", "results_dir",
           "save_artifact", "saved_path", "summary_profile", "budget", "noise", "figures", "labels", "lesson",
           "tables", *_WHERE]
# submodules with no names of their own here: import kd.<module>
_OWN = {"distill_mlm", "gpu_check", "hub_check", "runtime"}


def __getattr__(name: str):
    """kd.<name> for the names in _LAZY (and kd.<module> for each heavy module), imported on first use."""
    module = _WHERE.get(name) or (name if name in _LAZY or name in _OWN else None)
    if module is None:
        raise AttributeError(f"module 'kd' has no attribute {name!r} (kd exports what kd/__init__.py lists)")
    mod = importlib.import_module(f".{module}", __name__)
    globals()[name] = value = mod if name == module else getattr(mod, name)
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE) | set(_LAZY))
