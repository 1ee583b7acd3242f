"""Profiles and distillation settings: one code path, four profiles (t4, cpu, smoke, t4-shapes).

A profile changes sizes and sources, never the code that runs. Every field says in one line why it has its value;
the measurements behind the values, with their commands and dates, are in code/studies/MEASUREMENTS.md.
Nothing here imports torch, so the report builder can read profiles without it.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[2]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SMOKE_DATA = REPO / "data" / "smoke"  # the smoke profile's samples and tiny tokenizer (made by tests/make_fixtures.py)


@dataclass(frozen=True)
class DistillConfig:
    """The triple loss of notebook 02 (general, masked-LM distillation)."""
    temperature: float = 2.0    # T > 1 softens both distributions, so the teacher's small probabilities teach too
    alpha_ce: float = 5.0       # soft-target KL weight (DistilBERT's reference recipe: 5 / 2 / 1)
    alpha_mlm: float = 2.0      # the student's own masked-LM loss on the true tokens
    alpha_cos: float = 1.0      # cosine between last hidden states: aligns the student's directions with the teacher's
    masked_only: bool = False   # KL and cosine on masked positions only, instead of every non-padding token


# Notebook 02's loss terms: name -> what it teaches. Each has its weight alpha_<name> in DistillConfig and its pure
# function in kd.losses.TERMS; everything else (ablation rows, labels, logs, figures, the command's flags) follows.
LOSS_TERMS = {"ce": "soft targets", "mlm": "masked LM", "cos": "cosine"}
TEACHER_TERMS = ("ce", "cos")  # the terms that read the teacher
# Notebook 02's runs, each a DistillConfig with some weights set to 0. ARMS: the triple loss and its control, the
# same run without the teacher's terms. ABLATION_ROWS: each term removed in turn, and a random student
ARMS = {"triple": {}, "mlm_only": {f"alpha_{t}": 0.0 for t in TEACHER_TERMS}}
ABLATION_ROWS = {"triple": {}, **{f"no_{t}": {f"alpha_{t}": 0.0} for t in LOSS_TERMS}, "random_init": {}}


def arm_config(cfg: DistillConfig, name: str) -> DistillConfig:
    """The DistillConfig of an arm (ARMS) or ablation row (ABLATION_ROWS): cfg with that row's weights set to 0."""
    rows = {**ARMS, **ABLATION_ROWS}
    if name not in rows:
        raise KeyError(f"Unknown run {name!r}; known: {', '.join(rows)}")
    return replace(cfg, **rows[name])


@dataclass(frozen=True)
class TaskKDConfig:
    """Task-level distillation (notebooks 03 and 04): alpha * CE(labels) + (1 - alpha) * soft loss."""
    alpha: float = 0.5          # weight of the hard labels; the rest goes to the teacher's soft targets
    temperature: float = 2.0    # softens the teacher's confident 0/1 answers so "how sure" teaches too
    mse: bool = False           # Tang et al.'s MSE between logits instead of T² KL


