"""What a profile costs on a free Colab T4, per notebook: hours and Google Drive bytes. Estimates, not measurements.

Time is the FLOPs of every forward and backward pass the notebook runs, at a stated share of the T4's fp16 peak,
plus fixed costs (set-up, downloads, tokenising, saving). Drive is every byte the notebook writes there: what it
keeps, what it deletes (deleted files sit in Drive's trash for 30 days and count against the 15 GB quota, unless
they were emptied first, as kd.resume.remove_checkpoint does), and the largest checkpoint held twice for a
moment while the next one replaces it. The measured inputs (lengths, CPU speed) say where they were measured.
Nothing here imports torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .config import ABLATION_ROWS, ARMS, FINETUNED, MINILM, TASKS, Profile
from .labels import CLASSIC_IDS

T4_FP16_FLOPS = 65e12      # the T4's fp16 tensor-core peak
# Shares of that peak the course reaches, (low, high), separately for training steps and forward-only passes. No fp16
# *training* figure for BERT on a T4 is published; the nearest: one fp16 training point of a BERT-base-sized encoder
# on a T4 at <= 14.4% (the high end), and an fp32 Trainer fine-tune of bert-base on a Colab T4 at 4.7% of the fp16
# peak (fp32 does not use the tensor cores the peak counts); the low end, 10%, is a margin under the fp16 point.
# Forward passes: BERT-base fp16 inference on a T4 at 17-21% of peak (NVIDIA DeepLearningExamples' tables, a Hugging
# Face benchmark). Every notebook must fit a session at the low end (tests/test_colab.py).
T4_SHARE = {"train": {"low": 0.10, "high": 0.144}, "forward": {"low": 0.17, "high": 0.21}}
ENDS = ("low", "high")     # the pessimistic end first: what the session plan is made for
CPU_FLOPS = 60e9           # fp32 on 2 cores: bert-base forward, 256 tokens, measured on this project's 2-core
                           # machine (0.9 s); Colab's CPU runtime has 2 cores too (estimate)
DRIVE_BYTES_PER_S = 40e6   # writing to mounted Drive (estimate)
SESSION_HOURS = 3.0        # a free Colab session's usual length before it is recycled
PACK_HOURS = 2.5           # what the README plans into one session: a margin for a slow T4 or a reconnect
SETUP_S = 120              # clone, pip install, mount Drive, imports (estimate)
LOAD_MODEL_S = 10          # read a saved model from Drive, or a cached download (estimate)
RUN_OVERHEAD_S = 15        # one Trainer run's set-up and teardown besides its steps (estimate)
SMALL_STEP_S = 0.02        # one optimiser step of a small BiLSTM/Transformer student on a GPU: latency-bound (estimate)
TOKENISE_TOKENS_PER_S = 2.7e5  # kd.mlm_blocks (tokenise, concatenate, cut), measured on WikiText-2 on 2 cores
DOWNLOAD_BYTES_PER_S = 50e6  # the hub to a Colab runtime (estimate)

# WikiText-103's training split: 103,227,021 words (Merity et al. 2016) x 1.216 WordPiece tokens per word,
# measured on WikiText-2 validation with google-bert/bert-base-uncased's vocabulary.
CORPUS_TOKENS = {("wikitext103", "train"): 125.6e6, ("wikitext103", "validation"): 0.26e6,
                 ("wikitext2", "validation"): 0.26e6, ("wikitext2", "test"): 0.30e6}
ROWS = {("cola", "train"): 8551, ("cola", "validation"): 1043, ("mrpc", "train"): 3668,
        ("mrpc", "validation"): 408, ("imdb", "train"): 25000, ("imdb", "test"): 25000,
        ("imdb", "unsupervised"): 50000}
# Tokens per example with google-bert/bert-base-uncased's vocabulary, truncated at the length given, measured on the
# offline mirror: "mean" = what length-grouped training batches pay (kd.finetune groups by length), "padded" = the mean
# longest example of shuffled batches of 64 (evaluation, and anything not grouped).
LENGTHS = {("cola", 128): (11.3, 27.8), ("mrpc", 128): (53.2, 83.6), ("imdb", 128): (123.7, 128.0),
           ("imdb", 256): (207.8, 256.0), ("imdb", 512): (275.3, 512.0)}
SHAPES = {  # layers, width, feed-forward width, vocabulary
    "google-bert/bert-base-uncased": (12, 768, 3072, 30522), MINILM: (6, 384, 1536, 30522),
    "distilbert/distilbert-base-uncased": (6, 768, 3072, 30522)}


@dataclass(frozen=True)
class Encoder:
    layers: int
    width: int
    ffn: int
    vocab: int

    def params(self, mlm_head: bool = False) -> float:
        d = self.width
        body = self.layers * (4 * d * d + 2 * d * self.ffn) + (self.vocab + 512) * d
        return body + (d * d + self.vocab if mlm_head else 0)

    def forward_flops(self, seq: float, mlm_head: bool = False) -> float:
        """FLOPs of one forward pass per token: the weight matmuls, attention over `seq` tokens, the vocabulary
        projection of a masked-LM head (which embedding lookups do not pay)."""
        d = self.width
        body = self.layers * (2 * (4 * d * d + 2 * d * self.ffn) + 4 * seq * d)
        return body + (2 * (d * d + d * self.vocab) if mlm_head else 0)

    def train_flops(self, seq: float, mlm_head: bool = False) -> float:
        return 3 * self.forward_flops(seq, mlm_head)  # backward is twice the forward


def checkpoint_bytes(params: float) -> float:
    """A model-and-optimiser checkpoint: fp32 weights (4 bytes) and Adam's two moments (8 bytes) per weight."""
    return 12 * params


