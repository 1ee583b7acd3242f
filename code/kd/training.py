"""Training with the library's Trainer: shared arguments, the masked-LM head fit (notebook 01), masked-LM
distillation (notebook 02), fine-tuning with or without soft targets (03-04). Resume and checkpoints: kd.resume."""
from __future__ import annotations

import gc
import json
import time
from dataclasses import asdict
from pathlib import Path

import datasets
import torch
import torch.nn.functional as F
import transformers
from transformers import BertForMaskedLM, Trainer, TrainingArguments

from .config import LOSS_TERMS, DistillConfig, Profile
from .data import mlm_collator
from .losses import distillation_terms, weighted_loss
from .measure import masked_lm_eval
from .models import kept_in_place, masked_lm_logits
from .machine import precision
from .resume import (KeepLastCheckpoint, TimeBudget, explain_oom, remove_checkpoint, scores_file, train_resumable)

_FROZEN = False


def _freeze_long_lived_objects() -> None:
    """Every Trainer.train() runs gc.collect() (accelerate's free_memory). With torch, transformers and datasets loaded
    that walks ~500,000 objects: 0.5 s a run, 50 runs a notebook. They live as long as the process, so they are frozen
    out of the collector's walks (models are freed by reference count, without it): once, when the first Trainer of
    the process is set up, not when the module is imported."""
    global _FROZEN
    if not _FROZEN:
        gc.collect()
        gc.freeze()
        _FROZEN = True


def training_args(profile: Profile, output_dir: Path, **overrides) -> TrainingArguments:
    """TrainingArguments shared by every Trainer of the course; each notebook overrides what it teaches."""
    _freeze_long_lived_objects()
    gpu, dtype = torch.cuda.is_available(), precision(profile)  # KD_CPU_BF16=auto|1|0 picks a CPU's (kd.precision)
    args = dict(output_dir=str(output_dir), seed=profile.seed, fp16=dtype == "fp16",
                bf16=dtype == "bf16",  # on a CPU: ~1.4x a step where bf16 is native, several times slower elsewhere
                report_to="none", logging_steps=profile.logging_steps, save_strategy="no",
                optim="adamw_torch_fused",  # one kernel for all weights: the optimiser step ~5x faster on a CPU
                dataloader_num_workers=0, use_cpu=not gpu)
    args.update(overrides)
    return TrainingArguments(**args)


class OwnLossTrainer(Trainer):
    """A Trainer whose compute_loss returns the mean over its micro-batch, to be divided by the accumulation steps.

    The library divides a loss by gradient_accumulation_steps only where it believes the loss was not already
    normalised over the whole accumulated batch. Since transformers 5.x it believes that of every model whose forward
    takes **kwargs (BERT, DistilBERT), unless told otherwise; 5.15 (Colab's) has no other way to tell it than
    model_accepts_loss_kwargs, so it is set here, after the library set it: the same on every version in range.
    Without it, a run accumulating 8 micro-batches logs and clips an 8x loss and gradient."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False  # our loss ignores num_items_in_batch: let the Trainer divide

    def mixed_precision(self):
        """The autocast the Trainer runs a model's forward in (fp16 on a GPU, bf16 on a CPU that has it), for what
        compute_loss runs outside that forward: a frozen teacher, or a model called by its parts."""
        half = torch.float16 if self.args.fp16 else torch.bfloat16
        return torch.autocast(self.args.device.type, half, enabled=self.args.fp16 or self.args.bf16)

    def _load_optimizer_and_scheduler(self, checkpoint):
        """Resuming under torchrun on CPUs: transformers 5.15 maps the optimiser state to args.device, which is
        "cpu:<rank>" there and which torch.load cannot restore (newer versions map it to "cpu"). Loaded as "cpu"."""
        device = self.args.device
        if checkpoint is None or device.type != "cpu" or device.index is None:
            return super()._load_optimizer_and_scheduler(checkpoint)
        self.args.__dict__["_setup_devices"] = torch.device("cpu")  # the cached value behind args.device
        try:
            return super()._load_optimizer_and_scheduler(checkpoint)
        finally:
            self.args.__dict__["_setup_devices"] = device


class MaskedLMTrainer(OwnLossTrainer):
    """The library's masked-LM training, with the vocabulary projection run on the masked positions only
    (kd.masked_lm_logits): the same loss as the model's own, at about half the cost of a small model's step."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        picked = labels != -100
        # masked_lm_logits calls the model's parts, not its forward, which is where the Trainer's mixed precision
        # lives (accelerate wraps forward in autocast): the same autocast here, explicitly
        with self.mixed_precision():
            logits = masked_lm_logits(model, inputs["input_ids"], inputs["attention_mask"], picked)
        loss = F.cross_entropy(logits.float(), labels[picked])
        return (loss, logits) if return_outputs else loss


