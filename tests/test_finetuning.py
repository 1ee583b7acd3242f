"""Fine-tuning (notebook 03) and classic distillation (notebook 04): preprocessing, metrics, losses, students."""
import math

import kd
import pytest
import torch
from transformers import AutoTokenizer
from transformers.modeling_outputs import SequenceClassifierOutput

SMOKE = kd.get_profile("smoke")


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(kd.SMOKE_DATA / "tiny_tokenizer")


def test_task_scores_known_values():
    s = kd.task_scores([1, 1, 0, 0], [1, 0, 0, 0])
    assert s["accuracy"] == 0.75 and s["f1"] == pytest.approx(2 / 3)
    assert s["f1_acc_mean"] == pytest.approx((0.75 + 2 / 3) / 2)
    assert s["matthews_correlation"] == pytest.approx(1 / math.sqrt(3))


def test_mrpc_pairs_and_imdb_truncation(tokenizer):
    run = kd.Run(SMOKE, "test")
    train, evaluation = kd.task_data(run, kd.TASKS["mrpc"], tokenizer)
    assert (len(train), len(evaluation)) == SMOKE.task_sizes["mrpc"][:2]
    ids = train[0]["input_ids"]
    assert ids.count(tokenizer.sep_token_id) == 2 and ids[0] == tokenizer.cls_token_id
    assert set(train[0]["token_type_ids"]) == {0, 1}  # the second sentence is segment 1
    assert run.data["mrpc/train"]["subset_rows"] == SMOKE.task_sizes["mrpc"][0]
    imdb_train, _ = kd.task_data(run, kd.TASKS["imdb"], tokenizer)
    lengths = [len(x) for x in imdb_train["input_ids"]]
    assert max(lengths) == SMOKE.max_len_cap  # reviews are long: truncated
    assert set(imdb_train["labels"]) == {0, 1}


def test_retention():
    assert kd.retention(45.0, 50.0) == pytest.approx(0.9)
    assert kd.retention(10.0, 0.0) is None  # a teacher with MCC 0 has nothing to keep
    assert kd.mean_retention({"cola": None, "mrpc": 0.9, "imdb": 1.0}) == pytest.approx(0.95)


def test_classic_kd_loss_by_hand():
    s = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    labels = torch.tensor([0, -1])  # the second row is from the unlabelled transfer set
    ce = -math.log(math.exp(2) / (math.exp(2) + 1))  # row 0 only
    kl = 0.0
    for i in range(2):
        pt = torch.softmax(t[i] / 2, -1)
        ps = torch.softmax(s[i] / 2, -1)
        kl += float((pt * (pt / ps).log()).sum())
    expected = 0.3 * ce + 0.7 * (kl / 2) * 4
    kl_cfg, mse_cfg = kd.TaskKDConfig(alpha=0.3, temperature=2.0), kd.TaskKDConfig(alpha=0.3, mse=True)
    assert kd.classic_kd_loss(s, t, labels, kl_cfg).item() == pytest.approx(expected, rel=1e-5)
    mse = ((s - t) ** 2).mean().item()
    assert kd.classic_kd_loss(s, t, labels, mse_cfg).item() == pytest.approx(0.3 * ce + 0.7 * mse, rel=1e-5)
    unlabelled = torch.tensor([-1, -1])
    assert kd.classic_kd_loss(s, t, unlabelled, mse_cfg).item() == pytest.approx(0.7 * mse, rel=1e-5)


@pytest.mark.parametrize("kind", kd.SmallStudent.KINDS)
@pytest.mark.parametrize("layers", [1, 2])
def test_students_ignore_padding(kind, layers):
    torch.manual_seed(0)
    student = kd.SmallStudent(kind, 100, layers, 16, 64).eval()
    ids = torch.randint(5, 100, (3, 10))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    ids[1, 4:] = 0
    more_ids = torch.nn.functional.pad(ids, (0, 9))
    more_mask = torch.nn.functional.pad(mask, (0, 9))
    with torch.no_grad():
        a, b = student(ids, mask).logits, student(more_ids, more_mask).logits
        other = student(ids, torch.ones_like(mask)).logits  # treating padding as tokens changes the answer
    assert a.shape == (3, 2)
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a[1], other[1], atol=1e-5)


def test_unknown_student_kind():
    with pytest.raises(ValueError, match="bilstm"):
        kd.SmallStudent("cnn", 100, 1, 16, 64)


def test_projected_embeddings_keep_the_most_variance():
    """The point of PCA: `dim` numbers per token that keep as much of the teacher's embeddings as any `dim` can.
    Kept variance = what a linear map from the projection reconstructs of the centred weight (scale-free)."""
    torch.manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(24, 24))
    weight = torch.randn(200, 24) * torch.logspace(0.5, -1, 24) @ rotation.T + 3  # uneven spread, off-centre
    centred = weight - weight.mean(0)

    def kept(projection):  # variance of `centred` explained by a linear function of `projection`
        fit = projection @ torch.linalg.lstsq(projection, centred).solution
        return centred.pow(2).sum().item() - (centred - fit).pow(2).sum().item()

    out = kd.projected_embeddings(weight, 8)
    assert out.shape == (200, 8)
    best = torch.linalg.eigvalsh(centred.T @ centred).flip(0)[:8].sum().item()  # the top 8 principal components
    assert kept(out) == pytest.approx(best, rel=1e-2)
    random_projections = [centred @ torch.linalg.qr(torch.randn(24, 8))[0] for _ in range(20)]
    assert kept(out) > max(kept(p) for p in random_projections) > 0  # fails for any projection not onto the top 8
    assert kept(out) > kept(centred[:, :8])  # ... or for simply keeping 8 coordinates
    student = kd.SmallStudent("bigru", 200, 1, 8, 16, embeddings=out)
    assert torch.equal(student.embed.weight.data, out)
    ids = torch.tensor([[3, 5, 7]])
    assert student(ids, torch.ones_like(ids)).logits.shape == (1, 2)


