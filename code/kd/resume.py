"""Resume after a disconnect, and what a checkpoint costs on Drive: the last complete checkpoint, one kept at a time
(emptied before deletion), a fine-tune folder that refuses other settings, time budgets that save and stop cleanly,
and out-of-memory errors that name the fix."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import TrainerState


def complete_checkpoints(output_dir: Path) -> list[Path]:
    """The checkpoint-N folders a run can resume from, oldest first. The Trainer writes trainer_state.json last, so
    a folder whose state file is missing or unreadable was cut off mid-save (a disconnect) and does not count."""
    found = []
    for folder in Path(output_dir).glob("checkpoint-*"):
        try:
            step = json.loads((folder / "trainer_state.json").read_text())["global_step"]
        except (OSError, ValueError, KeyError):
            continue
        found.append((step, folder))
    return [folder for _, folder in sorted(found)]


def remove_checkpoint(folder: Path) -> None:
    """Delete a checkpoint folder, emptying each file first: Google Drive moves deleted files to its trash, which
    counts against the free 15 GB for 30 days, but an emptied file there weighs nothing (transformers issue 14922)."""
    state = Path(folder) / "trainer_state.json"  # emptied first: a deletion cut off halfway leaves a checkpoint
    if state.exists():                               # that complete_checkpoints no longer takes for complete
        state.open("w").close()
    for f in Path(folder).rglob("*"):
        if f.is_file():
            f.open("w").close()
    shutil.rmtree(folder)


def scores_file(output_dir: Path, settings: dict) -> Path:
    """A fine-tune's folder is its unit of resume: settings.json says what it was started with. Finished or not,
    a folder started with other settings (a changed profile, say) is an error, never silently read back or
    continued. Returns the path of its scores.json."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path, settings = output_dir / "settings.json", json.loads(json.dumps(settings, default=str))
    if path.exists() and (before := json.loads(path.read_text())) != settings:
        changed = ", ".join(f"{k}: {before.get(k)!r} -> {settings.get(k)!r}"
                            for k in sorted(set(before) | set(settings)) if before.get(k) != settings.get(k))
        raise ValueError(f"{output_dir} holds a run started with other settings ({changed}). Its results are kept: "
                         "move or delete that folder to run with today's settings, or restore the old ones.")
    done = output_dir / "scores.json"
    if not path.exists() and not done.exists():  # a folder finished before settings.json existed is read back
        part = path.with_name(f"settings.{os.getpid()}.part")  # whole or absent, also for torchrun's other processes
        part.write_text(json.dumps(settings, indent=1))
        part.replace(path)
    return done


def weights_digest(model: torch.nn.Module) -> str:
    """12 hex digits of the SHA-256 of a model's weights as they are now: a run's starting point, so a folder started
    from other weights (a retrained teacher saved under the same name) is never read back as this run's."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]


class KeepLastCheckpoint(TrainerCallback):
    """After each save, delete every other checkpoint folder (complete or cut off), emptied first: one model-and-
    optimiser checkpoint on Drive at a time, and nothing in its trash. Used instead of save_total_limit."""

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:  # under torchrun, one process deletes
            newest = complete_checkpoints(args.output_dir)[-1:]
            for folder in Path(args.output_dir).glob("checkpoint-*"):
                if folder not in newest:
                    remove_checkpoint(folder)


class TimeBudget(TrainerCallback):
    """Save a checkpoint every `every_minutes`; when `minutes` have passed, save and stop cleanly. save_at_end: also
    save the final step (a rerun then restores instead of retraining); runs whose result file is their unit of
    resume (fine-tunes: scores.json) skip it, as a run shorter than `every_minutes` then writes no checkpoint."""

    def __init__(self, minutes: float, every_minutes: float, save_at_end: bool = True):
        self.minutes, self.every_minutes, self.save_at_end = minutes, every_minutes, save_at_end
        self.stopped_early = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = self.last_save = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.time()
        save = now - self.last_save >= 60 * self.every_minutes
        stop = now - self.start >= 60 * self.minutes and state.global_step < state.max_steps
        save, stop = _all_processes_agree(args, save, stop)  # under DDP every process stops at the same step
        if save:
            control.should_save, self.last_save = True, now
        if stop:
            control.should_save = control.should_training_stop = self.stopped_early = True
        if state.global_step >= state.max_steps:  # the final checkpoint: running the notebook again resumes at the end
            control.should_save = control.should_save or self.save_at_end
        return control


def _all_processes_agree(args: TrainingArguments, *flags: bool) -> list[bool]:
    """Each flag true on every process if it is true on any (one process per GPU under torchrun / accelerate):
    clocks differ between processes, and one that stops while the others train would hang them."""
    if args.world_size == 1:
        return list(flags)
    values = torch.tensor([float(f) for f in flags], device=args.device)
    torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.MAX)
    return [bool(v) for v in values.tolist()]


class explain_oom:
    """Turn a CUDA out-of-memory error into one that names the fix; checkpoints already written stay."""
    def __init__(self, args: TrainingArguments, hint: str, output_dir: Path):
        self.args, self.hint, self.output_dir = args, hint, output_dir

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is not None and issubclass(kind, torch.cuda.OutOfMemoryError):
            raise RuntimeError(
                f"Out of GPU memory at batch {self.args.per_device_train_batch_size}. Halve the batch and double the "
                f"gradient accumulation (same effective batch): {self.hint}. Checkpoints in {self.output_dir} are "
                "kept; running the cell again resumes from them.") from error
        return False


def train_resumable(trainer: Trainer, output_dir: Path) -> int:
    """trainer.train(), resuming from the last checkpoint in output_dir; a finished one is restored, not retrained.
    Returns the step this session started from."""
    complete = complete_checkpoints(output_dir)  # a checkpoint cut off by a disconnect is skipped
    resume = str(complete[-1]) if complete else None
    if not resume:
        trainer.train()
        return 0
    state = TrainerState.load_from_json(f"{resume}/trainer_state.json")
    target = trainer.args.max_steps if trainer.args.max_steps > 0 else state.max_steps  # else: set by epochs
    if state.global_step >= target:  # done in an earlier session (the Trainer would step once more)
        trainer._load_from_checkpoint(resume)
        trainer.state = state
    else:
        trainer.train(resume_from_checkpoint=resume)
    return state.global_step