def fit_mlm_head(teacher: BertForMaskedLM, tokenizer, train_blocks: datasets.Dataset, profile: Profile,
                 output_dir: Path, whole: bool = False, callbacks: tuple = ()) -> list[dict]:
    """Train the masked-LM head (transform + output bias; decoder tied to the word embeddings) with the encoder
    frozen, for profile.head_fit_steps; whole=True: then every weight, for profile.teacher_adapt_steps.

    While the encoder is frozen it is also deterministic (its dropout off), so the head learns to read exactly the
    features it will see at inference. Adapting every weight afterwards turns a sentence encoder into a masked LM
    whose word distribution is worth imitating.
    """
    for name, p in teacher.named_parameters():
        p.requires_grad = whole or name.startswith("cls.predictions.")  # the tied decoder is named as an embedding
    assert teacher.cls.predictions.decoder.weight is teacher.bert.embeddings.word_embeddings.weight
    dropouts = [] if whole else [m for m in teacher.bert.modules() if isinstance(m, torch.nn.Dropout)]
    rates = [m.p for m in dropouts]
    for m in dropouts:
        m.p = 0.0
    steps, lr = (profile.teacher_adapt_steps, profile.teacher_adapt_lr) if whole else (profile.head_fit_steps,
                                                                                      profile.head_fit_lr)
    args = training_args(profile, output_dir, max_steps=steps, learning_rate=lr, weight_decay=0.0,
                         per_device_train_batch_size=profile.head_fit_batch, lr_scheduler_type="linear",
                         warmup_steps=max(1, steps // 10))
    try:
        with kept_in_place(teacher):  # entered before the Trainer moves the teacher to its device
            trainer = MaskedLMTrainer(model=teacher, args=args, train_dataset=train_blocks,
                                      data_collator=mlm_collator(tokenizer), callbacks=list(callbacks))
            trainer.train()
    finally:  # even an interrupted fit leaves the teacher as it found it: dropout rates, trainable, device, mode
        for m, rate in zip(dropouts, rates):
            m.p = rate
        teacher.requires_grad_(True)
    return trainer.state.log_history


class DistillationTrainer(OwnLossTrainer):
    """A Trainer whose loss is the triple loss against a frozen teacher; logs each term unweighted."""

    def __init__(self, *args, teacher, distill_config: DistillConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.eval().requires_grad_(False).to(self.args.device)
        self.distill_config = distill_config
        self._term_sums, self._term_batches = {}, 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        out_s = model(**inputs, output_hidden_states=True)
        # the teacher's weights stay fp32 (halving them in place would round them for good); its forward runs
        # under the autocast the Trainer runs the student's in: fp16 on a GPU, bf16 on a CPU that has it
        with torch.no_grad(), self.mixed_precision():
            out_t = self.teacher(**inputs, output_hidden_states=True)
        terms = distillation_terms(out_s, out_t, labels, inputs["attention_mask"], self.distill_config)
        for k, v in terms.items():
            self._term_sums[k] = self._term_sums.get(k, 0.0) + v.item()
        self._term_batches += 1
        loss = weighted_loss(terms, self.distill_config)
        return (loss, out_s) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs) -> None:
        if "loss" in logs and self._term_batches:  # the mean of each unweighted term since the last log
            logs.update({f"loss_{k}": v / self._term_batches for k, v in self._term_sums.items()})
            self._term_sums, self._term_batches = {}, 0
        super().log(logs, *args, **kwargs)


def distill(student, teacher, tokenizer, blocks: datasets.Dataset, profile: Profile, cfg: DistillConfig,
            output_dir: Path, max_steps: int, minutes: float, final_checkpoint: bool = True,
            seed: int | None = None, accum: int | None = None, callbacks: tuple = ()) -> DistillationTrainer:
    """Distil `teacher` into `student` for max_steps (or `minutes`), resuming from the last complete checkpoint in
    output_dir. One checkpoint is kept (model and optimiser, every checkpoint_minutes); final_checkpoint=False skips
    the one at the end, for short runs whose result is stored elsewhere (the ablation), and removes their checkpoints
    once done. seed: masking and data order (default: the profile's); accum: gradient accumulation (default: the
    profile's distill_accum); callbacks: more TrainerCallbacks (kd.HeldOutCurve). Both models go back where they came
    from."""
    args = training_args(profile, output_dir, max_steps=max_steps, per_device_train_batch_size=profile.distill_batch,
                         gradient_accumulation_steps=accum or profile.distill_accum, learning_rate=profile.distill_lr,
                         warmup_steps=min(profile.warmup_steps, max_steps // 10 + 1), lr_scheduler_type="linear",
                         weight_decay=0.0, max_grad_norm=5.0,
                         ddp_find_unused_parameters=False,  # under torchrun: every weight of the student is used
                         seed=profile.seed if seed is None else seed)
    # a checkpoint is resumed only by the run that wrote it (more steps may follow): other settings are an error that
    # names the fix, never a silent restore of the old student
    scores_file(Path(output_dir), {"batch": args.per_device_train_batch_size, "seed": args.seed,
                                         "accum": args.gradient_accumulation_steps, "lr": args.learning_rate,
                                         "config": asdict(cfg), "student_params": student.num_parameters()})
    budget = TimeBudget(minutes, profile.checkpoint_minutes, save_at_end=final_checkpoint)
    started = time.time()
    hint = (f"profile = dataclasses.replace(profile, distill_batch={profile.distill_batch // 2}, "
            f"distill_accum={profile.distill_accum * 2})")
    with kept_in_place(student, teacher):  # entered before the trainer moves them to its device
        trainer = DistillationTrainer(model=student, args=args, train_dataset=blocks, teacher=teacher,
                                      distill_config=cfg, data_collator=mlm_collator(tokenizer),
                                      callbacks=[budget, KeepLastCheckpoint(), *callbacks])
        with explain_oom(args, hint, output_dir):
            start_step = train_resumable(trainer, output_dir)
    if not final_checkpoint:  # finished: a periodic checkpoint of a long run is of no more use, nor its settings
        for checkpoint in Path(output_dir).glob("checkpoint-*"):
            remove_checkpoint(checkpoint)
        (Path(output_dir) / "settings.json").unlink(missing_ok=True)
    trainer.stopped_early = budget.stopped_early
    trainer.session_seconds = time.time() - started  # this session only: a resumed run counts from its checkpoint
    trainer.session_steps = trainer.state.global_step - start_step
    return trainer


class HeldOutCurve(transformers.TrainerCallback):
    """A learning curve: held-out masked-token accuracy and perplexity (kd.masked_lm_eval, the same masked tokens
    every time) at the first step trained and every `every` optimiser steps, in self.points as {"step", "masked_acc",
    "perplexity"}. path: a JSON file the points are kept in, so that a run resumed after a disconnect keeps the
    points it had."""

    def __init__(self, eval_batches: list[dict], every: int, path: Path | None = None):
        self.eval_batches, self.every, self.path = eval_batches, max(1, every), path
        self.points = json.loads(path.read_text()) if path and path.exists() else []

    def _score(self, step: int, model) -> None:
        if not any(p["step"] == step for p in self.points):
            r = masked_lm_eval(model, self.eval_batches)
            self.points.append({"step": step, "masked_acc": r["masked_acc"], "perplexity": r["perplexity"]})
            self.points.sort(key=lambda p: p["step"])
            if self.path:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.write_text(json.dumps(self.points))

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0:
            self._score(0, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step >= state.max_steps:
            self._score(state.global_step, model)


def blocks_per_step(args: TrainingArguments) -> int:
    """The effective batch: blocks per process per forward pass x accumulation x processes."""
    return args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size


def session_tokens_per_second(trainer: DistillationTrainer, block_size: int) -> float:
    """Tokens per second of this session's distillation steps, all processes together."""
    return trainer.session_steps * blocks_per_step(trainer.args) * block_size / max(trainer.session_seconds, 1e-9)


def distillation_metrics(trainer: DistillationTrainer, heldout: dict, cfg: DistillConfig, block_size: int) -> dict:
    """The record of a masked-LM distillation (notebook 02 and `python -m kd.distill_mlm` write the same keys).
    heldout: model id -> kd.masked_lm_eval result. Effective batch = batch x accumulation x processes."""
    steps, blocks = trainer.state.global_step, blocks_per_step(trainer.args)
    curves = loss_history(trainer.state.log_history)
    return {"masked_acc": {k: v["masked_acc"] for k, v in heldout.items()},
            "perplexity": {k: v["perplexity"] for k, v in heldout.items()},
            "eval_masked_tokens": next(iter(heldout.values()))["masked_tokens"],
            "final_loss_terms": {k: v[-1] for k, v in curves.items() if k != "step" and v},
            "loss_curves": curves, "distill_config": asdict(cfg), "steps": steps,
            "processes": trainer.args.world_size, "blocks_per_step": blocks,
            "tokens_seen": steps * blocks * block_size, "stopped_by_time_budget": trainer.stopped_early,
            "session_tokens_per_second": session_tokens_per_second(trainer, block_size)}


def loss_history(log_history: list[dict]) -> dict[str, list]:
    """Columns step, loss and loss_<term> for each term of kd.config.LOSS_TERMS logged, from a Trainer's log history
    (training rows only)."""
    rows = [r for r in log_history if "loss" in r and "step" in r]
    keys = ["step"] + [k for k in ("loss", *(f"loss_{t}" for t in LOSS_TERMS)) if rows and k in rows[0]]
    return {k: [r[k] for r in rows] for k in keys}
