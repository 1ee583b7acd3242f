"""Distillation: the three loss terms against hand computation, and the Trainer that combines them."""
import dataclasses
import math
from types import SimpleNamespace

import kd
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

SMOKE = kd.get_profile("smoke")



def test_soft_target_loss_by_hand():
    s = torch.tensor([[[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]]])  # (batch 1, seq 2, vocab 3)
    t = torch.tensor([[[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]])
    mask = torch.tensor([[True, True]])
    T = 2.0
    expected = 0.0
    for i in range(2):
        p_t = [math.exp(x / T) for x in t[0, i].tolist()]
        p_s = [math.exp(x / T) for x in s[0, i].tolist()]
        p_t, p_s = [x / sum(p_t) for x in p_t], [x / sum(p_s) for x in p_s]
        expected += sum(a * math.log(a / b) for a, b in zip(p_t, p_s))
    expected = expected / 2 * T ** 2  # mean over the 2 tokens, times T²
    assert kd.soft_target_loss(s, t, mask, T).item() == pytest.approx(expected, rel=1e-5)


def test_soft_target_loss_temperature_and_padding():
    torch.manual_seed(0)
    s, t = torch.randn(2, 5, 11), torch.randn(2, 5, 11)
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False
    assert kd.soft_target_loss(t, t, mask, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    at_4 = kd.soft_target_loss(s, t, mask, 4.0).item()
    assert kd.soft_target_loss(s, t, mask, 1.0).item() != pytest.approx(at_4, rel=1e-3)
    s2 = s.clone()
    s2[1, 3:] = 100 * torch.randn(2, 11)  # padding positions may hold anything
    at_2 = kd.soft_target_loss(s, t, mask, 2.0).item()
    assert kd.soft_target_loss(s2, t, mask, 2.0).item() == pytest.approx(at_2, rel=1e-6)


@pytest.mark.parametrize("padded", [False, True])
def test_soft_target_loss_matches_plain_autograd(monkeypatch, padded):
    """The one-pass KL gives the value and the gradient of the textbook formula, across chunk boundaries."""
    # 10 tokens: chunks of 3, 3, 3 and 1 rows
    monkeypatch.setattr(kd.losses._SoftTargetKL, "chunk_bytes", {"cpu": 3 * 4 * 13})
    torch.manual_seed(0)
    s, t = 3 * torch.randn(2, 5, 13), 3 * torch.randn(2, 5, 13)
    mask = torch.ones(2, 5, dtype=torch.bool)
    if padded:
        mask[1, 2:] = False
    s1, s2 = s.clone().requires_grad_(), s.clone().requires_grad_()
    T = 2.0
    fast = kd.soft_target_loss(s1, t, mask, T)
    plain = F.kl_div(F.log_softmax(s2[mask] / T, -1), F.log_softmax(t[mask] / T, -1), log_target=True,
                     reduction="batchmean") * T ** 2
    (3 * fast).backward()
    (3 * plain).backward()
    assert fast.item() == pytest.approx(plain.item(), rel=1e-5)
    assert torch.allclose(s1.grad, s2.grad, atol=1e-6)
    assert s1.grad.abs().sum() > 0 and (not padded or s1.grad[1, 2:].abs().sum() == 0)  # padding gets no gradient


def test_soft_target_loss_half_precision_logits():
    """fp16 training (t4) hands the loss half-precision logits: it computes in fp32, returns a gradient of their
    dtype."""
    torch.manual_seed(0)
    s, t = 3 * torch.randn(2, 4, 50), 3 * torch.randn(2, 4, 50)
    mask = torch.ones(2, 4, dtype=torch.bool)
    s_half = s.half().requires_grad_()
    s_full = s.half().float().requires_grad_()
    half = kd.soft_target_loss(s_half, t.half(), mask, 2.0)
    full = kd.soft_target_loss(s_full, t.half().float(), mask, 2.0)
    (1024 * half).backward()  # a loss scale, as fp16 training uses
    (1024 * full).backward()
    assert half.dtype == torch.float32 and half.item() == pytest.approx(full.item(), rel=1e-5)
    assert s_half.grad.dtype == torch.float16 and torch.allclose(s_half.grad.float(), s_full.grad, rtol=1e-3, atol=1e-4)


def test_masked_lm_loss_by_hand():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]]])
    labels = torch.tensor([[0, -100, 1]])
    by_hand = (-math.log(math.exp(2) / (math.exp(2) + 2)) - math.log(1 / (math.exp(3) + 2))) / 2
    assert kd.masked_lm_loss(logits, labels).item() == pytest.approx(by_hand, rel=1e-5)


