"""The two CPU precision paths (fp32, bf16 autocast), each run on every machine, and gradient accumulation that
averages over micro-batches on every transformers version in range (Colab's 5.15 divided nothing)."""
import dataclasses
import json

import datasets
import kd
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, default_data_collator

SMOKE = kd.get_profile("smoke")


def test_the_switch_picks_the_precision_and_names_the_fix_for_a_bad_value(monkeypatch):
    for native in (True, False):
        monkeypatch.setattr(kd.machine, "cpu_bf16", lambda: native)
        monkeypatch.delenv("KD_CPU_BF16", raising=False)
        assert kd.precision(SMOKE) == ("bf16" if native else "fp32")  # auto: the machine's
        assert kd.precision(dataclasses.replace(SMOKE, cpu_bf16=False)) == "fp32"  # a profile may refuse bf16
        for value, expected in (("auto", "bf16" if native else "fp32"), ("1", "bf16"), ("0", "fp32")):
            monkeypatch.setenv("KD_CPU_BF16", value)
            assert kd.precision(SMOKE) == expected
            args = kd.training_args(SMOKE, "/tmp/unused")
            assert (args.bf16, args.fp16) == (expected == "bf16", False)
    monkeypatch.setenv("KD_CPU_BF16", "yes")
    with pytest.raises(ValueError, match=r"KD_CPU_BF16='yes' is not one of auto, 1, 0.*unset it"):
        kd.precision(SMOKE)


def test_the_record_says_which_precision_ran(cpu_precision, tmp_path):
    run = kd.Run(SMOKE, "01_student_init", folder=tmp_path)
    assert json.loads(run.save({}).read_text())["versions"]["precision"] == cpu_precision


@pytest.fixture(scope="module")
def tiny():
    tokenizer = AutoTokenizer.from_pretrained(kd.SMOKE_DATA / "tiny_tokenizer")
    torch.manual_seed(0)
    teacher = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), **kd.TINY_BERT)).eval()
    blocks = kd.mlm_blocks(kd.load_split(SMOKE, "wikitext2", "test"), tokenizer, 32).select(range(8))
    return teacher, tokenizer, blocks


def test_a_trainer_leaves_no_autocast_behind_and_the_copy_stays_exact(cpu_precision, tiny, tmp_path):
    """Notebook 01's proof on both paths: after a head fit in bf16 the teacher computes in fp32 again, so the
    all-layer student matches it to fp32 rounding (a forward left in bf16 autocast missed by ~1e-2)."""
    teacher, tokenizer, blocks = tiny
    teacher = BertForMaskedLM(teacher.config).eval()  # a copy: the module's teacher stays untrained
    teacher.load_state_dict(tiny[0].state_dict())
    kd.fit_mlm_head(teacher, tokenizer, blocks, dataclasses.replace(SMOKE, head_fit_steps=1), tmp_path)
    assert "forward" not in vars(teacher)  # the class's forward: no autocast wrapper of the Trainer's
    full_copy = kd.build_student(teacher, list(range(teacher.config.num_hidden_layers)))
    batch = kd.fixed_masked_batches(blocks, tokenizer, 8, seed=0)[0]
    with torch.inference_mode():
        diff = (teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                - full_copy(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits)
    assert diff.abs().max().item() <= 1e-4


def micro_batched_run(tiny, tmp_path, batch: int, accum: int, cfg: kd.DistillConfig):
    """One optimiser step of DistillationTrainer over the same 8 pre-masked blocks (fixed masks, dropout off), plain
    SGD at a constant rate, so the weights move by exactly -lr x the gradient: (student, the step's log row)."""
    teacher, tokenizer, blocks = tiny
    masked = kd.fixed_masked_batches(blocks, tokenizer, 8, seed=0)[0]
    rows = datasets.Dataset.from_dict({k: masked[k].tolist() for k in ("input_ids", "attention_mask", "labels")})
    student = kd.build_student(teacher, [0, 3])
    for m in student.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    args = kd.training_args(SMOKE, tmp_path, max_steps=1, per_device_train_batch_size=batch,
                            gradient_accumulation_steps=accum, learning_rate=1e-2, optim="sgd", weight_decay=0.0,
                            lr_scheduler_type="constant", max_grad_norm=1e9, logging_steps=1)
    with kd.kept_in_place(student, teacher):
        trainer = kd.DistillationTrainer(model=student, args=args, train_dataset=rows, teacher=teacher,
                                         distill_config=cfg, data_collator=default_data_collator)
        trainer.train()
    return student, next(r for r in trainer.state.log_history if "loss" in r)


def test_an_accumulated_step_is_the_mean_over_its_micro_batches(cpu_precision, tiny, tmp_path):
    """At accumulation 4 the logged loss is the weighted sum of the logged terms, and the step moves the weights
    as one batch of the same 8 blocks does. The masked-LM term is left out of the weight check: its mean over a
    micro-batch's masked tokens, averaged over 4 micro-batches, is not the mean over all 8 blocks' (their counts
    differ); the soft-target and cosine terms average over all 32 tokens of every block, the same either way."""
    cfg = kd.DistillConfig()
    _, row = micro_batched_run(tiny, tmp_path / "terms", batch=2, accum=4, cfg=cfg)
    weighted = cfg.alpha_ce * row["loss_ce"] + cfg.alpha_mlm * row["loss_mlm"] + cfg.alpha_cos * row["loss_cos"]
    assert row["loss"] == pytest.approx(weighted, rel=1e-3)  # 4x on transformers 5.15 without the fix

    no_mlm = dataclasses.replace(cfg, alpha_mlm=0.0)
    one, row_one = micro_batched_run(tiny, tmp_path / "one", batch=8, accum=1, cfg=no_mlm)
    four, row_four = micro_batched_run(tiny, tmp_path / "four", batch=2, accum=4, cfg=no_mlm)
    tol = {"fp32": 1e-4, "bf16": 2e-2}[cpu_precision]  # bf16 keeps 8 bits of mantissa: about 3 digits
    assert row_four["loss"] == pytest.approx(row_one["loss"], rel=tol)
    assert row_four["grad_norm"] == pytest.approx(row_one["grad_norm"], rel=tol)
    start = kd.build_student(tiny[0], [0, 3]).state_dict()
    moved = [(one.state_dict()[k] - start[k], four.state_dict()[k] - start[k]) for k in start]
    worst = max((a - b).norm().item() / max(a.norm().item(), 1e-12) for a, b in moved if a.norm() > 0)
    assert worst <= tol * 10, worst  # per tensor: |delta_4 - delta_1| / |delta_1|


def test_the_masked_lm_head_fit_computes_in_the_precision_the_record_names(cpu_precision, tiny, tmp_path,
                                                                            monkeypatch):
    """The head fit calls the model's parts (kd.masked_lm_logits), not its forward, where the Trainer's autocast
    lives: without its own autocast it computed in fp32 whatever the record said."""
    teacher, tokenizer, blocks = tiny
    seen = []
    real = kd.training.masked_lm_logits

    def spy(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return real(*args, **kwargs)

    monkeypatch.setattr(kd.training, "masked_lm_logits", spy)
    model = BertForMaskedLM(teacher.config).eval()
    model.load_state_dict(teacher.state_dict())
    kd.fit_mlm_head(model, tokenizer, blocks, dataclasses.replace(SMOKE, head_fit_steps=1), tmp_path)
    assert seen and set(seen) == {cpu_precision == "bf16"}
