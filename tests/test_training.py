"""What only the smoke notebooks exercised before: kd.finetune (scores, resume, checkpoints, kept model, task KD),
kd.fit_mlm_head, kd.masked_lm_eval and kd.predict_logits, on the tiny smoke teacher and a few rows."""
import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace

import kd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, BertForMaskedLM

SMOKE = kd.get_profile("smoke")
SCORE_KEYS = {"accuracy", "f1", "matthews_correlation", "f1_acc_mean"}



def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def classifier(seed=0):
    """The smoke teacher (a random tiny BERT) with a fresh 2-label head."""
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(kd.teacher_source(SMOKE), num_labels=2)


@pytest.fixture(scope="module")
def cola():
    tokenizer = AutoTokenizer.from_pretrained(kd.teacher_source(SMOKE))
    train, evaluation = kd.task_data(kd.Run(SMOKE, "test"), kd.TASKS["cola"], tokenizer)
    return tokenizer, train.select(range(16)), evaluation.select(range(12))


# --- finetune

@pytest.fixture(scope="module")
def finetuned(cola, tmp_path_factory):
    """One short fine-tuning run (2 steps, a checkpoint after each: checkpoint_minutes=0), model kept."""
    tokenizer, train, evaluation = cola
    out = tmp_path_factory.mktemp("finetune")
    model = classifier()
    before = weights(model)
    removed, sizes = [], []
    rmtree = kd.resume.shutil.rmtree

    def spy(path, *args, **kwargs):  # see which folders are deleted, and the bytes left in them (then delete them)
        removed.append(Path(path).name)
        sizes.extend(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
        return rmtree(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kd.resume.shutil, "rmtree", spy)
        scores = kd.finetune(model, tokenizer, kd.TASKS["cola"], train, evaluation,
                             dataclasses.replace(SMOKE, checkpoint_minutes=0), seed=0, output_dir=out,
                             keep_model=True, max_steps=2, per_device_train_batch_size=16)
    return SimpleNamespace(out=out, model=model, before=before, scores=scores, removed=removed, sizes=sizes)


def test_finetune_trains_and_scores_the_evaluation_split(finetuned, cola):
    tokenizer, _, evaluation = cola
    assert set(finetuned.scores) == SCORE_KEYS and all(-1 <= v <= 1 for v in finetuned.scores.values())
    assert json.loads((finetuned.out / "scores.json").read_text()) == finetuned.scores
    after = weights(finetuned.model)
    assert not torch.equal(after["classifier.weight"], finetuned.before["classifier.weight"])  # it trained
    # the scores are the trained model's on the evaluation split, not the training split's or the initial model's
    logits = kd.predict_logits(finetuned.model, evaluation, tokenizer, SMOKE)
    expected = kd.task_scores(logits.argmax(-1).tolist(), evaluation["labels"])
    assert finetuned.scores == pytest.approx(expected)


def test_finetune_removes_its_checkpoints_when_done(finetuned):
    assert finetuned.removed == ["checkpoint-1", "checkpoint-2"]  # one kept at a time, the last removed when done
    assert not list(finetuned.out.glob("checkpoint-*"))
    assert finetuned.sizes and not any(finetuned.sizes)  # emptied before deleting: Drive's trash keeps no bytes


def test_finetune_shorter_than_checkpoint_minutes_writes_no_checkpoint(cola, tmp_path, monkeypatch):
    """On Colab every checkpoint is a write to Drive: a short fine-tune's unit of resume is its scores.json."""
    tokenizer, train, evaluation = cola
    saved = []
    monkeypatch.setattr(kd.training.Trainer, "_save_checkpoint", lambda self, *a, **k: saved.append(1))
    kd.finetune(classifier(), tokenizer, kd.TASKS["cola"], train, evaluation, SMOKE, seed=0, output_dir=tmp_path,
                max_steps=2, per_device_train_batch_size=8)
    assert SMOKE.checkpoint_minutes >= 1 and saved == []


def test_finetune_keeps_a_loadable_model(finetuned, cola):
    tokenizer, _, evaluation = cola
    kept = AutoModelForSequenceClassification.from_pretrained(finetuned.out / "model").eval()
    assert all(torch.equal(v, kept.state_dict()[k]) for k, v in weights(finetuned.model).items())  # the trained one
    assert AutoTokenizer.from_pretrained(finetuned.out / "model").vocab == tokenizer.vocab


def test_finetune_rerun_reads_scores_back_without_training(finetuned, cola):
    tokenizer, train, evaluation = cola

    def untrainable(**inputs):
        raise AssertionError("finetune trained or evaluated although scores.json was there")

    model = classifier()  # the same starting weights
    model.forward = untrainable
    files = sorted(p.relative_to(finetuned.out) for p in finetuned.out.rglob("*"))
    again = kd.finetune(model, tokenizer, kd.TASKS["cola"], train, evaluation, SMOKE, seed=0,
                        output_dir=finetuned.out, keep_model=True, max_steps=2, per_device_train_batch_size=16)
    assert again == finetuned.scores
    assert sorted(p.relative_to(finetuned.out) for p in finetuned.out.rglob("*")) == files  # nothing new written


def test_finetune_refuses_a_folder_started_with_other_settings(finetuned, cola):
    """A changed profile (here: more steps) must not read back the old run's scores, nor overwrite them."""
    tokenizer, train, evaluation = cola
    before = {p: p.read_bytes() for p in finetuned.out.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=r"other settings \(max_steps: 2 -> 3\).*move or delete that folder"):
        kd.finetune(classifier(), tokenizer, kd.TASKS["cola"], train, evaluation, SMOKE, seed=0,
                    output_dir=finetuned.out, keep_model=True, max_steps=3, per_device_train_batch_size=16)
    assert {p: p.read_bytes() for p in finetuned.out.rglob("*") if p.is_file()} == before  # nothing lost


def test_finetune_refuses_a_folder_started_from_other_weights(finetuned, cola):
    """A retrained teacher saved under the same name starts from other weights: its runs are not the old ones."""
    tokenizer, train, evaluation = cola
    before = {p: p.read_bytes() for p in finetuned.out.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match=r"other settings \(start_weights: '[0-9a-f]{12}' -> '[0-9a-f]{12}'\)"):
        kd.finetune(classifier(seed=1), tokenizer, kd.TASKS["cola"], train, evaluation, SMOKE, seed=0,
                    output_dir=finetuned.out, keep_model=True, max_steps=2, per_device_train_batch_size=16)
    assert {p: p.read_bytes() for p in finetuned.out.rglob("*") if p.is_file()} == before


def test_finetune_with_task_kd_trains_on_the_teacher_logits(cola, tmp_path, monkeypatch):
    tokenizer, train, evaluation = cola
    torch.manual_seed(1)
    train = train.add_column("teacher_logits", (3 * torch.randn(len(train), 2)).tolist())
    seen = []
    compute_loss = kd.SoftTargetTrainer.compute_loss

    def spy(self, model, inputs, *args, **kwargs):  # fails if plain Trainer runs (never called) or the column is lost
        if model.training:
            seen.append(tuple(inputs["teacher_logits"].shape) if "teacher_logits" in inputs else None)
        return compute_loss(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(kd.SoftTargetTrainer, "compute_loss", spy)
    task_kd = kd.TaskKDConfig()
    scores = kd.finetune(classifier(), tokenizer, kd.TASKS["cola"], train, evaluation, SMOKE, seed=0,
                         output_dir=tmp_path, task_kd=task_kd, max_steps=2, per_device_train_batch_size=8)
    assert seen == [(8, 2), (8, 2)]
    assert set(scores) == SCORE_KEYS and not list(tmp_path.glob("checkpoint-*"))


# --- fit_mlm_head

@pytest.fixture(scope="module")
def mlm_data():
    source = kd.teacher_source(SMOKE)
    tokenizer = AutoTokenizer.from_pretrained(source)
    train = kd.mlm_blocks(kd.load_split(SMOKE, "wikitext2", "validation"), tokenizer, SMOKE.block_size)
    held_out = kd.mlm_blocks(kd.load_split(SMOKE, "wikitext2", "test"), tokenizer, SMOKE.block_size)
    return source, tokenizer, train, kd.fixed_masked_batches(held_out.select(range(16)), tokenizer, 8, seed=0)


def test_fit_mlm_head_trains_only_the_head(mlm_data, tmp_path):
    source, tokenizer, train, held_out = mlm_data
    torch.manual_seed(0)  # the missing head is initialised at random: the same head whatever ran before
    teacher, _, head_missing = kd.load_masked_lm(source)
    assert head_missing  # the smoke teacher, like the cpu one, ships without a masked-LM head
    dropouts = [m for m in teacher.modules() if isinstance(m, torch.nn.Dropout)]
    rates = [m.p for m in dropouts]
    assert rates and all(p > 0 for p in rates)  # else "restored" below would mean nothing
    seen_rates = []  # the encoder must be deterministic while the head learns: its dropout off
    hook = teacher.bert.encoder.layer[0].output.dropout.register_forward_pre_hook(
        lambda m, _: seen_rates.append(m.p) if m.training else None)
    before, ppl_before = weights(teacher), kd.masked_lm_eval(teacher, held_out)["perplexity"]
    profile = dataclasses.replace(SMOKE, head_fit_steps=10, head_fit_lr=3e-2, head_fit_batch=8)
    log = kd.fit_mlm_head(teacher, tokenizer, train, profile, tmp_path)
    hook.remove()
    after = weights(teacher)

    assert seen_rates and set(seen_rates) == {0.0}
    assert [m.p for m in dropouts] == rates
    assert all(p.requires_grad for p in teacher.parameters())
    assert not teacher.training  # back in the mode it came in (eval): a later exact comparison needs no dropout
    assert teacher.cls.predictions.decoder.weight is teacher.bert.embeddings.word_embeddings.weight  # still tied
    frozen = [k for k in before if k.startswith("bert.")]
    assert frozen and [k for k in frozen if not torch.equal(before[k], after[k])] == []  # bit-identical encoder
    head = [k for k in before if k.startswith("cls.predictions.") and k != "cls.predictions.decoder.weight"]
    assert head and [k for k in head if torch.equal(before[k], after[k])] == []  # every head weight learned
    assert torch.equal(after["cls.predictions.decoder.weight"], before["bert.embeddings.word_embeddings.weight"])
    assert [r["step"] for r in log if "loss" in r]  # the Trainer's log comes back
    ppl_after = kd.masked_lm_eval(teacher, held_out)["perplexity"]
    assert ppl_after < 0.9 * ppl_before, (ppl_before, ppl_after)  # held-out masked-LM loss falls (1500 -> 1250)


def test_fit_mlm_head_whole_trains_every_weight(mlm_data, tmp_path):
    source, tokenizer, train, held_out = mlm_data
    torch.manual_seed(0)
    teacher, _, _ = kd.load_masked_lm(source)
    before = weights(teacher)
    profile = dataclasses.replace(SMOKE, teacher_adapt_steps=3, teacher_adapt_lr=1e-3, head_fit_batch=8)
    log = kd.fit_mlm_head(teacher, tokenizer, train, profile, tmp_path, whole=True)
    after = weights(teacher)
    assert [k for k in before if k.startswith("bert.encoder.") and torch.equal(before[k], after[k])] == []
    assert max(r["step"] for r in log if "loss" in r) == 3 and not teacher.training


@pytest.mark.parametrize("kind", ["teacher", "student"])
def test_masked_lm_logits_are_the_models_logits_at_the_picked_positions(kind):
    torch.manual_seed(0)
    teacher = BertForMaskedLM(BertConfig(vocab_size=300, **kd.TINY_BERT)).eval()
    model = teacher if kind == "teacher" else kd.build_student(teacher, [0, 3]).eval()
    ids = torch.randint(5, 300, (3, 20))
    mask = torch.ones_like(ids)
    mask[0, 12:] = 0
    picked = (torch.rand(ids.shape) < 0.3) & mask.bool()
    with torch.no_grad():
        full, only = model(input_ids=ids, attention_mask=mask).logits, kd.masked_lm_logits(model, ids, mask, picked)
    assert only.shape == (int(picked.sum()), 300)
    torch.testing.assert_close(only, full[picked])


# --- masked_lm_eval

class FixedLogits(torch.nn.Module):
    """Returns the next batch's logits, whatever the input; takes exactly what masked_lm_eval should pass."""
    def __init__(self, logits):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # masked_lm_eval looks up the model's device
        self.logits = list(logits)

    def forward(self, input_ids, attention_mask):
        assert input_ids.shape == attention_mask.shape == self.logits[0].shape[:2]
        return SimpleNamespace(logits=self.logits.pop(0))


def test_masked_lm_eval_by_hand():
    torch.manual_seed(0)
    logits = [torch.randn(2, 3, 5), torch.randn(1, 4, 5)]
    labels = [torch.tensor([[-100, 1, -100], [4, -100, -100]]), torch.tensor([[0, 2, 3, -100]])]
    logits[0][0, 0, 0] = logits[0][1, 1, 2] = 50.0  # unlabelled positions: confident (right or wrong), must not count
    logits[1][0, 0, 0] = 50.0  # a sure hit where it counts
    batches = [{"input_ids": torch.zeros_like(y), "attention_mask": torch.ones_like(y), "labels": y} for y in labels]
    hits, nll, n = 0, 0.0, 0
    for z, y in zip(logits, labels):
        for position in (y != -100).nonzero().tolist():
            row, label = z[tuple(position)].tolist(), int(y[tuple(position)])
            hits += max(range(5), key=row.__getitem__) == label
            nll += math.log(sum(math.exp(v) for v in row)) - row[label]
            n += 1
    out = kd.masked_lm_eval(FixedLogits(logits), batches)
    assert out["masked_tokens"] == n == 5  # pooled over batches of 2 and 3 masked tokens
    assert out["masked_acc"] == pytest.approx(hits / n) and hits >= 1
    assert out["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-5)


# --- predict_logits

def test_predict_logits_is_the_models_forward_in_order(cola, cpu_precision):
    """In fp32 the logits are the model's own to rounding; in bf16 autocast to bf16's ~3 digits (logits of order 1)."""
    tokenizer, _, evaluation = cola
    bert = classifier(seed=3).eval()
    bert.classifier.weight.data.mul_(100)  # logits of order 1: rows then differ by far more than the tolerance

    class Strict(torch.nn.Module):
        """Refuses the columns predict_logits must drop (a plain Trainer would pass them on to this signature)."""
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None, teacher_logits=None):
            assert labels is None and teacher_logits is None, "labels / teacher_logits reached the model"
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)

    data = evaluation.add_column("teacher_logits", [[0.0, 0.0]] * len(evaluation))
    lengths = [len(ids) for ids in data["input_ids"]]
    assert len(set(lengths)) > 1  # rows of different lengths: padding and order both matter
    logits = kd.predict_logits(Strict(), data, tokenizer, SMOKE)
    assert logits.shape == (len(data), 2) and logits.dtype == "float32"
    atol = {"fp32": 1e-5, "bf16": 3e-2}[cpu_precision]
    with torch.no_grad():
        for i, row in enumerate(data):
            one = bert(input_ids=torch.tensor([row["input_ids"]]), token_type_ids=torch.tensor([row["token_type_ids"]]),
                       attention_mask=torch.tensor([row["attention_mask"]])).logits[0]
            assert torch.allclose(torch.as_tensor(logits[i]), one, atol=atol), i
    if cpu_precision == "fp32":  # rows differ by ~1e-2: only fp32's tolerance tells a row out of order (the same
        assert abs(logits[1:] - logits[:-1]).max(-1).min() > 1e-3  # code orders both paths' rows)


def test_importing_the_training_module_leaves_the_garbage_collector_alone():
    """kd.training freezes the process's long-lived objects when the first Trainer is set up, not when imported."""
    import subprocess
    import sys

    code = ("import gc, kd.training as t; n = gc.get_freeze_count(); "
            "t.training_args(__import__('kd').get_profile('smoke'), 'x'); print(n, gc.get_freeze_count() > 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(kd.REPO / "code")})
    assert done.stdout.split() == ["0", "True"], done.stderr[-2000:]
