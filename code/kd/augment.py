"""Tang et al.'s augmented transfer set (2019, Section 3.3), with TinyBERT's replacement rule.

Each labelled review is rewritten several times. Word by word (a word: a WordPiece and its `##` continuations), a
draw u ~ Uniform[0, 1] decides: u < p_mask, the word becomes one [MASK]; p_mask <= u < p_mask + p_replace, it is
replaced; else it stays. Then, with probability p_ng, only an n-gram of the rewrite is kept (n uniform in 1..n_max).
Tang et al. replaced a word by another of the same part of speech (a POS tagger: no well-kept package earns its place
here); TinyBERT (Jiao et al. 2020) asks the teacher's masked-LM for its top-k words at the word's place, which the
course already has (notebook 01's masked LM): a replacement is drawn from those k, never the word itself. The
teacher then labels every rewrite softly (notebook 04); the rewrites carry label -1 (soft targets only).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import datasets
import torch

from .models import kept_in_place, masked_lm_logits


@dataclass(frozen=True)
class AugmentConfig:
    p_mask: float = 0.1     # Tang et al.: p_mask = p_pos = 0.1 and p_ng = 0.25 on every dataset
    p_replace: float = 0.1  # their POS-guided swap; here the teacher's masked-LM candidates (TinyBERT)
    p_ng: float = 0.25
    n_max: int = 5          # n-grams of 1 to 5 words
    top_k: int = 15         # TinyBERT's K candidates per replaced word


def words(ids: list[int], tokenizer) -> list[list[int]]:
    """Group WordPiece ids (no [CLS]/[SEP]) into words: a piece starting with '##' continues the previous word."""
    out: list[list[int]] = []
    for i, piece in zip(ids, tokenizer.convert_ids_to_tokens(ids)):
        if piece.startswith("##") and out:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def draw(groups: list[list[int]], rng: random.Random, cfg: AugmentConfig, mask_id: int) -> list:
    """One rewrite's plan, word by word: a list of ids (kept, or [MASK]), or ("replace", the word's ids)."""
    planned = []
    for g in groups:
        u = rng.random()
        planned.append([mask_id] if u < cfg.p_mask else ("replace", g) if u < cfg.p_mask + cfg.p_replace else g)
    if rng.random() < cfg.p_ng:
        n = rng.randint(1, min(cfg.n_max, len(planned)))
        start = rng.randint(0, len(planned) - n)
        planned = planned[start:start + n]
    return planned


def augment_reviews(texts: datasets.Dataset, mlm, tokenizer, cfg: AugmentConfig, rewrites: int, seed: int,
                    max_len: int, batch: int = 64) -> datasets.Dataset:
    """`rewrites` rewrites of every row of `texts` (tokenised: input_ids with [CLS] ... [SEP]), as input_ids,
    token_type_ids, attention_mask, labels -1 and source_row (the row each came from). mlm: a masked LM (notebook
    01's teacher) that picks the replacements; it goes back where it was found."""
    rng = random.Random(seed)
    special = set(tokenizer.all_special_ids)
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    barred = torch.tensor([p.startswith("##") for p in pieces])  # a replacement is a whole word: no continuation
    barred[sorted(special)] = True
    plans, sources = [], []
    for row, ids in enumerate(texts["input_ids"]):
        groups = words([i for i in ids if i not in special], tokenizer)
        for _ in range(rewrites):
            plans.append(draw(groups, rng, cfg, tokenizer.mask_token_id))
            sources.append(row)
    out = []
    generator = torch.Generator().manual_seed(seed)
    with kept_in_place(mlm):
        mlm.eval()
        for start in range(0, len(plans), batch):
            chunk = plans[start:start + batch]
            bodies = [[i for w in p for i in ([tokenizer.mask_token_id] if isinstance(w, tuple) else w)]
                      for p in chunk]
            seqs = [[tokenizer.cls_token_id, *b[:max_len - 2], tokenizer.sep_token_id] for b in bodies]
            width = max(map(len, seqs))
            ids = torch.tensor([s + [tokenizer.pad_token_id] * (width - len(s)) for s in seqs])
            mask = (torch.arange(width) < torch.tensor([len(s) for s in seqs])[:, None]).long()
            places, originals = torch.zeros_like(ids, dtype=torch.bool), []
            for r, p in enumerate(chunk):  # the positions to fill: where a word is to be replaced (row order)
                pos = 1
                for w in p:
                    if pos >= len(seqs[r]) - 1:
                        break
                    if isinstance(w, tuple):
                        places[r, pos] = True
                        originals.append(w[1][0])
                    pos += 1 if isinstance(w, tuple) else len(w)
            if places.any():
                with torch.no_grad():  # not inference_mode: the logits are edited below
                    logits = masked_lm_logits(mlm, ids, mask, places).float()  # (places, vocab), row-major order
                logits[:, barred] = -float("inf")
                logits[torch.arange(len(originals)), torch.tensor(originals)] = -float("inf")  # never the word itself
                top = logits.topk(cfg.top_k, dim=-1).indices  # the teacher's k likeliest words there
                pick = top[torch.arange(len(top)), torch.randint(0, cfg.top_k, (len(top),), generator=generator)]
                ids[places] = pick
            out += [row[:n].tolist() for row, n in zip(ids, mask.sum(1).tolist())]
    return datasets.Dataset.from_dict({"input_ids": out, "token_type_ids": [[0] * len(s) for s in out],
                                       "attention_mask": [[1] * len(s) for s in out], "labels": [-1] * len(out),
                                       "source_row": sources})
