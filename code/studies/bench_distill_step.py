"""Benchmark: one distillation step against its floor, on the same batch, in one process.

    python code/studies/bench_distill_step.py [cpu|smoke|t4] [repeats]

floor = one student training step on the masked-LM loss alone (forward, backward, optimiser step)
      + one teacher forward pass.
The distillation step adds only the soft-target KL and the cosine term on top of that floor; the script
prints both medians and their ratio (target <= 1.10). Models are randomly initialised with the profile's
teacher shape (nothing is downloaded); the batch is the profile's `distill_batch` x `block_size`.
On a GPU it also prints peak memory and tokens/s of the distillation step (fp16 where the profile says so).
Not a test: timings belong in benchmarks, and this one is meant to be read.
"""
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertForMaskedLM, Trainer

import kd  # noqa: E402

SHAPES = {  # the teacher of each profile, as a config (weights random)
    "t4": BertConfig(),  # bert-base-uncased: 12 layers, 768 wide
    "cpu": BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                      intermediate_size=1536),  # MiniLM-L6
    "smoke": BertConfig(vocab_size=1500, **kd.TINY_BERT),
}


def main(profile_name: str = "cpu", repeats: int = 7) -> None:
    profile = kd.get_profile(profile_name)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    config = SHAPES[profile.name]
    teacher = BertForMaskedLM(config).to(device).eval().requires_grad_(False)
    layers = kd.student_layer_ids(config.num_hidden_layers, profile.student_layers)
    student_kd, student_floor = (kd.build_student(teacher, layers).to(device) for _ in range(2))
    ids = torch.randint(1000, config.vocab_size, (profile.distill_batch, profile.block_size), device=device)
    labels = torch.where(torch.rand(ids.shape, device=device) < 0.15, ids, torch.full_like(ids, -100))
    batch = {"input_ids": ids.masked_fill(labels != -100, 103), "attention_mask": torch.ones_like(ids),
             "labels": labels}

    out = tempfile.mkdtemp()
    args = kd.training_args(profile, Path(out), max_steps=1000, learning_rate=profile.distill_lr,
                            per_device_train_batch_size=profile.distill_batch)
    distiller = kd.DistillationTrainer(model=student_kd, args=args, teacher=teacher, distill_config=kd.DistillConfig())
    floor = Trainer(model=student_floor, args=args)  # the student's own masked-LM loss, nothing else
    for t in (distiller, floor):
        t.create_optimizer_and_scheduler(num_training_steps=1000)
        t.current_gradient_accumulation_steps = 1  # set by Trainer.train(), which we bypass
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if profile.fp16 and device == "cuda" \
        else contextlib.nullcontext
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def distill_step():
        with autocast():
            distiller.training_step(student_kd, dict(batch))
        distiller.optimizer.step()
        distiller.optimizer.zero_grad()

    def floor_step():
        with torch.no_grad(), autocast():
            teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        with autocast():
            floor.training_step(student_floor, dict(batch))
        floor.optimizer.step()
        floor.optimizer.zero_grad()

    times = {"distill": [], "floor": []}
    cpu_times = {"distill": [], "floor": []}  # CPU seconds of this process: what a busy neighbour steals does not count
    for i in range(repeats + 2):  # two warm-up rounds; the two steps take turns so drift hits both alike
        for name, step in (("distill", distill_step), ("floor", floor_step)):
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            sync()
            if i >= 2:
                times[name].append(time.perf_counter() - t0)
                cpu_times[name].append(time.process_time() - c0)
    d, f = statistics.median(times["distill"]), statistics.median(times["floor"])
    tokens = profile.distill_batch * profile.block_size
    print(f"profile {profile.name} on {device} ({torch.get_num_threads()} threads), batch {profile.distill_batch} x "
          f"{profile.block_size} tokens, teacher {config.num_hidden_layers}x{config.hidden_size}, "
          f"student layers {layers}")
    print(f"distillation step {d * 1000:.0f} ms | floor (student MLM step + teacher forward) {f * 1000:.0f} ms | "
          f"ratio {d / f:.3f} (target <= 1.10), median of {repeats}; "
          f"ratio of CPU time {statistics.median(cpu_times['distill']) / statistics.median(cpu_times['floor']):.3f} "
          f"(less sensitive to a busy machine)")
    if device == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, "
              f"{tokens / d:,.0f} tokens/s per distillation step")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["cpu"]), *(int(a) for a in sys.argv[2:3]))