@dataclass
class Cost:
    """One notebook on a T4 at one end of T4_SHARE: seconds, and Drive bytes written / kept at the end / left in the
    trash / held for a moment beyond what is kept (a checkpoint while its successor is written)."""
    end: str = "low"
    seconds: float = 0.0
    written: float = 0.0
    kept: float = 0.0
    trash: float = 0.0
    transient: float = 0.0

    def flops_per_s(self, kind: str) -> float:
        return T4_FP16_FLOPS * T4_SHARE[kind][self.end]

    def train(self, flops: float) -> None:
        """GPU work of training steps (forward and backward; a distillation step's teacher forward included)."""
        self.seconds += flops / self.flops_per_s("train")

    def forward(self, flops: float) -> None:
        """GPU work of forward passes alone: evaluation, the teacher's logits, a frozen encoder under a head."""
        self.seconds += flops / self.flops_per_s("forward")

    def save(self, nbytes: float, keep: bool = True, emptied: bool = True) -> None:
        self.written += nbytes
        self.seconds += nbytes / DRIVE_BYTES_PER_S
        if keep:
            self.kept += nbytes
        elif not emptied:
            self.trash += nbytes

    def checkpoints(self, run_seconds: float, profile: Profile, params: float, final: bool) -> None:
        """Checkpoints of one run: one every checkpoint_minutes (and at the end if `final`), one kept at a time."""
        saves = math.floor(run_seconds / (60 * profile.checkpoint_minutes)) + int(final)
        size = checkpoint_bytes(params)
        for i in range(saves):
            self.save(size, keep=final and i == saves - 1)
        if saves:
            self.transient = max(self.transient, size)


def encoders(profile: Profile) -> dict[str, Encoder]:
    if profile.teacher not in SHAPES:
        raise ValueError(f"No shape known for teacher {profile.teacher!r}: add it to kd.budget.SHAPES.")
    layers, width, ffn, vocab = SHAPES[profile.teacher]
    found = {"teacher": Encoder(layers, width, ffn, vocab),
             "student": Encoder(profile.student_layers, width, ffn, vocab)}
    if profile.released_student:
        found["released"] = Encoder(*SHAPES[profile.released_student])
    return found


def _at_most(asked: int | None, dataset: str, split: str) -> int:
    """Rows a profile asks of a split (None: all), never more than the split has."""
    return min(asked or ROWS[dataset, split], ROWS[dataset, split])


def _rows(profile: Profile, task: str, which: str) -> int:
    size, t = profile.task_size(task), TASKS[task]
    if which == "train":
        return _at_most(size.train_rows, t.dataset, t.train_split)
    return _at_most(size.eval_rows, t.dataset, t.eval_split)


def _corpus(profile: Profile, cost: Cost, first: bool) -> None:
    """Tokenise the masked-LM corpus (first time: download it too, and cache the blocks on Drive, 2 bytes a token)."""
    splits = (profile.mlm_train_split, profile.mlm_eval_split)
    tokens = sum(CORPUS_TOKENS.get((profile.mlm_corpus, s), 0) for s in splits)
    if first:
        cost.seconds += tokens / TOKENISE_TOKENS_PER_S + 2 * tokens / DOWNLOAD_BYTES_PER_S
        cost.save(2 * tokens)
    else:
        cost.seconds += 2 * tokens / DRIVE_BYTES_PER_S


