"""A free Colab T4: the budget of time and Drive, resume after a disconnect at any moment, models left where they were
found, notebook 05 on a CPU runtime. The set-up cell and kd.runtime: tests/test_colab_runtime.py."""
import dataclasses
import json
import shutil
import types
from pathlib import Path

import datasets
import kd
import pytest
import torch
from kd import budget
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertForMaskedLM

SMOKE, T4 = kd.get_profile("smoke"), kd.PROFILES["t4"]
NOTEBOOKS = sorted((kd.REPO / "code").glob("0*.ipynb"))


# --- the budget

def test_t4_fits_free_colab_sessions_and_drive_at_the_pessimistic_end():
    low, high = budget.estimate(T4, "low"), budget.estimate(T4, "high")
    for name in kd.NOTEBOOKS:
        assert low[name]["hours"] <= budget.PACK_HOURS, (name, low[name])
        assert low[name]["hours"] >= high[name]["hours"], name
        assert low[name]["trash_gb"] == 0, (name, low[name])  # deleted checkpoints are emptied first
    assert low["course"]["drive_gb"] <= 6.0, low["course"]  # of the free 15 GB, which a learner's own files share
    plan = budget.sessions(low)
    assert plan[-1] == ["05_summary"]  # on a CPU runtime of its own
    assert [nb for session in plan for nb in session] == kd.NOTEBOOKS  # in order, each once
    for session in plan:
        assert sum(low[nb]["hours"] for nb in session) <= budget.PACK_HOURS, session
    with pytest.raises(ValueError, match="one of"):
        budget.estimate(T4, "middle")


def test_budget_rates_are_separate_for_training_and_forward_passes():
    """Training steps and forward passes run at different shares of the peak: a notebook of forward passes alone
    (the teacher's logits of 04) moves with the forward rate only, a fine-tune mostly with the training rate."""
    cost = budget.Cost("low")
    cost.train(budget.T4_FP16_FLOPS)
    assert cost.seconds == pytest.approx(1 / budget.T4_SHARE["train"]["low"])
    cost = budget.Cost("high")
    cost.forward(budget.T4_FP16_FLOPS)
    assert cost.seconds == pytest.approx(1 / budget.T4_SHARE["forward"]["high"])
    for kind in ("train", "forward"):
        assert 0 < budget.T4_SHARE[kind]["low"] < budget.T4_SHARE[kind]["high"] < 0.3


def test_budget_grows_with_the_settings():
    """The estimate follows the profile: ten times the distillation steps (and the time to do them) breaks the
    per-notebook limit, and checkpoints written every minute all add to what is written (not to the trash)."""
    long = dataclasses.replace(T4, distill_steps=10 * T4.distill_steps, distill_minutes=10 * T4.distill_minutes)
    assert budget.estimate(long)["02_mlm_distillation"]["hours"] > 2.5
    often = budget.estimate(dataclasses.replace(T4, checkpoint_minutes=1.0))["02_mlm_distillation"]
    assert often["written_gb"] > 5 * budget.estimate(T4)["02_mlm_distillation"]["written_gb"]
    assert often["trash_gb"] == 0
    cost = budget.Cost("low")
    cost.save(1e9, keep=False, emptied=False)  # deleted without emptying: Drive's trash keeps it
    assert (cost.kept, cost.trash) == (0, 1e9)


def test_budget_lengths_match_the_samples():
    """The token lengths the budget assumes (measured on the full mirror) agree with the committed samples."""
    tokenizer = AutoTokenizer.from_pretrained(kd.models.BERT_VOCAB)
    for task, length in [("cola", 128), ("mrpc", 128), ("imdb", 512)]:
        rows = kd.data.load_split(SMOKE, kd.TASKS[task].dataset, "train")
        fields = [list(rows[f]) for f in kd.TASKS[task].text_fields]
        ids = tokenizer(*fields, truncation=True, max_length=length)["input_ids"]
        mean = sum(map(len, ids)) / len(ids)
        assert mean == pytest.approx(budget.LENGTHS[task, length][0], rel=0.12), task


# --- resume after a disconnect at any moment

@pytest.fixture(scope="module")
def mlm(tmp_path_factory):
    tokenizer = AutoTokenizer.from_pretrained(kd.SMOKE_DATA / "tiny_tokenizer")
    torch.manual_seed(0)
    teacher = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), **kd.TINY_BERT)).eval()
    texts = datasets.Dataset.from_dict({"text": ["the film was long and the ending was good"] * 40})
    return teacher, tokenizer, kd.mlm_blocks(texts, tokenizer, 16).select(range(8))


