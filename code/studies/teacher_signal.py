"""Where does the teacher's signal show at the cpu profile's scale? (issue 30, item 3)

Builds the cpu teacher as notebook 01 does (head fit, then every weight adapted), for more steps than the committed
profile, scoring held-out masked-token accuracy along the way; then trains the student (every other teacher layer)
with the triple loss and with the masked-LM loss alone (the no-teacher control: same copy, blocks, masking and
data-order seeds, steps and schedule), on all blocks and on a fraction of them, from the copy and from random
weights, each with a held-out learning curve. Every run's result is appended to OUT as it finishes.

    KD_DATA_ROOT=../shared/data python code/studies/teacher_signal.py --out runs/teacher_signal.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

import kd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--adapt-steps", type=int, default=1500)
    ap.add_argument("--adapt-lr", type=float, default=1e-4)
    ap.add_argument("--plan", default="main:42:43,cos,scarce:42,random:42,long:42,scarce:43")
    args = ap.parse_args()
    base = kd.get_profile("cpu")
    profile = dataclasses.replace(base, teacher_adapt_steps=args.adapt_steps, teacher_adapt_lr=args.adapt_lr)
    out = json.loads(args.out.read_text()) if args.out.exists() else {}
    art = kd.REPO / "runs" / "teacher_signal"

    def save(key, value):
        out[key] = value
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
        print(key, json.dumps(value)[:400], flush=True)

    run = kd.Run(profile, "study", folder=art)
    teacher_dir = art / f"teacher-{args.adapt_steps}-{args.adapt_lr}"
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(kd.teacher_source(profile))
    train_blocks, _, eval_batches = kd.mlm_corpus(run, tokenizer)
    if (teacher_dir / "config.json").exists():
        teacher, tokenizer, _ = kd.load_masked_lm(str(teacher_dir))
    else:
        torch.manual_seed(profile.seed)
        teacher, tokenizer, _ = kd.load_masked_lm(kd.teacher_source(profile))
        t0 = time.time()
        kd.fit_mlm_head(teacher, tokenizer, train_blocks, profile, art / "head")
        curve = kd.HeldOutCurve(eval_batches, every=max(1, args.adapt_steps // 6))
        kd.fit_mlm_head(teacher, tokenizer, train_blocks, profile, art / "adapt", whole=True, callbacks=(curve,))
        teacher.save_pretrained(teacher_dir)
        tokenizer.save_pretrained(teacher_dir)
        save(f"teacher/{args.adapt_steps}/{args.adapt_lr}", {"curve": curve.points, "seconds": time.time() - t0})
    teacher_eval = kd.masked_lm_eval(teacher, eval_batches)
    save("teacher_final", teacher_eval)
    layers = kd.student_layer_ids(teacher.config.num_hidden_layers, profile.student_layers)
    cfgs = {"triple": profile.distill, "mlm_only": dataclasses.replace(profile.distill, alpha_ce=0.0, alpha_cos=0.0)}

    def arm(name, cfg, seed, steps, blocks, random_init=False, every=20):
        key = f"{name}/seed{seed}/steps{steps}/blocks{len(blocks)}" + ("/random" if random_init else "")
        if key in out:
            return
        student = kd.build_student(teacher, layers)
        if random_init:
            torch.manual_seed(seed)
            student = type(student)(student.config)
        curve = kd.HeldOutCurve(eval_batches, every=every)
        t0 = time.time()
        tr = kd.distill(student, teacher, tokenizer, blocks, profile, cfg, art / key.replace("/", "-"), max_steps=steps,
                        minutes=60, final_checkpoint=False, seed=seed, callbacks=(curve,))
        save(key, {"curve": curve.points, "seconds": time.time() - t0,
                   "final_terms": {k: v[-1] for k, v in kd.loss_history(tr.state.log_history).items() if v}})

    fraction = train_blocks.select(range(256))  # an eighth of the blocks, many passes (Hinton et al. 2015, sec. 4)
    for what in args.plan.split(","):
        name_seed = what.split(":")
        what, seeds = name_seed[0], [int(x) for x in name_seed[1:]] or [42]
        for seed in seeds:
            for name in ("triple", "mlm_only"):
                if what == "main":
                    arm(name, cfgs[name], seed, profile.distill_steps, train_blocks)
                if what == "scarce":
                    arm(name, cfgs[name], seed, 300, fraction, every=50)
                if what == "random":
                    arm(name, cfgs[name], seed, profile.distill_steps, train_blocks, random_init=True)
                if what == "long":
                    arm(name, cfgs[name], seed, 300, train_blocks, every=50)
            if what == "cos":  # issue 30 item 4: does dropping the cosine change the weights?
                for name, cfg in (("abl_triple", profile.distill),
                                  ("abl_no_cos", dataclasses.replace(profile.distill, alpha_cos=0.0))):
                    key = f"{name}/weights"
                    if key in out:
                        continue
                    s = kd.build_student(teacher, layers)
                    kd.distill(s, teacher, tokenizer, train_blocks, profile, cfg, art / "arm", max_steps=12,
                               minutes=60, final_checkpoint=False, seed=42)
                    torch.save(s.state_dict(), art / f"{name}.pt")
                    save(key, kd.masked_lm_eval(s, eval_batches))

if __name__ == "__main__":
    main()