def notebook_01(profile: Profile, m: dict[str, Encoder], end: str) -> Cost:
    cost = Cost(end, seconds=SETUP_S + 4 * m["teacher"].params(True) / DOWNLOAD_BYTES_PER_S)
    _corpus(profile, cost, first=True)
    eval_tokens = profile.eval_blocks * profile.block_size
    cost.forward(eval_tokens * (2 * m["teacher"].forward_flops(profile.block_size, True)
                            + m["student"].forward_flops(profile.block_size, True)))
    head_tokens = profile.head_fit_steps * profile.head_fit_batch * profile.block_size
    cost.forward(head_tokens * m["teacher"].forward_flops(profile.block_size, True))  # frozen encoder: no backward
    adapt_tokens = profile.teacher_adapt_steps * profile.head_fit_batch * profile.block_size
    cost.train(adapt_tokens * m["teacher"].train_flops(profile.block_size, True))  # then every weight
    if profile.head_fit_steps:
        cost.save(4 * m["teacher"].params(True))     # teacher-mlm
    cost.save(4 * m["student"].params(True))         # student-init
    return cost


def distill_step_seconds(profile: Profile, m: dict[str, Encoder], end: str = "low") -> float:
    """One optimiser step of notebook 02's main run (batch x accumulation blocks) on a T4 at one end."""
    s, t, L = m["student"], m["teacher"], profile.block_size
    per_token = s.train_flops(L, True) + t.forward_flops(L, True)
    return profile.distill_batch * profile.distill_accum * L * per_token / Cost(end).flops_per_s("train")


def notebook_02(profile: Profile, m: dict[str, Encoder], end: str) -> Cost:
    cost = Cost(end, seconds=SETUP_S + 2 * LOAD_MODEL_S)
    _corpus(profile, cost, first=False)
    s, t, L = m["student"], m["teacher"], profile.block_size
    step_s = distill_step_seconds(profile, m, end)
    runs = len(ARMS) * profile.distill_seeds          # the triple loss and its control, every seed
    main = min(profile.distill_steps * step_s, 60 * profile.distill_minutes)  # the time budget stops it cleanly
    for _ in range(runs):                             # each keeps its last checkpoint, to resume or continue
        cost.seconds += main
        cost.checkpoints(main, profile, s.params(True), final=True)
    cost.save(2 * 4 * s.params(True))                 # student-distilled, student-mlm
    cost.forward(runs * (profile.curve_points + 1) * profile.eval_blocks * L * s.forward_flops(L, True))  # curves
    rows = len(ABLATION_ROWS)                         # the ablation: triple loss, terms removed, random init
    row_step_s = step_s * profile.ablation_accumulation() / profile.distill_accum
    cost.seconds += rows * profile.ablation_seeds * profile.ablation_steps * row_step_s
    for _ in range(rows):  # a row longer than checkpoint_minutes writes checkpoints, removed when it is done
        cost.checkpoints(profile.ablation_steps * row_step_s, profile, s.params(True), final=False)
    cost.forward(profile.eval_blocks * L * (t.forward_flops(L, True) + (2 + rows) * s.forward_flops(L, True)))
    cost.seconds += (rows + 1) * RUN_OVERHEAD_S
    return cost


def _finetune(profile: Profile, cost: Cost, model: Encoder, task: str, epochs: float, extra_forward: bool) -> float:
    """One fine-tuning run; returns its training seconds. extra_forward: the teacher's logits on the train set first."""
    length = min(TASKS[task].max_len, profile.max_len_cap)
    mean, padded = LENGTHS[task, length]
    train, evaluation = _rows(profile, task, "train"), _rows(profile, task, "eval")
    before = cost.seconds
    cost.train(epochs * train * mean * model.train_flops(mean))
    seconds = cost.seconds - before
    cost.forward(evaluation * padded * model.forward_flops(padded))
    if extra_forward:
        cost.forward(train * padded * model.forward_flops(padded))
    cost.seconds += RUN_OVERHEAD_S + LOAD_MODEL_S
    return seconds


def notebook_03(profile: Profile, m: dict[str, Encoder], end: str) -> Cost:
    cost = Cost(end, seconds=SETUP_S)
    models = {**{name: m["teacher" if name == "teacher" else "student"] for name in FINETUNED},
              "student_task_kd": m["student"], **({"released": m["released"]} if "released" in m else {})}
    for task in TASKS:
        epochs = profile.task_size(task).epochs
        for name, model in models.items():
            for seed in profile.seeds(task, name):
                run = _finetune(profile, cost, model, task, epochs, extra_forward=name == "teacher" and seed == 0)
                cost.checkpoints(run, profile, model.params(), final=False)
        cost.save(4 * m["teacher"].params())          # the seed-0 teacher, kept for task KD (and notebook 04)
    cost.save(4 * m["student"].params())              # the IMDb student, kept for notebook 05
    return cost