@pytest.mark.parametrize("cut", ["no state file", "empty state file"])
def test_resume_skips_a_checkpoint_cut_off_mid_save(mlm, tmp_path, cut):
    teacher, tokenizer, blocks = mlm
    student = kd.build_student(teacher, [0, 3])
    kd.distill(student, teacher, tokenizer, blocks, SMOKE, kd.DistillConfig(), tmp_path, max_steps=2, minutes=10)
    broken = tmp_path / "checkpoint-3"  # a disconnect while checkpoint-3 was written: weights cut, no state yet
    shutil.copytree(tmp_path / "checkpoint-2", broken)
    (broken / "model.safetensors").write_bytes(b"")
    state = broken / "trainer_state.json"
    state.unlink() if cut == "no state file" else state.write_text("")
    assert [p.name for p in kd.resume.complete_checkpoints(tmp_path)] == ["checkpoint-2"]
    trainer = kd.distill(student, teacher, tokenizer, blocks, SMOKE, kd.DistillConfig(), tmp_path, max_steps=4,
                         minutes=10)
    assert [r["step"] for r in trainer.state.log_history if "loss" in r] == [1, 2, 3, 4]  # 1-2 from checkpoint-2
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-4"]  # the cut one is gone too


def test_keep_last_checkpoint_empties_what_it_deletes(tmp_path, monkeypatch):
    for step in (1, 2, 3):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x" * 100)
        if step < 3:  # checkpoint-3 is incomplete (no state): the newest complete one, 2, is kept
            (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    sizes = []
    rmtree = shutil.rmtree
    monkeypatch.setattr(kd.resume.shutil, "rmtree",
                        lambda p: (sizes.extend(f.stat().st_size for f in Path(p).rglob("*")), rmtree(p)))
    args = types.SimpleNamespace(output_dir=str(tmp_path))
    kd.resume.KeepLastCheckpoint().on_save(args, types.SimpleNamespace(is_world_process_zero=True), None)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-2"]
    assert sizes and not any(sizes)


def test_a_deletion_cut_off_halfway_leaves_no_complete_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoint-5"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x" * 100)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 5}))
    assert kd.resume.complete_checkpoints(tmp_path) == [folder]

    def disconnect(path):
        raise KeyboardInterrupt  # the runtime goes while the folder is deleted

    monkeypatch.setattr(kd.resume.shutil, "rmtree", disconnect)
    with pytest.raises(KeyboardInterrupt):
        kd.resume.remove_checkpoint(folder)
    assert kd.resume.complete_checkpoints(tmp_path) == []  # its emptied weights are never resumed from


# --- models go back where they were found

def test_kept_in_place_restores_device_dtype_and_mode():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout()).double().train()
    with kd.models.kept_in_place(model):
        model.float().eval()
    assert next(model.parameters()).dtype == torch.float64 and model.training


def test_masked_lm_eval_leaves_the_model_trainable(mlm):
    teacher, tokenizer, blocks = mlm
    student = kd.build_student(teacher, [0, 3]).train()
    kd.masked_lm_eval(student, kd.data.fixed_masked_batches(blocks, tokenizer, 4, seed=0))
    assert student.training and not any(p.is_inference() for p in student.parameters())
    batch = kd.mlm_collator(tokenizer)([blocks[0]])
    student(**batch).loss.backward()  # would fail on inference tensors


def test_predict_and_latency_put_models_back():
    tokenizer = AutoTokenizer.from_pretrained(kd.teacher_source(SMOKE))
    model = AutoModelForSequenceClassification.from_pretrained(kd.teacher_source(SMOKE), num_labels=2)
    model.double().train()
    rows = datasets.Dataset.from_dict({"input_ids": [[2, 7, 9, 3]] * 3, "labels": [0, 1, 0]})
    kd.predict_logits(model, rows, tokenizer, SMOKE)
    kd.cpu_latency_ms({"m": model}, seq_len=8, runs=1, vocab_size=len(tokenizer), warmup=0)
    assert next(model.parameters()).dtype == torch.float64 and model.training


# --- data: a random subset, whatever the order of the split

def test_random_subset_of_a_sorted_split_is_balanced_and_shortest_first():
    labels = [0] * 500 + [1] * 500  # as IMDb's test split: sorted by label
    ds = datasets.Dataset.from_dict({"input_ids": [[1] * (1 + i % 37) for i in range(1000)], "labels": labels})
    subset = kd.random_subset(ds, 100, seed=0)
    assert 30 <= sum(subset["labels"]) <= 70  # the first 100 rows would all be negative
    lengths = [len(x) for x in subset["input_ids"]]
    assert lengths == sorted(lengths) and len(subset) == 100
    assert len(kd.random_subset(ds, None, seed=0)) == 1000


# --- notebook 05 on a CPU runtime

def test_summary_reads_a_t4_run_on_a_cpu_runtime(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="T4 GPU"):
        kd.get_profile("t4")  # training needs the GPU ...
    assert kd.get_profile("t4", needs_gpu=False).name == "t4"  # ... reading its records and the int8 check do not
