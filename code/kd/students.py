"""Small students for classic task-specific distillation (notebook 04, Tang et al. 2019), and their training."""
from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers.modeling_outputs import SequenceClassifierOutput

from .config import TASKS
from .machine import precision
from .training import finetune


class SmallStudent(torch.nn.Module):
    """A small classifier over WordPiece ids: BiLSTM, BiGRU, Attention (self-attention layers) or Transformer.

    Padding never leaks in: the RNNs run on packed sequences, attention ignores padded keys, and pooling
    averages real tokens only. The attention-based kinds get learned position embeddings.
    """
    KINDS = ("bilstm", "bigru", "attention", "transformer")

    def __init__(self, kind: str, vocab_size: int, layers: int, dim: int, max_len: int, dropout: float = 0.2,
                 num_labels: int = 2, pad_id: int = 0, heads: int = 4, embeddings: torch.Tensor | None = None):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"Unknown student kind {kind!r}; choose from {self.KINDS}")
        self.kind = kind
        self.embed = torch.nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        if embeddings is not None:  # e.g. the teacher's word embeddings, projected to `dim`
            self.embed.weight.data.copy_(embeddings)
        self.pos = torch.nn.Embedding(max_len, dim) if kind in ("attention", "transformer") else None
        self.drop = torch.nn.Dropout(dropout)
        if kind in ("bilstm", "bigru"):
            rnn = torch.nn.LSTM if kind == "bilstm" else torch.nn.GRU
            self.encoder = rnn(dim, dim // 2, layers, batch_first=True, bidirectional=True,
                               dropout=dropout if layers > 1 else 0)
        elif kind == "attention":
            self.encoder = torch.nn.ModuleList(torch.nn.MultiheadAttention(dim, heads, dropout, batch_first=True)
                                               for _ in range(layers))
            self.norms = torch.nn.ModuleList(torch.nn.LayerNorm(dim) for _ in range(layers))
        else:
            layer = torch.nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
            self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.classifier = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                                              torch.nn.Linear(dim, num_labels))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids=None, labels=None):
        """input_ids, attention_mask: (batch, seq) -> .logits (batch, num_labels), and .loss (cross-entropy) given
        labels.
        One segment only: token_type_ids are accepted and ignored."""
        x = self.embed(input_ids)  # (batch, seq, dim)
        if self.pos is not None:
            x = x + self.pos(torch.arange(input_ids.shape[1], device=input_ids.device))
        x = self.drop(x)
        pad = attention_mask == 0
        if self.kind in ("bilstm", "bigru"):
            lengths = attention_mask.sum(1).clamp_min(1).cpu()
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.encoder(packed)
            x, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])
        elif self.kind == "attention":
            for attn, norm in zip(self.encoder, self.norms):
                x = norm(x + self.drop(attn(x, x, x, key_padding_mask=pad, need_weights=False)[0]))
        else:
            x = self.encoder(x, src_key_padding_mask=pad)
        keep = attention_mask.unsqueeze(-1).to(x.dtype)  # (batch, seq, 1): masked mean pooling
        pooled = (x * keep).sum(1) / keep.sum(1).clamp_min(1)
        logits = self.classifier(self.drop(pooled))
        return SequenceClassifierOutput(loss=None if labels is None else F.cross_entropy(logits, labels), logits=logits)


def projected_embeddings(weight: torch.Tensor, dim: int, seed: int = 0) -> torch.Tensor:
    """The teacher's word embeddings (vocab, d_t) projected on their top `dim` principal components, scaled to std 1.
    The randomised PCA draws from its own seed: the same embeddings whatever ran before (a cache hit or a miss)."""
    centred = weight.float() - weight.float().mean(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, _, v = torch.pca_lowrank(centred, q=dim, center=False, niter=4)
    out = centred @ v  # (vocab, dim)
    return out / out.std()


def make_student(profile, kind: str, layers: int, vocab_size: int, pad_id: int = 0,
                 embeddings: torch.Tensor | None = None, seed: int | None = None) -> SmallStudent:
    """The profile's classic student of one kind and depth (notebook 04 trains it, notebook 05 sizes it): width
    classic_dim, positions for classic_max_len tokens and 32 spare, initialised from `seed` (default: the profile's)."""
    torch.manual_seed(profile.seed if seed is None else seed)
    return SmallStudent(kind, vocab_size, layers, profile.classic_dim, profile.classic_max_len + 32, pad_id=pad_id,
                        embeddings=embeddings)


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