def test_cosine_loss_by_hand_and_padding():
    h_t = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    mask = torch.tensor([[True, True, False]])
    assert kd.cosine_loss(h_t, h_t, mask).item() == pytest.approx(0.0, abs=1e-6)  # identical states: no loss
    h_s = torch.tensor([[[-1.0, 0.0], [1.0, 0.0], [5.0, -3.0]]])  # opposite (2), orthogonal (1), padding (ignored)
    assert kd.cosine_loss(h_s, h_t, mask).item() == pytest.approx(1.5, rel=1e-6)


@pytest.mark.parametrize("masked_only", [False, True])
def test_masked_only_ignores_unmasked_positions(masked_only):
    """masked_only: soft targets and cosine on the masked tokens only, so the student's outputs elsewhere do not
    matter; without it every non-padding token counts (and padding never does)."""
    torch.manual_seed(0)
    out_s = SimpleNamespace(logits=torch.randn(1, 5, 7), hidden_states=[torch.randn(1, 5, 3)])
    out_t = SimpleNamespace(logits=torch.randn(1, 5, 7), hidden_states=[torch.randn(1, 5, 3)])
    labels, attn = torch.tensor([[-100, 2, -100, 5, -100]]), torch.tensor([[1, 1, 1, 1, 0]])  # the last: padding
    cfg = kd.DistillConfig(masked_only=masked_only)
    terms = kd.distillation_terms(out_s, out_t, labels, attn, cfg)

    def changed_at(position):
        other = SimpleNamespace(logits=out_s.logits.clone(), hidden_states=[out_s.hidden_states[0].clone()])
        other.logits[0, position] = 5 * torch.randn(7)
        other.hidden_states[0][0, position] = 5 * torch.randn(3)
        new = kd.distillation_terms(other, out_t, labels, attn, cfg)
        return {k: new[k].item() != pytest.approx(terms[k].item(), rel=1e-6) for k in ("ce", "cos")}

    assert changed_at(1) == {"ce": True, "cos": True}  # a masked token always counts
    assert changed_at(2) == {"ce": not masked_only, "cos": not masked_only}  # an unmasked one: only without masked_only
    assert changed_at(4) == {"ce": False, "cos": False}  # padding never
    assert terms["mlm"].item() == pytest.approx(kd.masked_lm_loss(out_s.logits, labels).item())


def test_weighted_loss_uses_the_config_weights():
    terms = {"ce": torch.tensor(1.0), "mlm": torch.tensor(10.0), "cos": torch.tensor(100.0)}
    assert kd.weighted_loss(terms, kd.DistillConfig(alpha_ce=3, alpha_mlm=2, alpha_cos=0.5)).item() == 3 + 20 + 50


@pytest.fixture(scope="module")
def setup():
    tokenizer = AutoTokenizer.from_pretrained(kd.SMOKE_DATA / "tiny_tokenizer")
    torch.manual_seed(0)
    teacher = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), **kd.TINY_BERT)).eval()
    blocks = kd.mlm_blocks(kd.load_split(SMOKE, "wikitext2", "test"), tokenizer, 32)
    return teacher, tokenizer, blocks


def weighted_loss_on(student, teacher, batch, cfg):
    batch = dict(batch)
    labels = batch.pop("labels")
    with torch.no_grad():
        return kd.weighted_loss(kd.distillation_terms(student.eval()(**batch, output_hidden_states=True),
                                                      teacher(**batch, output_hidden_states=True), labels,
                                                      batch["attention_mask"], cfg), cfg).item()