def test_projected_embeddings_do_not_depend_on_what_ran_before():
    """The randomised PCA has its own seed: notebook 04 gets the same students with or without its logits cache
    (labelling, when it runs, moves the global random state)."""
    weight = torch.randn(300, 32)
    torch.manual_seed(1)
    first = kd.projected_embeddings(weight, 8, seed=5)
    torch.randn(1000)  # anything else that draws from the global generator
    assert torch.equal(kd.projected_embeddings(weight, 8, seed=5), first)
    after = torch.randn(3)
    torch.manual_seed(1)
    kd.projected_embeddings(weight, 8, seed=5)
    torch.randn(1000)
    assert torch.equal(torch.randn(3), after)  # and it leaves the global generator where it was


def test_soft_target_trainer_uses_teacher_logits_only_when_present(tmp_path):
    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(3, 2)

        def forward(self, x):
            return SequenceClassifierOutput(logits=self.w(x))

    model = Linear()
    x, labels, logits_t = torch.randn(4, 3), torch.tensor([0, 1, -1, 1]), torch.randn(4, 2)
    with torch.no_grad():
        logits_s = model(x).logits
    for mse in (False, True):  # every field of the config reaches the loss
        task_kd = kd.TaskKDConfig(alpha=0.25, temperature=3.0, mse=mse)
        trainer = kd.SoftTargetTrainer(model=model, args=kd.training_args(SMOKE, tmp_path), task_kd=task_kd)
        with torch.no_grad():
            with_teacher = trainer.compute_loss(model, {"x": x, "labels": labels, "teacher_logits": logits_t})
            plain = trainer.compute_loss(model, {"x": x, "labels": labels.clamp_min(0)})
        expected = kd.classic_kd_loss(logits_s, logits_t, labels, kd.TaskKDConfig(0.25, 3.0, mse=mse)).item()
        assert with_teacher.item() == pytest.approx(expected, rel=1e-6)
        ce = torch.nn.functional.cross_entropy(logits_s, labels.clamp_min(0)).item()
        assert plain.item() == pytest.approx(ce, rel=1e-6)
    kl, mse = (kd.classic_kd_loss(logits_s, logits_t, labels, kd.TaskKDConfig(0.25, 3.0, mse=m)).item()
               for m in (False, True))
    assert kl != pytest.approx(mse, rel=1e-3)  # so mse was checked


def test_student_precision_keeps_bigru_in_fp32_where_bf16_is_a_cpus(monkeypatch):
    cpu = kd.get_profile("cpu")
    monkeypatch.setenv("KD_CPU_BF16", "1")
    assert {k: kd.student_precision(cpu, k) for k in kd.SmallStudent.KINDS} == {
        k: "fp32" if k in kd.BF16_SLOWER else "bf16" for k in kd.SmallStudent.KINDS} and "bigru" in kd.BF16_SLOWER
    monkeypatch.setenv("KD_CPU_BF16", "0")
    assert {kd.student_precision(cpu, k) for k in kd.SmallStudent.KINDS} == {"fp32"}


def test_train_students_two_at_once_as_one_at_a_time(tokenizer, tmp_path):
    """Notebook 04's runs: two spawned workers give each (student, mode, seed) the scores of the same run done in this
    process, in the same order, and a finished run is read back with the seconds it took."""
    from dataclasses import replace

    run = kd.Run(SMOKE, "test")
    train, test = kd.task_data(run, kd.TASKS["imdb"], tokenizer)
    students = {"bilstm-1": ("bilstm", 1), "attention-1": ("attention", 1)}
    modes = {"single": (train, None)}
    settings = dict(max_steps=2, per_device_train_batch_size=8, learning_rate=1e-2)
    out = {}
    for workers in (1, 2):
        profile = replace(SMOKE, classic_workers=workers)
        out[workers] = kd.train_students(students, modes, [0, 1], test, tokenizer, profile, None,
                                         tmp_path / str(workers), **settings)
    assert list(out[1]) == list(out[2]) == [("bilstm-1", "single"), ("attention-1", "single")]
    for key in out[1]:
        assert [r["accuracy"] for r in out[1][key]] == [r["accuracy"] for r in out[2][key]]
        assert all(r["seconds"] > 0 for r in out[2][key])
    again = kd.train_students(students, modes, [0, 1], test, tokenizer, replace(SMOKE, classic_workers=1), None,
                              tmp_path / "2", **settings)
    assert again == out[2]  # read back: the same scores and the seconds the runs took
