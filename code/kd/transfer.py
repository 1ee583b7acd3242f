"""Notebook 04's transfer set, built in one place: the labelled reviews with the fine-tuned teacher's soft targets,
and, by the profile's choice, the unlabelled reviews and Tang et al.'s rewrites of the labelled ones (kd.augment),
each labelled once by the teacher and cached under a name that says what the labels depend on (TransferKey).
Notebook 04 and code/studies/study_transfer_set.py both build theirs here."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import datasets
import torch

from .augment import AugmentConfig, augment_reviews
from .finetuning import predict_logits
from .records import logits_cache

TRANSFER_CHOICES = ("unlabelled", "augmented", "both")  # what joins the labelled reviews (Profile.classic_transfer)


@dataclass(frozen=True)
class TransferKey:
    """What the teacher's labels of the sets depend on (besides the teacher's own weights, which kd.logits_cache
    fingerprints): the cache file's name."""
    train_rows: int
    transfer_rows: int
    max_len: int
    choice: str
    rewrites: int
    augment: AugmentConfig

    def parts(self) -> tuple:
        return (self.train_rows, self.transfer_rows, self.max_len, self.choice, self.rewrites,
                *asdict(self.augment).values())


def classic_reviews(run, tokenizer, max_len: int) -> tuple:
    """Notebook 04's reviews as the teacher's WordPiece ids, truncated at max_len: (labelled training reviews, the
    unlabelled transfer reviews, test reviews), the profile's subsets (classic_*_rows), noted in the run's record."""
    from .data import encode, noted_split

    p = run.profile
    return tuple(encode(noted_split(run, "imdb", split, rows), tokenizer, ("text",), max_len) for split, rows in
                 (("train", p.classic_train_rows), ("unsupervised", p.classic_transfer_rows),
                  ("test", p.classic_eval_rows)))


def transfer_set(profile, choice: str, train: datasets.Dataset, transfer: datasets.Dataset, test: datasets.Dataset,
                 teacher, mlm, tokenizer, augment: AugmentConfig, rewrites: int, max_len: int,
                 labels_of: str | None = None) -> dict:
    """The distillation set for `choice` (TRANSFER_CHOICES): labelled reviews keep their label, transfer reviews
    and rewrites get -1 (soft targets only), every row the teacher's logits (column teacher_logits). mlm: notebook
    01's masked LM, which proposes the rewrites' words (only read when the choice has rewrites). Returns
    {"distill_set", "logits" (split -> (rows, classes)), "augmented" (the rewrites, or None), "cached" (the labels
    were read back), "record" (what the record says of the set)}. labels_of: read the labels cached for another
    choice (the study of the other transfer set reads notebook 04's), label only what that cache lacks, and write
    nothing."""
    for c in (choice, labels_of or choice):
        if c not in TRANSFER_CHOICES:
            raise ValueError(f"Unknown transfer set {c!r}: choose one of {', '.join(TRANSFER_CHOICES)} "
                             "(classic_transfer).")
    key = TransferKey(len(train), len(transfer), max_len, labels_of or choice, rewrites, augment)
    cache = logits_cache(profile, "teacher-imdb", *key.parts())
    augmented = None
    if choice in ("augmented", "both"):
        augmented = augment_reviews(train, mlm, tokenizer, augment, rewrites, profile.seed, max_len)
        augmented = augmented.remove_columns("source_row")
    splits = {"train": train, "transfer": transfer, "test": test,
              **({"augmented": augmented} if augmented is not None else {})}
    known = torch.load(cache) if cache.exists() else {}
    cached = set(splits) <= set(known)
    logits = {k: known[k] if k in known else torch.tensor(predict_logits(teacher, ds, tokenizer, profile))
              for k, ds in splits.items()}
    if not cache.exists() and labels_of in (None, choice):  # a choice's own labels, labelled once
        torch.save(logits, cache)
    pieces = [train.add_column("teacher_logits", logits["train"].tolist())]
    if choice in ("unlabelled", "both"):
        pieces.append(transfer.add_column("teacher_logits", logits["transfer"].tolist()))
    if augmented is not None:
        pieces.append(augmented.add_column("teacher_logits", logits["augmented"].tolist()))
    record = {"choice": choice, "rewrites": rewrites, "augment": asdict(augment),
              "unlabelled_rows": len(transfer) if choice != "augmented" else 0,
              "augmented_rows": len(augmented) if augmented is not None else 0}
    return {"distill_set": datasets.concatenate_datasets(pieces), "logits": logits, "augmented": augmented,
            "cached": cached, "record": record}
