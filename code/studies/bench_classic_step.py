"""Benchmark: where a classic student's training step spends its time (notebook 04), and what each lever buys,
measured in one run on one machine.

    python code/studies/bench_classic_step.py [repeats]

Every student of notebook 04 (cpu shapes: width 128, WordPiece vocabulary, reviews of 128 tokens), one optimiser
step on 64 reviews as the course ran it before (fp32, fused AdamW): the forward, the backward and the optimiser step
timed apart. Then the levers, each on the same reviews: bf16 autocast (native on some CPUs, emulated on others),
and 128 reviews a step (the same reviews seen in half the steps: the time per review is what counts). Prints
medians and ratios. Not a test: timings are read.

    python code/studies/bench_classic_step.py [repeats] --workers

The lever of the two cores: one student on 2 threads, against two students trained at once, one thread each
(two processes started together, each timing its own steps). Prints the throughput ratio, students per second.
"""
import contextlib
import os
import statistics
import subprocess
import sys
import time

import torch

import kd

PROFILE = kd.PROFILES["cpu"]
VOCAB = 30522  # bert-base-uncased's WordPiece vocabulary, the teacher's and the students'


def batch(rows: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, VOCAB, (rows, PROFILE.classic_max_len), generator=g)
    return ids, torch.ones_like(ids), torch.randint(0, 2, (rows,), generator=g)


def parts(kind: str, layers: int, rows: int, bf16: bool, repeats: int) -> dict[str, float]:
    """Median seconds of forward, backward and optimiser step of one student, and their sum."""
    student = kd.make_student(PROFILE, kind, layers, VOCAB).train()
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3, fused=True)
    ids, mask, labels = batch(rows)
    cast = torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext()
    times = {"forward": [], "backward": [], "optimiser": []}
    for i in range(repeats + 2):  # two warm-up steps
        t0 = time.perf_counter()
        with cast:
            loss = student(input_ids=ids, attention_mask=mask, labels=labels).loss
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        if i >= 2:
            for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
                times[k].append(v)
    out = {k: statistics.median(v) for k, v in times.items()}
    out["step"] = sum(out.values())
    return out


def main(repeats: int = 5) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {kd.cpu_bf16()}; reviews of "
          f"{PROFILE.classic_max_len} tokens, width {PROFILE.classic_dim}; median of {repeats} steps")
    print(f"{'student':14s} {'fwd':>6s} {'bwd':>6s} {'opt':>6s} {'step 64':>8s} | ms per review: {'fp32':>6s} "
          f"{'bf16':>6s} {'x128':>6s} | bf16/fp32 x128/x64")
    for kind in kd.labels.CLASSIC_KINDS:
        for layers in (1, 2):
            base = parts(kind, layers, 64, False, repeats)
            bf16 = parts(kind, layers, 64, True, repeats)
            big = parts(kind, layers, 128, False, repeats)
            per = {k: 1000 * v["step"] / n for k, v, n in (("fp32", base, 64), ("bf16", bf16, 64), ("x128", big, 128))}
            ms = [1000 * base[k] for k in ("forward", "backward", "optimiser", "step")]
            sid = f"{kind}-{layers}"
            print(f"{sid:14s} {ms[0]:6.0f} {ms[1]:6.0f} {ms[2]:6.0f} {ms[3]:8.0f} | {per['fp32']:20.2f} "
                  f"{per['bf16']:6.2f} {per['x128']:6.2f} | {per['bf16'] / per['fp32']:9.2f} "
                  f"{per['x128'] / per['fp32']:9.2f}")


def one(kind: str, layers: int, bf16: bool, repeats: int) -> None:
    """A child process of workers(): print the median step of one student at this process's threads."""
    print(parts(kind, layers, 64, bf16, repeats)["step"])


def workers(repeats: int) -> None:
    bf16 = kd.cpu_bf16()
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, {'bf16' if bf16 else 'fp32'}; step of 64 reviews, "
          f"median of {repeats}: one student on 2 threads, two students at once on 1 thread each")
    print(f"{'student':14s} {'2 threads':>10s} {'1 of 2 at once':>15s} | students/s: 2 at once / 1 on 2 threads")
    for kind in kd.labels.CLASSIC_KINDS:
        for layers in (1, 2):
            two = parts(kind, layers, 64, bf16, repeats)["step"]
            cmd = [sys.executable, __file__, str(repeats), "--one", kind, str(layers), str(int(bf16))]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
            each = statistics.mean(float(p.communicate()[0].split()[-1]) for p in procs)
            print(f"{f'{kind}-{layers}':14s} {1000 * two:8.0f}ms {1000 * each:13.0f}ms | {2 * two / each:6.2f}")


if __name__ == "__main__":
    if "--one" in sys.argv:
        i = sys.argv.index("--one")
        torch.set_num_threads(1)
        one(sys.argv[i + 1], int(sys.argv[i + 2]), bool(int(sys.argv[i + 3])), int(sys.argv[1]))
    elif "--workers" in sys.argv:
        workers(int(sys.argv[1]) if sys.argv[1].isdigit() else 5)
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
