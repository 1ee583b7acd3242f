"""Benchmark: the cpu profile's speed levers, before and after, measured in one run on one machine.

    python code/studies/bench_cpu_speed.py [repeats]

Three steps of the course, each timed as it ran before and as it runs now, on the same data, taking turns:
- a fine-tuning step (notebook 03): the teacher (MiniLM-L6 shapes, random weights) on 32 CoLA-length sentences;
  before: padded to the task's 128 tokens, AdamW's per-tensor loop, fp32;
  after: padded to the longest sentence of a length-grouped batch, fused AdamW, bf16 autocast if the CPU has it;
- a masked-LM step (notebook 01's teacher adaptation): before: the vocabulary projection at every position, AdamW's
  loop; after: at the masked positions only (kd.masked_lm_logits), fused AdamW;
- a distillation step (notebook 02): 3-layer student, 6-layer teacher, 16 blocks of 128 tokens (no padding);
  before: AdamW's loop, fp32; after: fused AdamW, bf16 autocast if the CPU has it.
Each lever is also timed alone. Prints medians and the ratios before / after. Not a test: timings are read.
"""
import contextlib
import statistics
import sys
import time

import torch
from transformers import BertForMaskedLM, BertForSequenceClassification

import kd  # noqa: E402
from bench_distill_step import SHAPES  # noqa: E402  (its neighbour in code/studies/: the profiles' teacher shapes)

MINILM = SHAPES["cpu"]  # all-MiniLM-L6-v2's shapes, random weights: nothing is downloaded
COLA_LENGTHS = (6, 24)  # tokens per sentence with [CLS] and [SEP]: CoLA's bulk (mean ~11 words)


def optimizer(model, fused):
    return torch.optim.AdamW(model.parameters(), lr=1e-5, fused=fused, foreach=None if fused else False)


def autocast(bf16):
    return torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext()


def finetune_setup(padding: str, fused: bool, bf16: bool):
    """padding: "max_length" (every batch to 128), "dynamic" (a random batch, to its longest) or "grouped" (a batch
    of neighbours in length order, as group_by_length draws them, to its longest)."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(MINILM).train()
    opt = optimizer(model, fused)
    g = torch.Generator().manual_seed(1)
    pool = torch.randint(*COLA_LENGTHS, (1024,), generator=g).sort().values
    lengths = pool[496:528] if padding == "grouped" else pool[torch.randperm(1024, generator=g)[:32]]
    width = 128 if padding == "max_length" else int(lengths.max())
    ids = torch.randint(1000, MINILM.vocab_size, (32, width), generator=g)
    mask = (torch.arange(width) < lengths[:, None]).long()
    labels = torch.randint(0, 2, (32,), generator=g)

    def step():
        with autocast(bf16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def distill_setup(fused: bool, bf16: bool):
    torch.manual_seed(0)
    teacher = BertForMaskedLM(MINILM).eval().requires_grad_(False)
    student = kd.build_student(teacher, kd.student_layer_ids(6, 3)).train()
    opt = optimizer(student, fused)
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(1000, MINILM.vocab_size, (16, 128), generator=g)
    labels = torch.where(torch.rand(ids.shape, generator=g) < 0.15, ids, torch.full_like(ids, -100))
    batch = {"input_ids": ids.masked_fill(labels != -100, 103), "attention_mask": torch.ones_like(ids)}
    cfg = kd.DistillConfig()

    def step():
        with autocast(bf16):
            out_s = student(**batch, output_hidden_states=True)
            with torch.no_grad():
                out_t = teacher(**batch, output_hidden_states=True)
            loss = kd.weighted_loss(kd.distillation_terms(out_s, out_t, labels, batch["attention_mask"], cfg), cfg)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def mlm_setup(masked_only: bool, fused: bool):
    """Notebook 01's teacher adaptation: one masked-LM training step of every weight, 16 blocks of 128 tokens; the
    vocabulary projection at every position (the model's own loss) or at the masked ones (kd.masked_lm_logits)."""
    torch.manual_seed(0)
    model = BertForMaskedLM(MINILM).train()
    opt = optimizer(model, fused)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1000, MINILM.vocab_size, (16, 128), generator=g)
    labels = torch.where(torch.rand(ids.shape, generator=g) < 0.15, ids, torch.full_like(ids, -100))
    mask = torch.ones_like(ids)

    def step():
        if masked_only:
            picked = labels != -100
            loss = torch.nn.functional.cross_entropy(kd.masked_lm_logits(model, ids, mask, picked), labels[picked])
        else:
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def timed(steps: dict, repeats: int) -> dict:
    """Median seconds per step of each variant; the variants take turns, so a busy moment slows all alike."""
    for step in steps.values():
        step()  # warm-up
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def report(title: str, medians: dict) -> None:
    before = medians["before"]
    print(f"\n{title}")
    for name, t in medians.items():
        print(f"  {name:28s} {1000 * t:8.1f} ms   before / this = {before / t:5.2f}x")


def main(repeats: int = 5) -> None:
    bf16 = kd.machine.cpu_bf16()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {bf16} "
          f"({'after uses bf16 autocast' if bf16 else 'after stays fp32: emulated bf16 is slower'})")
    report("fine-tuning step (notebook 03: MiniLM teacher, 32 CoLA-length sentences)", timed({
        "before": finetune_setup("max_length", fused=False, bf16=False),
        "+ dynamic padding": finetune_setup("dynamic", fused=False, bf16=False),
        "+ length-grouped batches": finetune_setup("grouped", fused=False, bf16=False),
        "+ fused AdamW": finetune_setup("grouped", fused=True, bf16=False),
        **({"+ bf16 autocast (after)": finetune_setup("grouped", fused=True, bf16=True)} if bf16 else {}),
    }, repeats))
    report("masked-LM step (notebook 01: adapting the teacher, 16 x 128 tokens)", timed({
        "before": mlm_setup(masked_only=False, fused=False),
        "+ masked positions only": mlm_setup(masked_only=True, fused=False),
        "+ fused AdamW (after)": mlm_setup(masked_only=True, fused=True),
    }, repeats))
    report("distillation step (notebook 02: 16 x 128 tokens, 3-layer student, 6-layer teacher)", timed({
        "before": distill_setup(fused=False, bf16=False),
        "+ fused AdamW": distill_setup(fused=True, bf16=False),
        **({"+ bf16 autocast (after)": distill_setup(fused=True, bf16=True)} if bf16 else {}),
    }, repeats))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
