"""The t4 settings on whatever GPU is at hand, in one command (at most --minutes, default 8): peak memory against a
T4's, throughput, and the share of the GPU's fp16 peak reached, next to the share kd.budget assumes on a T4.

    python -m kd.gpu_check                           # on a GPU runtime; the record: results/t4/checks/gpu_check.json
    python -m kd.gpu_check --out runs/gpu --minutes 5
    python -m kd.gpu_check --tiny --out /tmp/check   # CPU, tiny shapes, seconds: the code path (the tests run it)

Random weights at the profile's shapes (kd.model_source("random-bert-base"), no download), made in a scratch
folder that is removed afterwards (never the artifacts folder, which is Google Drive on Colab). Three parts, each
through the package's own function, as the notebooks call it:
  1. notebook 02's distillation step, 12 -> 6 layers, distill_batch x distill_accum blocks (kd.distill);
  2. notebook 03's IMDb fine-tuning step at 512 tokens, batch kd.TASKS["imdb"].batch (kd.finetune);
  3. notebook 04's largest student (most weights at classic_dim) on classic_batch reviews of classic_max_len tokens
     (kd.finetune with the soft targets, as kd.train_students runs it).
Each runs three times: 1 step (warm-up: CUDA context, first-call kernels), 1 step, then 1 + N steps; the difference
of the last two is N steps' time (start-up, moving models and the final scoring cancel out). Peak memory is
torch.cuda.max_memory_allocated over the three runs.
An existing record is never replaced: the new one goes beside it as gpu_check-<timestamp>.json. --tiny never writes
into results/: without --out its record goes to a new temporary folder.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from . import budget
from .config import PROFILES, REPO, TASKS
from .records import Run, results_dir

T4_MEMORY_GIB = 14.0  # a T4 has 15 GiB; one is left for the CUDA context and fragmentation (as tests/test_gpu.py)
# dense fp16 tensor-core peaks in TFLOP/s, by a pattern of torch.cuda.get_device_name; the first match wins; None:
# a GPU named here whose peak is not in this table (unknown, as any GPU not named)
FP16_PEAKS = [(r"H100.*PCIe", 756), (r"H100 NVL", None), (r"H100", 989), (r"H200", 989), (r"A100", 312),
              (r"\bL4\b", 121), (r"\bT4\b", budget.T4_FP16_FLOPS / 1e12), (r"V100", 125)]
KINDS, LAYERS = ("bilstm", "bigru", "attention", "transformer"), (1, 2)  # notebook 04's students
STEPS = {"distill": 3, "finetune_imdb": 4, "student": 20}  # steps timed after the 1-step runs (--tiny: 2)
NO_GPU = "no CUDA GPU visible: run on a GPU runtime, or --tiny to check the code path on a CPU"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kd.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=list(PROFILES), default="t4", help="the settings measured (default: t4)")
    p.add_argument("--tiny", action="store_true", help="on the CPU, at tiny shapes: checks the code path only")
    p.add_argument("--out", type=Path, help="folder for the record (default: the profile's results folder; --tiny: "
                   "a new temporary folder, never results/)")
    p.add_argument("--minutes", type=float, default=8.0, help="time cap: parts not begun by then are not measured")
    return p.parse_args(argv)


def tiny(profile):
    """The same code path at shapes a CPU runs in seconds: the smoke teacher (4 layers of 64), 2-layer student,
    accumulation kept, blocks and reviews of 64 tokens, students 32 wide."""
    return dataclasses.replace(profile, teacher="tiny", student_layers=2, block_size=64, distill_batch=2,
                               distill_accum=2, classic_dim=32, classic_max_len=64, classic_batch=8)


def fp16_peak(device: str) -> float | None:
    """The GPU's dense fp16 tensor-core peak in TFLOP/s, None where unknown (FP16_PEAKS)."""
    return next((peak for pattern, peak in FP16_PEAKS if re.search(pattern, device)), None)


