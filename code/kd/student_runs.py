"""Notebook 04's runs: every small student (kd.students) in every mode and seed, each a kd.finetune, several at once
on a CPU's cores, read back when finished."""
from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from .config import TASKS
from .finetuning import finetune
from .machine import precision
from .students import make_student


BF16_SLOWER = ("bigru",)  # on a CPU with native bf16 a GRU's bf16 step took 1.17-1.35x its fp32 one (BiLSTM 0.74-0.95,
# attention and Transformer 0.80-0.90; code/studies/bench_classic_step.py): these kinds train in fp32 there
_SHARED: dict = {}  # what every job of train_students reads: set once per worker process


def student_precision(profile, kind: str) -> str:
    """What a student of this kind trains in: the profile's precision (kd.precision), fp32 for BF16_SLOWER kinds
    where that precision is a CPU's bf16."""
    dtype = precision(profile)
    return "fp32" if dtype == "bf16" and kind in BF16_SLOWER else dtype


def _share(shared: dict, threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    _SHARED.clear()
    _SHARED.update(shared)


def _train_one(job: tuple) -> dict:
    """One student, one mode, one seed: kd.finetune of a fresh seeded student. Returns its scores and seconds."""
    sid, kind, layers, mode, seed = job
    s = _SHARED
    profile, tokenizer = s["profile"], s["tokenizer"]
    train, task_kd = s["modes"][mode]
    overrides = dict(s["overrides"])
    if student_precision(profile, kind) != precision(profile):
        overrides["bf16"] = False
    folder = Path(s["out_dir"]) / sid / mode / f"seed{seed}"
    timing, start = folder / "seconds.json", time.perf_counter()  # a run read back keeps the time it took
    student = make_student(profile, kind, layers, len(tokenizer), tokenizer.pad_token_id, s["embeddings"], seed=seed)
    fresh = not (folder / "scores.json").exists()
    scores = finetune(student, tokenizer, TASKS["imdb"], train, s["test"], profile, seed, folder, task_kd=task_kd,
                      **overrides)
    if fresh:
        timing.write_text(json.dumps(time.perf_counter() - start))
    return {**scores, "seconds": json.loads(timing.read_text()) if timing.exists() else None}


def train_students(students: dict, modes: dict, seeds: list[int], test, tokenizer, profile, embeddings, out_dir,
                   only: dict | None = None, **overrides) -> dict:
    """Train every student (id -> (kind, layers)) in every mode (name -> (training set, TaskKDConfig or None)) with
    every seed; each run is kd.finetune(make_student(...), ...) into out_dir/<id>/<mode>/seed<seed>, read back when
    finished. profile.classic_workers runs at once, one thread each (on 2 cores, two students at a time train
    1.3-2.2x faster than one on 2 threads: code/studies/bench_classic_step.py --workers); 1: one after the other, here.
    only: mode -> the student ids that run it (a mode not named: every student). Returns (id, mode) -> [each seed's
    scores, with its "seconds"], for the pairs that ran."""
    only = only or {}
    jobs = [(sid, kind, layers, mode, seed) for sid, (kind, layers) in students.items() for mode in modes
            if mode not in only or sid in only[mode] for seed in seeds]
    shared = dict(profile=profile, tokenizer=tokenizer, modes=modes, test=test, embeddings=embeddings,
                  out_dir=str(out_dir), overrides=overrides)
    done = {}
    workers = min(profile.classic_workers, len(jobs))
    if workers <= 1:
        _share(shared, None)
        done = {job: _train_one(job) for job in jobs}
    else:  # spawned workers (fork is unsafe once torch has started its threads); each gets the data once
        threads = max(1, torch.get_num_threads() // workers)
        with ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), initializer=_share,
                                 initargs=(shared, threads)) as pool:
            futures = {pool.submit(_train_one, job): job  # deeper ones first: no long run left alone at the end
                       for job in sorted(jobs, key=lambda job: -job[2])}
            for future in as_completed(futures):
                job, done[futures[future]] = futures[future], future.result()
                print(f"{job[0]:14s} {job[3]:9s} seed {job[4]}: accuracy {done[job]['accuracy']:.4f} "
                      f"({done[job]['seconds']:.0f} s)", flush=True)
    return {(sid, mode): [done[sid, kind, layers, mode, seed] for seed in seeds]
            for sid, (kind, layers) in students.items() for mode in modes if mode not in only or sid in only[mode]}