@dataclass(frozen=True)
class Profile:
    name: str
    teacher: str          # hub id of the teacher, or a random stand-in of kd.models.RANDOM_MODELS (tests)
    data_root: str | None  # None: the Hugging Face hub; else a folder laid out like the hub (KD_DATA_ROOT wins)
    seed: int = 42        # one seed for data order, masking and initialisation, so reruns match
    # masked-LM corpus (notebooks 01-02)
    mlm_corpus: str = "wikitext2"        # key of kd.data.DATASETS
    mlm_train_split: str = "validation"  # the offline mirror has no WikiText train split: say which is used
    mlm_eval_split: str = "test"         # held-out text for masked-token accuracy; never trained on
    block_size: int = 128                # tokens per block: the paper's 512 costs 4x in attention
    eval_blocks: int = 200               # held-out blocks scored: ~3,800 masked tokens, a standard error of ~0.8%
    train_blocks: int | None = None      # None: every block of the training split; a number cuts it (the tests)
    # notebook 01
    student_layers: int = 3              # half the teacher, as DistilBERT keeps 6 of BERT's 12
    head_fit_steps: int = 60             # the encoder is frozen, so a missing head converges in few steps
    head_fit_batch: int = 16             # blocks per step while fitting the head
    head_fit_lr: float = 1e-3            # only ~0.2M new weights: a large rate is safe
    teacher_adapt_steps: int = 600       # then every weight, until it is a better masked LM than its student becomes
    teacher_adapt_lr: float = 2e-4       # a fine-tuning rate; t4 adapts nothing (BERT has its head)
    latency_runs: int = 30               # timed repeats; the median ignores the odd slow one
    latency_seq_len: int = 128           # the one sequence length every CPU latency of the course is measured at
    fp16: bool = False                   # mixed precision: halves memory, doubles speed on a T4
    cpu_bf16: bool = True                # KD_CPU_BF16=auto: bf16 autocast where the CPU has it natively (kd.precision)
    # notebook 02: distillation
    distill: DistillConfig = DistillConfig()  # the triple loss: its temperature and weights (task_kd: notebooks 03-04)
    distill_steps: int = 100             # optimiser steps of each run of the triple loss and of its control
    student_blocks: int | None = 256     # the student's text: the first blocks of the teacher's (None: all). An
    # eighth, seen ~6 times: scarce text is where soft targets show (Hinton et al. 2015, sec. 4; MEASUREMENTS.md)
    distill_seeds: int = 2               # seeds of the triple loss and of its control, paired by seed (kd.noise)
    curve_points: int = 5                # held-out scores along each run, besides step 0: the learning curve
    distill_minutes: float = 25.0        # time budget: training stops cleanly (and saves) when reached
    distill_batch: int = 16              # blocks per forward pass; bounded by memory
    distill_accum: int = 1               # gradient accumulation: effective batch = batch x accum blocks
    distill_lr: float = 3e-4             # peak rate, warm-up then linear decay (1e-4 barely moved a weight)
    warmup_steps: int = 10               # ~10% of the steps
    checkpoint_minutes: float = 5.0      # save this often so a disconnect loses at most this much
    ablation_steps: int = 40             # each ablation run: the same for every row; long enough for the rows to part
    ablation_seeds: int = 2              # runs per row (masking, data order, random init): a spread to compare against
    ablation_accum: int | None = None    # accumulation of each ablation step; None: the main run's distill_accum
    logging_steps: int = 10              # how often each loss term is logged
    # notebook 03: fine-tuning. task_sizes: task -> (train rows, eval rows, epochs); None = all rows / the task's own
    task_sizes: dict = field(default_factory=lambda: {  # every CoLA and MRPC row; CoLA's 3 epochs (2 left the
        "cola": (None, None, 3), "mrpc": (None, None, 1), "imdb": (2000, 1000, 1)})  # students at the majority class)
    max_len_cap: int = 128               # truncate long texts (IMDb) here; a T4 affords BERT's full 512
    finetune_seeds: int = 3              # seeds of the teacher and the three students on CoLA, MRPC: paired by seed
    baseline_seeds: int = 1              # seeds of the reference rows (the released DistilBERT in t4)
    imdb_seeds: int = 2                  # IMDb runs are the longest: fewer seeds, two to pair
    finetune_lr: float | None = 1e-4     # None: BERT-base's rate per task (3e-5 kept MiniLM at the majority)
    task_kd: TaskKDConfig = TaskKDConfig()  # task-level distillation, notebooks 03 (DistilBERT (D)), 04 (Tang et al.)
    released_student: str | None = None  # a released distilled model fine-tuned beside ours, as a reference row
    # notebook 04: classic distillation into small students on IMDb
    classic_max_len: int = 128           # tokens per review; the earlier demo's 128 was its main handicap on a T4
    classic_train_rows: int | None = 3000      # labelled reviews (None: all 25,000)
    classic_transfer_rows: int | None = 10000  # unlabelled reviews the teacher labels softly (None: all 50,000)
    classic_eval_rows: int | None = 1000       # test reviews scored (None: all 25,000); the same subset as notebook 03
    classic_dim: int = 128               # embedding and hidden width of the small students
    classic_steps: int = 400             # per student and mode: distillation needs passes over its data; fits 60 min
    classic_batch: int = 64              # reviews per step: at 32 the single students caught the distilled ones up
    classic_lr: float = 1e-3             # small students from scratch learn at Adam's usual rate
    classic_seeds: int = 3               # runs of each student, alone and distilled: gains paired over seeds
    classic_control: tuple = ("bilstm-1", "transformer-1")  # also on the labelled reviews' soft targets alone
    classic_transfer: str = "unlabelled"  # the transfer set: "unlabelled" reviews, "augmented" rewrites, or "both"
    classic_rewrites: int = 2            # rewrites per labelled review (Tang et al.: 10-20 of shorter sentences)
    classic_workers: int = 2             # students trained at once, a thread each (faster on 2 cores); a GPU: one
    # notebook 05
    int8_eval_rows: int | None = None    # reviews the int8 student is scored on, on the CPU (None: notebook 03's all)

    def task_size(self, task: str) -> "TaskSize":
        """Notebook 03's size of one task: training rows, evaluation rows (None: all) and epochs (None: the task's own
        epochs, TASKS[task].epochs, filled in here)."""
        train_rows, eval_rows, epochs = self.task_sizes.get(task, (None, None, None))
        return TaskSize(train_rows, eval_rows, TASKS[task].epochs if epochs is None else epochs)

    def ablation_accumulation(self) -> int:
        """Blocks accumulated per ablation step: ablation_accum, else the main run's distill_accum."""
        return self.ablation_accum or self.distill_accum

    def seeds(self, task: str, model: str) -> list[int]:
        """Notebook 03's fine-tuning seeds of one model on one task (none: the model skips that task)."""
        if model == "student_task_kd" and task not in TASK_KD_TASKS:
            return []
        if task == "imdb":
            return list(range(self.imdb_seeds))
        return list(range(self.finetune_seeds if model in FINETUNED else self.baseline_seeds))

    def task_settings(self, task: str) -> dict:
        """What notebook 03 runs for a task, as kd.finetune and kd.task_split apply it: the task's spec with the
        profile's learning rate, epochs, length cap and rows."""
        t, size = TASKS[task], self.task_size(task)
        return {**asdict(t), "lr": self.finetune_lr or t.lr, "epochs": size.epochs,
                "max_len": min(t.max_len, self.max_len_cap), "train_rows": size.train_rows, "eval_rows": size.eval_rows}