def out_folder(args) -> Path:
    """Where the record goes; --tiny refuses results/ (its numbers are no measurement of anything)."""
    if not args.tiny:
        return Path(args.out) if args.out else results_dir(args.profile) / "checks"  # apart from the notebooks' records
    if args.out is None:
        return Path(tempfile.mkdtemp(prefix="kd-gpu-check-"))
    roots = [REPO / "results", *([Path(os.environ["KD_RESULTS_DIR"])] if os.environ.get("KD_RESULTS_DIR") else [])]
    roots = {r for root in roots for r in (root.absolute(), root.resolve())}  # results/<profile> may be a link
    if any(p.is_relative_to(r) for p in (args.out.absolute(), args.out.resolve()) for r in roots):  # (to Drive)
        raise SystemExit(f"--tiny never writes into a results folder ({args.out}): pass --out another folder, "
                         "or leave it out for a temporary one.")
    return Path(args.out)


def save(run: Run, metrics: dict, out: Path) -> Path:
    """run.save(metrics) as out/gpu_check.json, or beside it as gpu_check-<timestamp>.json if that exists."""
    out.mkdir(parents=True, exist_ok=True)
    target, stamp, n = out / "gpu_check.json", time.strftime("%Y%m%d-%H%M%S"), 1
    while target.exists():
        target, n = out / f"gpu_check-{stamp}{f'-{n}' if n > 1 else ''}.json", n + 1
    with tempfile.TemporaryDirectory() as tmp:
        run.folder = Path(tmp)
        shutil.move(run.save(metrics), target)
    run.folder = out
    return target


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch  # here, not at the top: --help answers without loading torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        raise SystemExit(NO_GPU)
    out = out_folder(args)
    profile = tiny(PROFILES[args.profile]) if args.tiny else PROFILES[args.profile]
    run = Run(profile, "gpu_check", folder=out, seeds={"torch": profile.seed})
    deadline = time.time() + 60 * args.minutes
    scratch, kept = Path(tempfile.mkdtemp(prefix="kd-gpu-check-scratch-")), os.environ.get("KD_ARTIFACTS_DIR")
    os.environ["KD_ARTIFACTS_DIR"] = str(scratch)  # the random models are made here, not in the artifacts folder
    try:
        metrics = measure(profile, run, args.tiny, deadline, scratch / "runs", args.minutes)
    finally:
        if kept is None:
            del os.environ["KD_ARTIFACTS_DIR"]
        else:
            os.environ["KD_ARTIFACTS_DIR"] = kept
        shutil.rmtree(scratch, ignore_errors=True)
    print_table(metrics)
    print(f"record: {save(run, metrics, out)}")
    return metrics


