"""Data: the hub by default, or a local folder laid out like the hub; masked-LM blocks; the fine-tuning tasks."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import datasets
import torch
from transformers import DataCollatorForLanguageModeling

from .config import Profile, Task
from .records import Run, artifacts_dir, local_copy

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


def provenance(profile: Profile, dataset: str) -> dict:
    """What a record says of where a dataset came from: its hub id and config, and whether a local copy laid out
    like the hub was read instead of the hub (KD_DATA_ROOT, or the profile's data_root), never a folder."""
    repo, config = DATASETS[dataset]
    return {"source": f"{repo}/{config}", "local_mirror": data_root(profile) is not None}


def noted_split(run: Run, dataset: str, split: str, rows: int | None = None) -> datasets.Dataset:
    """Load a split and note it in the run's record (source, rows); `rows` takes a random subset of that many (the
    same for every model and seed: the profile's seed), noted too."""
    ds = load_split(run.profile, dataset, split)
    key = f"{dataset}/{split}"
    run.data[key] = {**provenance(run.profile, dataset), "rows": len(ds)}
    if rows and rows < len(ds):
        ds = ds.shuffle(seed=run.profile.seed).select(range(rows))
        run.note_data(key, subset_rows=rows, subset_seed=run.profile.seed)
    return ds


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
        raise FileNotFoundError(f"No parquet file for {repo}/{config} split {split!r}: looked for "
                                f"{folder}/{split}-*.parquet (splits there: {have or 'none'}). Point KD_DATA_ROOT at a "
                                "folder laid out like the hub, or unset it to load from the hub.")
    return datasets.load_dataset("parquet", data_files={split: [str(f) for f in files]}, split=split)


def encode(ds: datasets.Dataset, tokenizer, fields: tuple, max_len: int) -> datasets.Dataset:
    """Tokenise one text field or a sentence pair (joined with [SEP]), truncated at max_len; keep `labels`."""
    # the cache key of the result: the data, the tokenizer as text (less the truncation state a call leaves in
    # it), the settings. Else datasets pickles the tokenizer to hash it: ~1 s for BERT's vocabulary, every call
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec = {k: v for k, v in spec.items() if k not in ("truncation", "padding")}
    key = "\n".join([ds._fingerprint, json.dumps(spec, sort_keys=True), repr(fields), str(max_len)])
    ds = ds.map(lambda b: tokenizer(*[b[f] for f in fields], truncation=True, max_length=max_len),
                batched=True, remove_columns=[c for c in ds.column_names if c != "label"],
                new_fingerprint=hashlib.sha256(key.encode()).hexdigest()[:16])
    return ds.rename_column("label", "labels")


# ----------------------------------------------------------------------------------------------
# Masked-LM corpus (notebooks 01-02)

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


def cached_blocks(run: Run, tokenizer, split: str) -> datasets.Dataset:
    """mlm_blocks of one split, tokenised once and cached in the artifacts folder (on Colab: Drive, so a new runtime
    skips WikiText-103's minutes of tokenising; training reads a copy on the runtime's own disk, kd.records.local_copy),
    2 bytes a token where the vocabulary allows. The cache is named by corpus, split, block size, and a digest of the
    data source and the vocabulary; it is written to a temporary folder and renamed when complete, so a save cut off
    by a disconnect, or a second process (torchrun), leaves no half."""
    p = run.profile
    source = data_source(p, p.mlm_corpus)
    digest = hashlib.sha1(json.dumps([source, sorted(tokenizer.get_vocab().items())]).encode()).hexdigest()[:12]
    name = "-".join(str(part).replace("/", "_") for part in DATASETS[p.mlm_corpus])
    folder = artifacts_dir(p) / "corpus" / f"{name}-{split}-{p.block_size}-{digest}"
    if not folder.exists():
        blocks = mlm_blocks(noted_split(run, p.mlm_corpus, split), tokenizer, p.block_size)
        if len(tokenizer) <= 1 << 16:
            blocks = blocks.cast_column("input_ids", datasets.Sequence(datasets.Value("uint16")))
        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        blocks.save_to_disk(str(partial))
        (partial / "kd_source.json").write_text(json.dumps(run.data[f"{p.mlm_corpus}/{split}"]))  # source, rows
        try:
            partial.rename(folder)
        except OSError:  # another process finished first: its copy is the same
            shutil.rmtree(partial)
    noted = {**json.loads((folder / "kd_source.json").read_text()), **provenance(p, p.mlm_corpus)}  # rows; source
    run.note_data(f"{p.mlm_corpus}/{split}", **noted, cached_blocks=f"corpus/{folder.name}")  # in the artifacts
    return datasets.load_from_disk(str(local_copy(folder)))  # on Colab: read from the runtime's disk, not Drive


def mlm_corpus(run: Run, tokenizer) -> tuple[datasets.Dataset, datasets.Dataset, list[dict]]:
    """The profile's masked-LM corpus: (training blocks, held-out blocks, held-out batches masked once), noted in the
    record."""
    p = run.profile
    blocks = {split: cached_blocks(run, tokenizer, split) for split in (p.mlm_train_split, p.mlm_eval_split)}
    if p.train_blocks:
        blocks[p.mlm_train_split] = blocks[p.mlm_train_split].select(range(p.train_blocks))
    blocks[p.mlm_eval_split] = blocks[p.mlm_eval_split].select(range(min(p.eval_blocks, len(blocks[p.mlm_eval_split]))))
    for split, b in blocks.items():
        run.note_data(f"{p.mlm_corpus}/{split}", blocks=len(b), block_size=p.block_size)
    eval_batches = fixed_masked_batches(blocks[p.mlm_eval_split], tokenizer, batch_size=32, seed=p.seed)
    return blocks[p.mlm_train_split], blocks[p.mlm_eval_split], eval_batches


def student_text(run: Run, blocks: datasets.Dataset) -> datasets.Dataset:
    """Notebook 02's text for the student: the first `student_blocks` of the teacher's training blocks (all of them
    if None), noted in the record. Fewer blocks than the teacher saw, seen several times: where the soft targets
    have most to add (Hinton et al. 2015, sec. 4)."""
    n, p = run.profile.student_blocks, run.profile
    if n is not None and not 0 < n <= len(blocks):
        raise ValueError(f"Profile {p.name!r} asks for student_blocks={n}, but the corpus has {len(blocks)} training "
                         f"blocks: set student_blocks between 1 and {len(blocks)}, or None for all of them.")
    chosen = blocks if n is None else blocks.select(range(n))
    run.note_data(f"{p.mlm_corpus}/{p.mlm_train_split}", student_blocks=len(chosen))
    return chosen


# ----------------------------------------------------------------------------------------------
# Fine-tuning tasks (notebooks 03-05)

def task_split(run: Run, task: Task, tokenizer, which: str) -> datasets.Dataset:
    """A task's "train" or "eval" split, tokenised and truncated at the task's length (capped by the profile).
    The profile's task_sizes may take a random subset (the same one wherever it is loaded)."""
    size = run.profile.task_size(task.name)
    split, rows = (task.train_split, size.train_rows) if which == "train" else (task.eval_split, size.eval_rows)
    max_len = min(task.max_len, run.profile.max_len_cap)
    return encode(noted_split(run, task.dataset, split, rows), tokenizer, task.text_fields, max_len)


def random_subset(ds: datasets.Dataset, rows: int | None, seed: int) -> datasets.Dataset:
    """`rows` rows drawn at random (all of them if None or more), shortest first. Random, because a split may be
    sorted (IMDb's test split is: the first 12,500 reviews are negative), so a subset is balanced in expectation;
    by length, so batches of similar lengths pad little. Order does not change a score."""
    if rows and rows < len(ds):
        ds = ds.shuffle(seed=seed).select(range(rows))
    lengths = [len(ids) for ids in ds["input_ids"]]
    return ds.select(sorted(range(len(ds)), key=lengths.__getitem__))


def task_data(run: Run, task: Task, tokenizer) -> tuple:
    """(train, eval) of a task: see task_split."""
    return task_split(run, task, tokenizer, "train"), task_split(run, task, tokenizer, "eval")