class TaskSize(NamedTuple):
    train_rows: int | None  # None: every row of the split
    eval_rows: int | None
    epochs: float


@dataclass(frozen=True)
class Task:
    name: str
    dataset: str                 # key of DATASETS
    text_fields: tuple           # one field, or a sentence pair
    train_split: str
    eval_split: str              # GLUE tests are unlabelled: the paper reports GLUE on dev, IMDb on test
    metric: str                  # the headline metric, as the paper reports it
    lr: float                    # BERT's fine-tuning grid is {2, 3, 5}e-5; small sets like the upper end
    batch: int
    epochs: float
    max_len: int                 # t4 length; a profile may cap it (profile.max_len_cap)


FINETUNED = ("teacher", "student_distilled", "student_mlm", "student_init")  # notebook 03's models, paired by seed
TASK_KD_TASKS = ("imdb",)  # task distillation at fine-tuning: the paper's DistilBERT (D) ran it on SQuAD (Table 2);
# on IMDb it is this course's extension
TASKS = {
    "cola": Task("cola", "cola", ("sentence",), "train", "validation", "matthews_correlation", 3e-5, 32, 3, 128),
    "mrpc": Task("mrpc", "mrpc", ("sentence1", "sentence2"), "train", "validation", "f1_acc_mean", 5e-5, 32, 3, 128),
    "imdb": Task("imdb", "imdb", ("text",), "train", "test", "accuracy", 3e-5, 16, 2, 512),
}