def measure(profile, run: Run, is_tiny: bool, deadline: float, scratch: Path, minutes: float) -> dict:
    """The three parts (those begun before the deadline), as the record's metrics."""
    import datasets
    import torch
    from transformers import AutoModelForSequenceClassification

    from .machine import precision
    from .models import RANDOM_MODELS, build_student, load_masked_lm, model_source, student_layer_ids
    from .student_runs import student_precision
    from .students import make_student
    from .finetuning import finetune
    from .training import distill

    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    teacher_id = profile.teacher if profile.teacher in RANDOM_MODELS else "random-bert-base"
    source = model_source(teacher_id, profile)
    teacher, tokenizer, _ = load_masked_lm(source)
    run.note_data("weights", teacher=f"{teacher_id}: random weights at the profile's shapes (no download)")
    low = max(tokenizer.all_special_ids) + 1

    def rows(n: int, length: int, seed: int = 0, **columns) -> datasets.Dataset:
        g = torch.Generator().manual_seed(seed)
        body = torch.randint(low, len(tokenizer), (n, length - 2), generator=g).tolist()
        ids = [[tokenizer.cls_token_id, *r, tokenizer.sep_token_id] for r in body]
        return datasets.Dataset.from_dict({"input_ids": ids, **{k: v[:n] for k, v in columns.items()}})

    def timed(key: str, step, steps: int) -> dict:
        """step(n, folder) for 1 step (warm-up), 1 step, then 1 + steps: seconds per step from the difference of the
        last two, peak GiB (GPU)."""
        seconds, peak = [], None
        for i, n in enumerate((1, 1, 1 + steps)):
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            step(n, scratch / key / f"run{i}")
            if cuda:
                torch.cuda.synchronize()
                peak = max(peak or 0.0, torch.cuda.max_memory_allocated() / 2**30)
            seconds.append(time.perf_counter() - t0)
        diff = seconds[2] - seconds[1]  # not positive only where noise beats a step (tiny shapes): the whole run then
        per_step = diff / steps if diff > 0 else seconds[2] / (1 + steps)
        return {"steps": steps, "step_seconds": per_step, "timing": "difference" if diff > 0 else "whole run",
                "run_seconds": seconds, "peak_gib": peak, "fits_t4": None if peak is None else peak <= T4_MEMORY_GIB}

    cfg = teacher.config
    encoder = budget.Encoder(cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size)
    shapes = {"teacher": encoder, "student": dataclasses.replace(encoder, layers=profile.student_layers)}
    task = dataclasses.replace(TASKS["imdb"], max_len=64, batch=4) if is_tiny else TASKS["imdb"]
    steps = {k: 2 if is_tiny else v for k, v in STEPS.items()}

    def part_distill() -> dict:
        student = build_student(teacher, student_layer_ids(cfg.num_hidden_layers, profile.student_layers))
        per_step = profile.distill_batch * profile.distill_accum
        blocks = rows(2 * per_step, profile.block_size)
        done = {}

        def step(n, folder):
            left = max((deadline - time.time()) / 60, 0.1)
            done[n] = distill(student, teacher, tokenizer, blocks, profile, profile.distill, folder, max_steps=n,
                              minutes=left, final_checkpoint=False).state.global_step
        r = timed("distill", step, steps["distill"])
        if done[1 + steps["distill"]] < 1 + steps["distill"]:
            r["stopped_by_time_cap"] = True  # the time budget cut the measured run short: its steps were fewer
        flops = budget.distill_step_seconds(profile, shapes, "low") * budget.Cost("low").flops_per_s("train")
        return {**r, "label": f"02 distil {cfg.num_hidden_layers}->{profile.student_layers} layers, "
                f"{profile.distill_batch}x{profile.distill_accum} blocks of {profile.block_size}",
                "item": "blocks", "items_per_step": per_step, "tokens_per_step": per_step * profile.block_size,
                "flops_per_step": flops, "precision": precision(profile)}

    def part_finetune() -> dict:
        classifier = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)
        train = rows(2 * task.batch, task.max_len, labels=[0, 1] * task.batch)
        scored = train.select(range(task.batch))
        r = timed("finetune_imdb", lambda n, folder: finetune(classifier, tokenizer, task, train, scored, profile,
                                                               0, folder, max_steps=n),
                  steps["finetune_imdb"])
        tokens = task.batch * task.max_len  # random reviews fill every position: no padding
        return {**r, "label": f"03 IMDb fine-tune, {task.batch} x {task.max_len} tokens", "item": "reviews",
                "items_per_step": task.batch, "tokens_per_step": tokens, "precision": precision(profile),
                "flops_per_step": tokens * encoder.train_flops(task.max_len)}

    def part_student() -> dict:
        def new(kind, layers):
            return make_student(profile, kind, layers, len(tokenizer), tokenizer.pad_token_id)
        sizes = {(k, n): sum(p.numel() for p in new(k, n).parameters()) for k in KINDS for n in LAYERS}
        kind, layers = max(sizes, key=sizes.get)
        student, L, batch = new(kind, layers), profile.classic_max_len, profile.classic_batch
        soft = torch.randn(2 * batch, 2, generator=torch.Generator().manual_seed(1)).tolist()  # the teacher's
        train = rows(2 * batch, L, labels=[0, 1] * batch, teacher_logits=soft)
        scored = rows(batch, L, seed=2, labels=[0, 1] * batch)
        overrides = dict(learning_rate=profile.classic_lr, warmup_steps=0.05, per_device_train_batch_size=batch,
                         per_device_eval_batch_size=128, weight_decay=0.0)  # notebook 04's
        if student_precision(profile, kind) != precision(profile):
            overrides["bf16"] = False
        r = timed("student", lambda n, folder: finetune(student, tokenizer, TASKS["imdb"], train, scored, profile, 0,
                                                         folder, task_kd=profile.task_kd, max_steps=n, **overrides),
                  steps["student"])
        return {**r, "label": f"04 {kind}-{layers} student, {batch} x {L} tokens", "item": "reviews",
                "items_per_step": batch, "tokens_per_step": batch * L, "params": sizes[kind, layers],
                "precision": student_precision(profile, kind), "flops_per_step": None}

    peak = fp16_peak(device) if cuda else None
    parts, skipped = {}, []
    for key, part in (("distill", part_distill), ("finetune_imdb", part_finetune), ("student", part_student)):
        if time.time() > deadline:
            skipped.append(key)
            continue
        r = part()
        r["tokens_per_s"] = r["tokens_per_step"] / r["step_seconds"]
        r["items_per_s"] = r["items_per_step"] / r["step_seconds"]
        r["tflops"] = r["flops_per_step"] / r["step_seconds"] / 1e12 if r["flops_per_step"] else None
        r["share_of_peak"] = r["tflops"] / peak if r["tflops"] and peak else None
        parts[key] = r
    return {"device": device, "cuda": cuda, "tiny": is_tiny, "fp16_peak_tflops": peak,
            "budget_train_share": budget.T4_SHARE["train"], "t4_fp16_peak_tflops": budget.T4_FP16_FLOPS / 1e12,
            "t4_memory_gib": T4_MEMORY_GIB, "minutes_cap": minutes, "parts": parts, "skipped_by_time_cap": skipped}


