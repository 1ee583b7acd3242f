"""Notebook 02's masked-LM distillation as a command, for one GPU or many.

    cd code && python -m kd.distill_mlm --profile t4 --out ../runs/distil
    cd code && torchrun --nproc_per_node 8 -m kd.distill_mlm --profile t4 --steps 20000 --out ../runs/distil
    cd code && accelerate launch --multi_gpu --num_processes 8 -m kd.distill_mlm --profile t4 --out ../runs/distil

The same helpers as the notebook (kd.mlm_corpus, kd.build_student, kd.distill, kd.masked_lm_eval,
kd.distillation_metrics) and the same run record, written to OUT/02_mlm_distillation.json so that it never
replaces the notebook's. Under torchrun or accelerate the library's Trainer runs distributed data parallel:
each process reads a different shard of the blocks, gradients are averaged, and process 0 alone writes
checkpoints, the student and the record. Effective batch = batch x accumulation x processes (the record says
so). Run the same command again and it resumes from the last checkpoint in OUT/checkpoints.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from .config import LOSS_TERMS, PROFILES, get_profile
from .records import Run, save_artifact

CORPORA = ("wikitext2", "wikitext103")  # kd.data.DATASETS's masked-LM corpora; kd.data imports torch, --help needn't


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kd.distill_mlm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder for checkpoints, the student and the run record")
    p.add_argument("--profile", choices=list(PROFILES), help="sizes and sources (default: $KD_PROFILE, else t4 on a "
                   "GPU and cpu without); the flags below override its distillation settings")
    p.add_argument("--steps", type=int, help="optimiser steps (default: the profile's distill_steps)")
    p.add_argument("--minutes", type=float, help="time budget; training stops cleanly, saved, when it is reached")
    p.add_argument("--batch", type=int, help="blocks per process per forward pass (default: distill_batch)")
    p.add_argument("--accum", type=int, help="gradient accumulation steps (default: distill_accum)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: distill_lr)")
    p.add_argument("--corpus", choices=CORPORA, help="masked-LM corpus by short name, e.g. wikitext103")
    p.add_argument("--hub-corpus", metavar="REPO[:CONFIG]", help="any hub dataset with a 'text' column instead, "
                   "e.g. Salesforce/wikitext:wikitext-103-raw-v1")
    p.add_argument("--train-split", help="split to distil on (default: the profile's mlm_train_split)")
    p.add_argument("--eval-split", help="held-out split for masked-token accuracy (default: mlm_eval_split)")
    loss = p.add_argument_group("the triple loss (default: the profile's distill, kd.DistillConfig)")
    loss.add_argument("--temperature", type=float, help="T of the soft targets")
    for term, what in LOSS_TERMS.items():  # --alpha-ce, --alpha-mlm, --alpha-cos: one flag per term
        loss.add_argument(f"--alpha-{term}", type=float, help=f"weight of L_{term}, the {what} term")
    loss.add_argument("--masked-only", action="store_true", default=None,
                      help="soft targets and cosine on the masked tokens only")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch  # here, not at the top: --help answers without loading torch

    from .data import DATASETS, mlm_corpus
    from .measure import masked_lm_eval
    from .models import build_student, load_mlm_teacher, student_layer_ids
    from .training import distill, distillation_metrics

    corpus = args.corpus
    if args.hub_corpus:
        repo, _, config = args.hub_corpus.partition(":")
        DATASETS["hub_corpus"], corpus = (repo, config or None), "hub_corpus"
    flags = dict(distill_steps=args.steps, distill_minutes=args.minutes, distill_batch=args.batch,
                 distill_accum=args.accum, distill_lr=args.lr, mlm_corpus=corpus,
                 mlm_train_split=args.train_split, mlm_eval_split=args.eval_split)
    profile = dataclasses.replace(get_profile(args.profile), **{k: v for k, v in flags.items() if v is not None})
    loss = dict(temperature=args.temperature, masked_only=args.masked_only,
                **{f"alpha_{t}": getattr(args, f"alpha_{t}") for t in LOSS_TERMS})
    cfg = dataclasses.replace(profile.distill, **{k: v for k, v in loss.items() if v is not None})
    torch.manual_seed(profile.seed)  # the same data order, masking and initialisation on every process
    run = Run(profile, "02_mlm_distillation", folder=args.out,
              seeds={"torch": profile.seed, "trainer": profile.seed, "eval_masking": profile.seed})
    if torch.cuda.is_available():  # this process's GPU (torchrun and accelerate set LOCAL_RANK), not GPU 0 for all
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    main_process = int(os.environ.get("RANK", 0)) == 0
    teacher, tokenizer = load_mlm_teacher(profile)
    student = build_student(teacher, student_layer_ids(teacher.config.num_hidden_layers, profile.student_layers))
    train_blocks, _, eval_batches = mlm_corpus(run, tokenizer)
    before = masked_lm_eval(student, eval_batches) if main_process else None  # process 0 reports
    trainer = distill(student, teacher, tokenizer, train_blocks, profile, cfg, args.out / "checkpoints",
                      max_steps=profile.distill_steps, minutes=profile.distill_minutes)
    if trainer.is_world_process_zero():
        save_artifact(profile, "student-distilled", student, tokenizer, root=args.out)
        heldout = {"teacher": masked_lm_eval(teacher, eval_batches), "student_init": before,
                   "student_distilled": masked_lm_eval(student, eval_batches)}
        metrics = distillation_metrics(trainer, heldout, cfg, profile.block_size)
        print(f"{metrics['steps']} steps on {metrics['processes']} process(es), {metrics['blocks_per_step']} blocks "
              f"per step; masked-token accuracy {before['masked_acc']:.4f} -> "
              f"{metrics['masked_acc']['student_distilled']:.4f}; record: {run.save(metrics)}")
    if torch.distributed.is_initialized():  # every process closes its process group before it exits: one that exits
        torch.distributed.barrier()  # with gloo's threads still up can abort (SIGABRT, "terminate called without an
        torch.distributed.destroy_process_group()  # active exception"; pytorch/pytorch#190489)


if __name__ == "__main__":
    main()