PROFILES = {
    "t4": Profile(
        name="t4", teacher="google-bert/bert-base-uncased", data_root=None, fp16=True, student_layers=6,
        mlm_corpus="wikitext103", mlm_train_split="train", mlm_eval_split="validation",
        block_size=256, eval_blocks=500, head_fit_steps=0, teacher_adapt_steps=0, latency_runs=30,
        # two arms (the triple loss and its control) of 900 steps x 128 blocks, one seed, and an ablation at half
        # that batch: notebook 02 fits one 2.5 h session at the budget's pessimistic end (kd.budget.T4_SHARE)
        distill_steps=900, student_blocks=None, distill_seeds=1, distill_minutes=50.0, distill_batch=16,
        distill_accum=8, distill_lr=3e-4,
        warmup_steps=60, checkpoint_minutes=20.0, ablation_steps=100, ablation_seeds=2, ablation_accum=4,
        logging_steps=25,
        task_sizes={}, max_len_cap=512, finetune_seeds=5, baseline_seeds=5, imdb_seeds=1, finetune_lr=None,
        classic_max_len=256, classic_train_rows=None, classic_transfer_rows=None, classic_eval_rows=None,
        classic_dim=256, classic_steps=6000, classic_workers=1, classic_transfer="both", int8_eval_rows=1000,
        released_student="distilbert/distilbert-base-uncased"),  # int8 runs on Colab's 2 CPU cores: see kd.budget
    "cpu": Profile(name="cpu", teacher=MINILM, data_root=None),  # the defaults are cpu's
    "smoke": Profile(
        name="smoke", teacher="tiny", data_root=str(SMOKE_DATA), student_layers=2,
        block_size=32, eval_blocks=8, head_fit_steps=5, teacher_adapt_steps=3, head_fit_batch=4, head_fit_lr=1e-2,
        latency_runs=3,
        latency_seq_len=32, distill_steps=6, student_blocks=8, distill_minutes=2.0, distill_batch=4,
        distill_accum=1,
        warmup_steps=1, checkpoint_minutes=1.0, ablation_steps=3, logging_steps=1,
        task_sizes={t: (48, 24, 1) for t in TASKS}, max_len_cap=64, finetune_seeds=2,
        baseline_seeds=1,
        classic_max_len=32, classic_train_rows=48, classic_transfer_rows=48, classic_eval_rows=24, classic_dim=16,
        classic_steps=4, classic_batch=8, classic_seeds=2, classic_transfer="both", classic_rewrites=1),
}
# t4's shapes and code paths on a CPU, fp16 off, data and steps cut to a handful: what the tests run for t4. A random
# teacher of google-bert/bert-base-uncased's shapes with its masked-LM head (no head fitting, as in t4), 12 -> 6 layers,
# blocks of 256, accumulation 8, 512-token IMDb, the released-DistilBERT row (random weights), int8. Sources: the smoke
# samples.
PROFILES["t4-shapes"] = replace(
    PROFILES["t4"], name="t4-shapes", teacher="random-bert-base", released_student="random-distilbert-base",
    data_root=str(SMOKE_DATA), fp16=False, mlm_corpus="wikitext2", mlm_train_split="validation",
    mlm_eval_split="test", eval_blocks=1, train_blocks=1, latency_runs=2, distill_steps=1, distill_minutes=10.0,
    distill_batch=1, warmup_steps=1, ablation_steps=1, ablation_seeds=1, ablation_accum=1, logging_steps=1,
    task_sizes={"cola": (4, 4, 1), "mrpc": (4, 4, 1), "imdb": (1, 2, 1)}, finetune_seeds=1, baseline_seeds=1,
    classic_train_rows=4, classic_transfer_rows=4, classic_eval_rows=4, classic_steps=1, classic_batch=4,
    classic_seeds=1, classic_rewrites=1,
    int8_eval_rows=2)
TINY_BERT = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=2, intermediate_size=128,
                 max_position_embeddings=128)  # the smoke teacher: ~0.2M weights, random


def get_profile(name: str | None = None, needs_gpu: bool = True) -> Profile:
    """The profile named, else $KD_PROFILE, else `t4` on a GPU and `cpu` without one. needs_gpu=False: a notebook that
    only reads a run's records and runs on the CPU (05) may use a GPU profile on a CPU runtime."""
    import torch  # here, not at the top: the report builder reads profiles without torch

    name = name or os.environ.get("KD_PROFILE") or ("t4" if torch.cuda.is_available() else "cpu")
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}. Valid profiles: {', '.join(PROFILES)} "
                         "(set KD_PROFILE to one of them, or unset it to choose by hardware).")
    if needs_gpu and PROFILES[name].fp16 and not torch.cuda.is_available():
        raise RuntimeError(f"Profile {name!r} needs a CUDA GPU (fp16) and none is visible. In Colab: Runtime > "
                           "Change runtime type > T4 GPU. On a CPU machine use KD_PROFILE=cpu.")
    return PROFILES[name]