def test_short_training_lowers_the_loss_and_logs_every_term(setup, tmp_path):
    teacher, tokenizer, blocks = setup
    profile = dataclasses.replace(SMOKE, distill_lr=1e-2, warmup_steps=1)  # a rate a tiny model learns fast at
    student, cfg, blocks = kd.build_student(teacher, [0, 3]), kd.DistillConfig(), blocks.select(range(16))
    batch = kd.fixed_masked_batches(blocks, tokenizer, 16, seed=0)[0]
    before = weighted_loss_on(student, teacher, batch, cfg)
    trainer = kd.distill(student, teacher, tokenizer, blocks, profile, cfg, tmp_path, max_steps=20, minutes=10)
    assert weighted_loss_on(student, teacher, batch, cfg) < 0.9 * before
    rows = [r for r in trainer.state.log_history if "loss" in r]
    assert len(rows) == 20  # logging_steps = 1
    for r in rows:  # the logged total is the weighted sum of the logged (unweighted) terms, every term logged
        weighted = sum(getattr(cfg, f"alpha_{t}") * r[f"loss_{t}"] for t in kd.config.LOSS_TERMS)
        assert r["loss"] == pytest.approx(weighted, rel=1e-3)
    assert kd.loss_history(trainer.state.log_history)["step"] == list(range(1, 21))


def test_time_budget_stops_and_rerun_resumes(setup, tmp_path):
    teacher, tokenizer, blocks = setup
    student = kd.build_student(teacher, [0, 3])
    first = kd.distill(student, teacher, tokenizer, blocks, SMOKE, kd.DistillConfig(), tmp_path, max_steps=5, minutes=0)
    assert first.stopped_early and first.state.global_step == 1 and (tmp_path / "checkpoint-1").is_dir()
    assert first.session_steps == 1
    fresh = kd.build_student(teacher, [0, 3])  # a new session: weights come back from the checkpoint
    second = kd.distill(fresh, teacher, tokenizer, blocks, SMOKE, kd.DistillConfig(), tmp_path, max_steps=5, minutes=10)
    assert not second.stopped_early and second.state.global_step == 5 and second.session_steps == 4
    assert [r["step"] for r in second.state.log_history if "loss" in r] == [1, 2, 3, 4, 5]  # step 1 not redone
    assert (tmp_path / "checkpoint-5").is_dir()
    again = kd.build_student(teacher, [0, 3])
    third = kd.distill(again, teacher, tokenizer, blocks, SMOKE, kd.DistillConfig(), tmp_path, max_steps=5, minutes=10)
    assert third.state.global_step == 5 and third.session_steps == 0  # restored, not retrained
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), fresh.state_dict().values()))


def test_a_checkpoint_of_other_settings_is_an_error_not_restored(setup, tmp_path):
    """Changing the loss (or rate, batch, seed) and running again must not hand back the old run's student."""
    teacher, tokenizer, blocks = setup
    kd.distill(kd.build_student(teacher, [0, 3]), teacher, tokenizer, blocks, SMOKE, kd.DistillConfig(), tmp_path,
               max_steps=1, minutes=10)
    with pytest.raises(ValueError, match=r"other settings \(config: .*temperature.*Its results are kept"):
        kd.distill(kd.build_student(teacher, [0, 3]), teacher, tokenizer, blocks, SMOKE,
                   kd.DistillConfig(temperature=4.0), tmp_path, max_steps=2, minutes=10)
    assert (tmp_path / "checkpoint-1").is_dir()
    more = kd.distill(kd.build_student(teacher, [0, 3]), teacher, tokenizer, blocks, SMOKE, kd.DistillConfig(),
                      tmp_path, max_steps=2, minutes=10)  # the same run, longer: resumed
    assert more.session_steps == 1


def test_out_of_memory_names_the_fix_and_keeps_checkpoints(tmp_path):
    (tmp_path / "checkpoint-7").mkdir()
    args = kd.training_args(SMOKE, tmp_path, per_device_train_batch_size=16)
    with pytest.raises(RuntimeError, match=r"batch 16.*distill_batch=8.*Checkpoints in .* are kept"):
        with kd.explain_oom(args, "dataclasses.replace(profile, distill_batch=8, distill_accum=2)", tmp_path):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
    assert (tmp_path / "checkpoint-7").is_dir()
    with pytest.raises(ValueError):  # anything else passes through unchanged
        with kd.explain_oom(args, "", tmp_path):
            raise ValueError("not memory")