def notebook_04(profile: Profile, m: dict[str, Encoder], end: str) -> Cost:
    cost = Cost(end, seconds=SETUP_S + LOAD_MODEL_S)
    L = profile.classic_max_len
    reviews = sum(_at_most(asked, "imdb", split) for split, asked in (
        ("train", profile.classic_train_rows), ("unsupervised", profile.classic_transfer_rows),
        ("test", profile.classic_eval_rows)))
    rewrites = 0
    if profile.classic_transfer in ("augmented", "both"):  # Tang et al.'s rewrites: the masked LM picks, then labelled
        rewrites = _at_most(profile.classic_train_rows, "imdb", "train") * profile.classic_rewrites
        cost.forward(rewrites * L * m["teacher"].forward_flops(L))
    cost.forward((reviews + rewrites) * L * m["teacher"].forward_flops(L))  # the teacher's soft targets, once
    students = len(CLASSIC_IDS)                            # every kind and depth, alone and distilled, and the
    runs = (2 * students + len(profile.classic_control)) * profile.classic_seeds  # control students' third mode
    cost.seconds += runs * (profile.classic_steps * SMALL_STEP_S + RUN_OVERHEAD_S)
    timed = [m["teacher"], m["student"], m["student"]]     # teacher, student fp32 and int8 (small students: ~free)
    cost.seconds += (profile.latency_runs + 3) * sum(e.forward_flops(profile.latency_seq_len)
                                                     * profile.latency_seq_len for e in timed) / CPU_FLOPS
    return cost


def notebook_05(profile: Profile, m: dict[str, Encoder], end: str) -> Cost:
    """On a CPU runtime (the int8 student runs only on CPUs): the int8 check, fp32 and int8, sorted by length."""
    cost = Cost(end, seconds=SETUP_S + 3 * LOAD_MODEL_S)
    length = min(TASKS["imdb"].max_len, profile.max_len_cap)
    scored = _rows(profile, "imdb", "eval")  # notebook 03's test reviews
    rows = min(profile.int8_eval_rows or scored, scored)
    mean = LENGTHS["imdb", length][0]
    cost.seconds += 2 * rows * mean * m["student"].forward_flops(mean) / CPU_FLOPS
    return cost


NOTEBOOK_COSTS = {"01_student_init": notebook_01, "02_mlm_distillation": notebook_02,
                  "03_finetune_glue_imdb": notebook_03, "04_classic_kd_imdb": notebook_04, "05_summary": notebook_05}
GPU_FREE = {"05_summary"}  # notebooks that run on a CPU runtime


def estimate(profile: Profile, end: str = "low") -> dict[str, dict]:
    """Per notebook: estimated hours on a T4 (05: on a CPU runtime) at one end of T4_SHARE ("low": the pessimistic
    one) and Drive GB written, kept, in the trash, held for a moment; and "course": the Drive footprint (kept + trash +
    the largest moment) and the hours in total."""
    if end not in ENDS:
        raise ValueError(f"end={end!r}: one of {ENDS}.")
    m = encoders(profile)
    rows = {}
    for name, fn in NOTEBOOK_COSTS.items():
        c = fn(profile, m, end)
        rows[name] = {"hours": c.seconds / 3600, "written_gb": c.written / 1e9, "kept_gb": c.kept / 1e9,
                      "trash_gb": c.trash / 1e9, "transient_gb": c.transient / 1e9, "gpu": name not in GPU_FREE}
    rows["course"] = {"hours": sum(r["hours"] for r in rows.values()),
                      "drive_gb": sum(r["kept_gb"] + r["trash_gb"] for r in rows.values())
                      + max(r["transient_gb"] for r in rows.values())}
    return rows


def sessions(rows: dict[str, dict]) -> list[list[str]]:
    """Notebooks packed in order into Colab sessions of at most PACK_HOURS (GPU runtime), 05 on a CPU runtime."""
    packed, hours = [[]], 0.0
    for name, r in rows.items():
        if name == "course":
            continue
        if packed[-1] and (hours + r["hours"] > PACK_HOURS or not r["gpu"]):
            packed.append([])
            hours = 0.0
        packed[-1].append(name)
        hours += r["hours"]
    return packed
