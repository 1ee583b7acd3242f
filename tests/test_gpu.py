"""The t4 settings on a real GPU: notebook 02's fp16 distillation step and notebook 03's 512-token fine-tuning step
(peak memory within a T4's 15 GiB, throughput printed), and the helpers that move models to the GPU putting them
back. Skipped without CUDA. On a GPU: python -m pytest tests/test_gpu.py -s -rs"""
import time

import datasets
import kd
import pytest
import torch
from transformers import AutoModelForSequenceClassification

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (these measure the t4 settings); run them on a T4 or larger")
T4 = kd.PROFILES["t4"]
T4_MEMORY = 14 * 2**30  # a T4 has 15 GiB; leave one for the CUDA context and fragmentation


def random_ids(rows: int, length: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    body = torch.randint(1000, 30000, (rows, length - 2), generator=g)
    return [[101, *r.tolist(), 102] for r in body]  # [CLS] ... [SEP] in bert-base-uncased's vocabulary


@pytest.fixture(scope="module")
def teacher():
    source = kd.model_source("random-bert-base", T4)  # bert-base-uncased's shapes, random weights: no download
    model, tokenizer, head_missing = kd.load_masked_lm(source)
    assert not head_missing
    return model, tokenizer, source


def measure(run) -> tuple[float, float]:
    """(seconds, peak GiB allocated) of run()."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    run()
    torch.cuda.synchronize()
    return time.perf_counter() - t0, torch.cuda.max_memory_allocated() / 2**30


def test_distillation_step_at_t4_settings(teacher, tmp_path):
    model, tokenizer, _ = teacher
    student = kd.build_student(model, kd.student_layer_ids(12, T4.student_layers))
    blocks = datasets.Dataset.from_dict({"input_ids": random_ids(T4.distill_batch * T4.distill_accum * 4,
                                                                 T4.block_size)})
    steps, weights = 3, {k: v.clone() for k, v in model.state_dict().items()}
    seconds, peak = measure(lambda: kd.distill(student, model, tokenizer, blocks, T4, kd.DistillConfig(), tmp_path,
                                               max_steps=steps, minutes=30, final_checkpoint=False))
    tokens = steps * T4.distill_batch * T4.distill_accum * T4.block_size
    print(f"\nnotebook 02 at t4 settings ({torch.cuda.get_device_name(0)}): peak {peak:.2f} GiB allocated, "
          f"{tokens / seconds:,.0f} tokens/s over {steps} steps (first included), {seconds / steps:.2f} s/step")
    low = kd.budget.Cost("low")  # the FLOPs kd.budget counts for one step, and the rates it assumes on a T4
    step_flops = kd.budget.distill_step_seconds(T4, kd.budget.encoders(T4), "low") * low.flops_per_s("train")
    assumed = [kd.budget.Cost(end).flops_per_s("train") / 1e12 for end in kd.budget.ENDS]
    print(f"achieved {steps * step_flops / seconds / 1e12:.1f} TFLOP/s of training; kd.budget assumes "
          f"{assumed[0]:.1f}-{assumed[1]:.1f} TFLOP/s on a T4 (a larger GPU's share of its peak is not a T4's)")
    assert peak * 2**30 <= T4_MEMORY
    assert next(model.parameters()).dtype == torch.float32 and next(model.parameters()).device.type == "cpu"
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())  # fp16 ran, nothing rounded


def test_finetuning_step_at_512_tokens(teacher, tmp_path):
    _, tokenizer, source = teacher
    task = kd.TASKS["imdb"]
    rows = datasets.Dataset.from_dict({"input_ids": random_ids(task.batch * 4, task.max_len),
                                      "labels": [0, 1] * (task.batch * 2)})
    classifier = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)
    steps = 4
    scored = rows.select(range(task.batch))
    seconds, peak = measure(lambda: kd.finetune(classifier, tokenizer, task, rows, scored, T4, 0, tmp_path,
                                                max_steps=steps))
    print(f"\nnotebook 03, IMDb at {task.max_len} tokens, batch {task.batch}, fp16: peak {peak:.2f} GiB allocated, "
          f"{steps * task.batch / seconds:.1f} reviews/s over {steps} steps and {len(scored)} scored")
    assert peak * 2**30 <= T4_MEMORY
    assert next(classifier.parameters()).device.type == "cpu"


def test_helpers_leave_models_on_the_cpu_and_trainable(teacher):
    model, tokenizer, _ = teacher
    student = kd.build_student(model, [0, 11]).train()
    batches = kd.data.fixed_masked_batches(datasets.Dataset.from_dict({"input_ids": random_ids(4, 64)}),
                                           tokenizer, 4, seed=0)
    kd.masked_lm_eval(student, batches)  # runs on the GPU
    assert next(student.parameters()).device.type == "cpu" and student.training
    assert not any(p.is_inference() for p in student.parameters())
    student(**kd.mlm_collator(tokenizer)([{"input_ids": random_ids(1, 32)[0]}])).loss.backward()