def print_table(m: dict) -> None:
    share = m["budget_train_share"]
    print(f"\nkd.gpu_check on {m['device']}{' (--tiny: code path only, no measurement)' if m['tiny'] else ''}")
    print(f"{'part':44s} {'steps':>5s} {'s/step':>7s} {'tokens/s':>10s} {'items/s':>15s} {'peak GiB':>9s} "
          f"{'TFLOP/s':>8s} {'% peak':>7s}")
    for r in m["parts"].values():
        peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}{'' if r['fits_t4'] else ' !'}"
        tflops = "-" if r["tflops"] is None else f"{r['tflops']:.2f}"
        pct = "-" if r["share_of_peak"] is None else f"{100 * r['share_of_peak']:.1f}%"
        print(f"{r['label']:44s} {r['steps']:5d} {r['step_seconds']:7.3f} {r['tokens_per_s']:10,.0f} "
              f"{r['items_per_s']:7.1f} {r['item']:7s} {peak:>9s} {tflops:>8s} {pct:>7s}")
    print(f"peak GiB: torch.cuda.max_memory_allocated against a T4's {m['t4_memory_gib']:.0f} usable GiB "
          f"(! = over){'; none on a CPU' if not m['cuda'] else ''}")
    assumed = f"kd.budget assumes {100 * share['low']:.1f}-{100 * share['high']:.1f}% of a T4's fp16 peak " \
              f"({m['t4_fp16_peak_tflops']:.0f} TFLOP/s) for training steps"
    where = f"fp16 peak of {m['device']}: {m['fp16_peak_tflops']:.0f} TFLOP/s" if m["fp16_peak_tflops"] else \
        f"fp16 peak of {m['device']} unknown: no share computed"
    print(f"{where}; {assumed}")
    if m["skipped_by_time_cap"]:
        print(f"--minutes {m['minutes_cap']:g} reached: not measured: {', '.join(m['skipped_by_time_cap'])}")


if __name__ == "__main__":
    main()
