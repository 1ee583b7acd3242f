"""Fine-tuning with the library's Trainer (notebooks 03-04): on the labels, or with a fine-tuned teacher's soft targets
too (kd.SoftTargetTrainer), resumable run by run; and a model's logits on a dataset."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import datasets
import numpy as np
import torch.nn.functional as F
import transformers
from transformers import Trainer

from .config import Profile, TaskKDConfig
from .data import Task
from .losses import classic_kd_loss
from .measure import compute_task_metrics
from .models import kept_in_place
from .records import artifacts_dir
from .resume import KeepLastCheckpoint, TimeBudget, explain_oom, remove_checkpoint, scores_file, train_resumable, \
    weights_digest
from .training import OwnLossTrainer, training_args


class SoftTargetTrainer(OwnLossTrainer):
    """Fine-tuning on labels plus a fine-tuned teacher's soft targets (DistilBERT (D); Tang et al.'s students).

    Training batches carry the teacher's logits (column `teacher_logits`, computed once); the loss is
    `classic_kd_loss` with the settings of `task_kd`. Batches without them (evaluation) get plain cross-entropy.
    """
    def __init__(self, *args, task_kd: TaskKDConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.task_kd = task_kd

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits_t = inputs.pop("teacher_logits", None)  # (batch, classes)
        labels = inputs.pop("labels")
        out = model(**inputs)
        if logits_t is None:
            loss = F.cross_entropy(out.logits.float(), labels)
        else:
            loss = classic_kd_loss(out.logits, logits_t, labels, self.task_kd)
        return (loss, out) if return_outputs else loss


def finetune(model, tokenizer, task: Task, train, evaluation, profile: Profile, seed: int, output_dir: Path,
             task_kd: TaskKDConfig | None = None, keep_model: bool = False, **overrides) -> dict:
    """Fine-tune and score on the evaluation split. Resumable: a finished run's scores.json is read back; an
    interrupted one resumes from its last checkpoint. keep_model saves the fine-tuned model to output_dir/model.
    task_kd: train on the batches' `teacher_logits` too (SoftTargetTrainer); overrides: TrainingArguments."""
    output_dir = Path(output_dir)
    epochs = profile.task_size(task.name).epochs
    settings = dict(seed=seed, data_seed=seed, learning_rate=profile.finetune_lr or task.lr,
                    per_device_train_batch_size=task.batch, per_device_eval_batch_size=64, num_train_epochs=epochs,
                    warmup_steps=0.1,  # below 1: a share of the steps (10%), not 0.1 steps
                    weight_decay=0.01, lr_scheduler_type="linear", logging_steps=50,
                    train_sampling_strategy="group_by_length",  # batches of similar lengths: little padding
                    remove_unused_columns=task_kd is None)
    settings.update(overrides)
    done = scores_file(output_dir, {**settings, "task_kd": task_kd and asdict(task_kd),
                                          "rows": [len(train), len(evaluation)],
                                          "start_weights": weights_digest(model)})
    if done.exists():
        return json.loads(done.read_text())
    args = training_args(profile, output_dir, **settings)
    trainer_class, extra = (Trainer, {}) if task_kd is None else (SoftTargetTrainer, {"task_kd": task_kd})
    checkpoints = [TimeBudget(float("inf"), profile.checkpoint_minutes, save_at_end=False), KeepLastCheckpoint()]
    hint = (f"kd.finetune(..., per_device_train_batch_size={args.per_device_train_batch_size // 2}, "
            f"gradient_accumulation_steps={2 * args.gradient_accumulation_steps})")
    with kept_in_place(model), explain_oom(args, hint, output_dir):  # entered before the Trainer moves the model
        trainer = trainer_class(model=model, args=args, train_dataset=train, eval_dataset=evaluation, **extra,
                       callbacks=checkpoints, data_collator=transformers.DataCollatorWithPadding(tokenizer),
                       compute_metrics=compute_task_metrics)
        train_resumable(trainer, output_dir)
        scores = {k.removeprefix("eval_"): v for k, v in trainer.evaluate().items()
                  if k.removeprefix("eval_") in ("accuracy", "f1", "matthews_correlation", "f1_acc_mean")}
    if keep_model:
        trainer.save_model(output_dir / "model")
        tokenizer.save_pretrained(output_dir / "model")
    for checkpoint in Path(output_dir).glob("checkpoint-*"):  # finished: scores.json replaces them
        remove_checkpoint(checkpoint)
    done.write_text(json.dumps(scores, indent=1))
    return scores


def predict_logits(model, dataset: datasets.Dataset, tokenizer, profile: Profile, cpu: bool = False) -> np.ndarray:
    """The model's logits (rows, classes) on a tokenised dataset, batched through Trainer.predict.
    cpu: stay on the CPU in fp32 even with a GPU (int8-quantized models run only there)."""
    on_cpu = dict(use_cpu=True, fp16=False, bf16=False) if cpu else {}
    args = training_args(profile, artifacts_dir(profile) / "predict", per_device_eval_batch_size=64, **on_cpu)
    with kept_in_place(model):  # entered before the Trainer moves the model to its device
        trainer = Trainer(model=model, args=args, data_collator=transformers.DataCollatorWithPadding(tokenizer))
        inputs = dataset.remove_columns([c for c in ("labels", "teacher_logits") if c in dataset.column_names])
        return trainer.predict(inputs).predictions
