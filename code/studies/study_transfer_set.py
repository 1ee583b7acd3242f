"""What Tang et al.'s rewrites buy: students distilled on the transfer set with and without them, the same steps.

Run after notebook 04, in the profile it ran in (its artifacts: the IMDb teacher, notebook 01's masked LM, the cached
teacher logits). Notebook 04 distilled every student on its profile's transfer set (`classic_transfer`); this trains
the students named on the command line again, distilled, on the other choice ("both" if the profile's is
"unlabelled", else "unlabelled"), with the same seeds, steps and settings as the record, and prints each seed's
accuracy beside the record's, and the difference by the course's one rule (kd.noise, paired by seed).

    KD_PROFILE=cpu python code/studies/study_transfer_set.py bilstm-1 attention-1 transformer-1

An accuracy study, not a test: it trains (11 minutes for the three one-layer students above on 2 CPU cores, with
the rewrites made and labelled).
"""
import statistics
import sys
import time

import torch
from transformers import AutoTokenizer

import kd

NOTEBOOK = "04_classic_kd_imdb"


def main(ids: list[str]) -> None:
    profile = kd.get_profile()
    record = kd.load_record(profile, NOTEBOOK)["metrics"]
    rows = {r["id"]: r for r in record["table"]}
    unknown = [i for i in ids if i not in rows]
    if unknown or not ids:
        raise SystemExit(f"Name students of notebook 04's record: {', '.join(rows)} (got {unknown or 'none'}).")
    choice = record["transfer_set"]["choice"]
    other = "both" if choice == "unlabelled" else "unlabelled"
    run = kd.Run(profile, "study")  # never saved: it only notes the splits
    tokenizer = AutoTokenizer.from_pretrained(kd.saved_path(profile, "teacher-imdb"))
    L = record["max_len"]

    train, transfer, test = kd.classic_reviews(run, tokenizer, L)  # notebook 04's reviews
    teacher = kd.load_imdb_teacher(profile)
    augment, rewrites = kd.AugmentConfig(**record["transfer_set"]["augment"]), record["transfer_set"]["rewrites"]
    mlm = kd.load_mlm_teacher(profile)[0] if other != "unlabelled" else None  # proposes the rewrites' words
    start = time.perf_counter()
    built = kd.transfer_set(profile, other, train, transfer, test, teacher, mlm, tokenizer, augment, rewrites, L,
                            labels_of=choice)  # notebook 04's labels; the rewrites labelled here if it had none
    distill_set = built["distill_set"]  # the same function as notebook 04's, on the other choice
    print(f"{other}: {len(distill_set)} rows ({built['record']}); labelled "
          f"{'earlier (cached)' if built['cached'] else f'in {time.perf_counter() - start:.0f} s'}", flush=True)
    embeddings = None
    if record["init_from_teacher"]:  # the same projection as notebook 04's
        embeddings = kd.projected_embeddings(teacher.base_model.embeddings.word_embeddings.weight.detach(),
                                             profile.classic_dim, seed=profile.seed)
    task_kd = kd.TaskKDConfig(**record["task_kd"])
    students = {i: (rows[i]["kind"], rows[i]["layers"]) for i in ids}
    runs = kd.train_students(students, {other: (distill_set, task_kd)}, record["seeds"], test, tokenizer, profile,
                             embeddings, kd.artifacts_dir(profile) / f"classic-study-{other}",
                             **record["trainer_overrides"])
    print(f"\ndistilled on {choice!r} (notebook 04's record) against {other!r}, seeds {record['seeds']}, "
          f"{record['trainer_overrides']['max_steps']} steps; accuracy x100")
    for i in ids:
        ours, theirs = rows[i]["distilled_runs"], [r["accuracy"] for r in runs[i, other]]
        se = [100 * kd.noise.share_se(statistics.mean(x), len(test)) for x in (theirs, ours)]  # one seed: these
        verdict = kd.noise.compare([100 * b for b in theirs], [100 * a for a in ours], *se, floor=100 / len(test))
        print(f"{i:14s} {choice} {100 * statistics.mean(ours):.1f} {[round(100 * a, 1) for a in ours]}  "
              f"{other} {100 * statistics.mean(theirs):.1f} {[round(100 * a, 1) for a in theirs]}  "
              f"difference {verdict}")


if __name__ == "__main__":
    torch.manual_seed(0)
    main(sys.argv[1:])