def test_distill_gives_the_teacher_back_as_it_came(setup, tmp_path, monkeypatch, cpu_precision):
    """Were the trainer to halve the teacher (fp16 on a GPU, bf16 on a CPU), afterwards it must be fp32 again
    (notebook 02 scores it, and a rerun of the cell must not mix dtypes), with no autocast left on either model.
    Simulated on the CPU on both paths: the trainer halves it to the dtype its autocast computes in."""
    teacher, tokenizer, blocks = setup
    init = kd.DistillationTrainer.__init__

    def halving_init(self, *args, teacher, **kwargs):
        init(self, *args, teacher=teacher, **kwargs)
        self.teacher.to(torch.bfloat16 if self.args.bf16 else torch.float16)

    monkeypatch.setattr(kd.DistillationTrainer, "__init__", halving_init)
    student = kd.build_student(teacher, [0, 3])
    kd.distill(student, teacher, tokenizer, blocks.select(range(8)), SMOKE, kd.DistillConfig(), tmp_path,
               max_steps=1, minutes=10)
    assert {p.dtype for p in teacher.parameters()} == {torch.float32}
    assert {p.device.type for p in teacher.parameters()} == {"cpu"}
    assert "forward" not in vars(teacher) and "forward" not in vars(student)  # the classes' forward, no autocast


def test_every_pair_of_runs_trains_different_weights(setup, tmp_path, monkeypatch):
    """Notebook 02's arms and ablation rows (kd.ARMS, kd.ABLATION_ROWS) differ only in their weights: from the same
    copy, seed and blocks, each must train weights of its own (in fp32: bf16 rounding can hide a small term's update,
    which is why "- L_cos" once scored exactly as the triple loss). Fails if a row's weights are ignored."""
    monkeypatch.setenv("KD_CPU_BF16", "0")
    teacher, tokenizer, blocks = setup
    profile = dataclasses.replace(SMOKE, distill_lr=1e-2, warmup_steps=1)
    rows = {name: kd.arm_config(kd.DistillConfig(), name) for name in {**kd.ARMS, **kd.ABLATION_ROWS}}
    rows.pop("random_init")  # the triple loss on other weights: differs by construction
    assert len(set(rows.values())) == len(rows), "two rows share a config"
    trained = {}
    for name, cfg in rows.items():
        student = kd.build_student(teacher, [0, 3])
        kd.distill(student, teacher, tokenizer, blocks.select(range(8)), profile, cfg, tmp_path / name, max_steps=2,
                   minutes=10, final_checkpoint=False, seed=0)
        trained[name] = torch.cat([p.detach().flatten() for p in student.parameters()])
    names = sorted(trained)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not torch.equal(trained[a], trained[b]), f"{a} and {b} trained the same weights"


def test_a_learning_curve_scores_step_0_every_few_steps_and_the_end_and_survives_a_resume(setup, tmp_path):
    teacher, tokenizer, blocks = setup
    batches = kd.fixed_masked_batches(blocks.select(range(4)), tokenizer, 4, seed=0)
    curve = kd.HeldOutCurve(batches, every=2, path=tmp_path / "curve.json")
    student = kd.build_student(teacher, [0, 3])
    kd.distill(student, teacher, tokenizer, blocks.select(range(8)), SMOKE, kd.DistillConfig(), tmp_path, max_steps=5,
               minutes=10, callbacks=(curve,))
    assert [p["step"] for p in curve.points] == [0, 2, 4, 5]
    assert curve.points[-1]["masked_acc"] == pytest.approx(kd.masked_lm_eval(student, batches)["masked_acc"])
    again = kd.HeldOutCurve(batches, every=2, path=tmp_path / "curve.json")  # a rerun: restored, not rescored
    kd.distill(kd.build_student(teacher, [0, 3]), teacher, tokenizer, blocks.select(range(8)), SMOKE,
               kd.DistillConfig(), tmp_path, max_steps=5, minutes=10, callbacks=(again,))
    assert again.points == curve.points


def test_the_student_text_is_the_first_blocks_and_a_bad_count_names_the_fix():
    import datasets

    blocks = datasets.Dataset.from_dict({"input_ids": [[i] * 4 for i in range(10)]})
    run = kd.Run(dataclasses.replace(kd.get_profile("smoke"), student_blocks=3), "02_mlm_distillation")
    assert kd.student_text(run, blocks)["input_ids"] == [[0] * 4, [1] * 4, [2] * 4]
    assert run.data["wikitext2/validation"]["student_blocks"] == 3
    whole = kd.Run(dataclasses.replace(run.profile, student_blocks=None), "02_mlm_distillation")
    assert len(kd.student_text(whole, blocks)) == 10
    too_many = kd.Run(dataclasses.replace(run.profile, student_blocks=11), "02_mlm_distillation")
    with pytest.raises(ValueError, match=r"student_blocks=11.*10 training blocks: set student_blocks between 1 and 10"):
        kd.student_text(too_many, blocks)
