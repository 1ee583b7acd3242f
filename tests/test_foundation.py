"""The helper module's foundation: profiles, data, teacher and student, metrics, run records."""
import json

import kd
import pytest
import torch
from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, DistilBertConfig, DistilBertForMaskedLM,
                          DistilBertModel)

SMOKE = kd.get_profile("smoke")


@pytest.fixture(scope="module")
def tiny_teacher():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=48, max_position_embeddings=40,
                        initializer_range=0.2)  # large weights: logits of order 1, so a 1e-4 check means something
    return BertForMaskedLM(config).eval()


# --- profiles

def test_profile_env_override_and_unknown_name(monkeypatch):
    monkeypatch.setenv("KD_PROFILE", "smoke")
    assert kd.get_profile().name == "smoke"
    monkeypatch.setenv("KD_PROFILE", "laptop")
    with pytest.raises(ValueError, match="t4, cpu, smoke"):
        kd.get_profile()


def test_profile_chosen_by_hardware(monkeypatch):
    monkeypatch.delenv("KD_PROFILE")
    expected = "t4" if torch.cuda.is_available() else "cpu"
    assert kd.get_profile().name == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without GPU")
def test_t4_without_gpu_names_the_fix():
    with pytest.raises(RuntimeError, match="KD_PROFILE=cpu"):
        kd.get_profile("t4")


# --- data

def test_local_root_loads_named_splits():
    cola = kd.load_split(SMOKE, "cola", "train")
    assert len(cola) == 300 and {"sentence", "label"} <= set(cola.column_names)
    assert set(cola["label"]) == {0, 1}
    unsup = kd.load_split(SMOKE, "imdb", "unsupervised")
    assert len(unsup) == 300 and set(unsup["label"]) == {-1}


def test_missing_split_names_the_path():
    with pytest.raises(FileNotFoundError, match=r"wikitext-2-v1/train-\*\.parquet"):
        kd.load_split(SMOKE, "wikitext2", "train")


def test_missing_root_names_the_path(monkeypatch, tmp_path):
    monkeypatch.setenv("KD_DATA_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere/nyu-mll/glue/mrpc/validation"):
        kd.load_split(SMOKE, "mrpc", "validation")


def test_unknown_dataset():
    with pytest.raises(ValueError, match="known: cola"):
        kd.load_split(SMOKE, "sst2", "train")


def test_mlm_blocks_are_framed_and_full_length():
    tokenizer = AutoTokenizer.from_pretrained(kd.SMOKE_DATA / "tiny_tokenizer")
    blocks = kd.mlm_blocks(kd.load_split(SMOKE, "wikitext2", "test"), tokenizer, 32)
    assert len(blocks) > 5
    for ids in blocks["input_ids"]:
        assert len(ids) == 32 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert tokenizer.pad_token_id not in ids


def test_fixed_masking_is_repeatable():
    tokenizer = AutoTokenizer.from_pretrained(kd.SMOKE_DATA / "tiny_tokenizer")
    blocks = kd.mlm_blocks(kd.load_split(SMOKE, "wikitext2", "test"), tokenizer, 32)
    a, b = (kd.fixed_masked_batches(blocks, tokenizer, 4, seed=1) for _ in range(2))
    c = kd.fixed_masked_batches(blocks, tokenizer, 4, seed=2)
    assert all(torch.equal(x["labels"], y["labels"]) for x, y in zip(a, b))
    assert not all(torch.equal(x["labels"], y["labels"]) for x, y in zip(a, c))
    assert 0.05 < sum(int((x["labels"] != -100).sum()) for x in a) / sum(x["labels"].numel() for x in a) < 0.3


# --- teacher and student

def test_layer_choice():
    assert kd.student_layer_ids(12, 6) == [0, 2, 4, 7, 9, 11]  # the released DistilBERT
    assert kd.student_layer_ids(6, 3) == [0, 2, 5]
    assert kd.student_layer_ids(4, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        kd.student_layer_ids(4, 5)


def test_weight_map_covers_the_student_from_the_chosen_layers(tiny_teacher):
    """Every student weight has a teacher source of its shape (the tied projector excepted), each used once, and
    student layer j reads teacher layer layers[j] only."""
    layers = [0, 3]
    m = kd.student_weight_map(layers)
    student = DistilBertForMaskedLM(DistilBertConfig(
        vocab_size=120, dim=32, hidden_dim=48, n_layers=2, n_heads=2, max_position_embeddings=40)).state_dict()
    teacher = tiny_teacher.state_dict()
    assert set(m) == set(student) - {"vocab_projector.weight"}
    assert len(set(m.values())) == len(m) and set(m.values()) <= set(teacher)
    assert all(student[s].shape == teacher[t].shape for s, t in m.items())
    for s, t in m.items():
        if s.startswith("distilbert.transformer.layer."):
            j = int(s.split(".")[3])
            assert t.startswith(f"bert.encoder.layer.{layers[j]}."), (s, t)
    q = m["distilbert.transformer.layer.1.attention.q_lin.weight"]
    assert q == "bert.encoder.layer.3.attention.self.query.weight"


def test_student_copies_weights_and_folds_token_type(tiny_teacher):
    t = tiny_teacher
    s = kd.build_student(t, [0, 3])
    lin1, dense = s.distilbert.transformer.layer[1].ffn.lin1.weight, t.bert.encoder.layer[3].intermediate.dense.weight
    assert torch.equal(lin1, dense)
    assert torch.equal(s.vocab_projector.bias, t.cls.predictions.bias)
    assert s.vocab_projector.weight is s.distilbert.embeddings.word_embeddings.weight
    assert t.bert.embeddings.token_type_embeddings.weight[0].abs().max() > 0.1  # else folding it in would not show
    ids = torch.randint(5, 120, (2, 10))
    with torch.no_grad():  # single-segment input: the student's embedding output is the teacher's
        assert torch.allclose(s.distilbert.embeddings(ids), t.bert.embeddings(ids), atol=1e-6)


def test_all_layer_student_reproduces_teacher_logits(tiny_teacher):
    s = kd.build_student(tiny_teacher, [0, 1, 2, 3])
    ids = torch.randint(5, 120, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # padding too
    with torch.no_grad():
        lt = tiny_teacher(input_ids=ids, attention_mask=mask).logits
        ls = s(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    assert (lt - ls).abs()[real].max() <= 1e-4
    partial = kd.build_student(tiny_teacher, [0, 3])
    with torch.no_grad():
        assert (lt - partial(input_ids=ids, attention_mask=mask).logits).abs()[real].max() > 1e-1  # the check can fail


def test_shape_mismatch_is_an_error(tiny_teacher):
    tiny_teacher.config.intermediate_size = 64  # config no longer matches the weights
    try:
        with pytest.raises(ValueError, match="Shape mismatch: student distilbert.transformer.layer.0.ffn.lin1"):
            kd.build_student(tiny_teacher, [0, 3])
    finally:
        tiny_teacher.config.intermediate_size = 48


def test_teacher_without_head_is_detected_and_explained():
    _, _, head_missing = kd.load_masked_lm(kd.teacher_source(SMOKE))
    assert head_missing


def test_later_notebooks_refuse_a_headless_teacher(monkeypatch, tmp_path):
    monkeypatch.setenv("KD_ARTIFACTS_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="Run code/01_student_init.ipynb first"):
        kd.load_mlm_teacher(SMOKE)


def test_later_notebooks_use_the_teacher_notebook_01_adapted(monkeypatch, tmp_path):
    """Notebook 03 fine-tunes the teacher the student was distilled from: the adapted one where 01 saved it."""
    monkeypatch.setenv("KD_ARTIFACTS_DIR", str(tmp_path))
    assert kd.mlm_teacher_source(SMOKE) == kd.teacher_source(SMOKE)  # none adapted (t4): the source itself
    teacher, _, _ = kd.load_masked_lm(kd.teacher_source(SMOKE))
    teacher.save_pretrained(tmp_path / "smoke" / "teacher-mlm")
    assert kd.mlm_teacher_source(SMOKE) == str(tmp_path / "smoke" / "teacher-mlm")


def test_non_bert_teacher_is_an_error(tmp_path):
    config = DistilBertConfig(vocab_size=50, dim=16, hidden_dim=32, n_layers=1, n_heads=2)
    DistilBertModel(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="must be a BERT"):
        kd.load_masked_lm(str(tmp_path))


def test_model_root_override(monkeypatch, tmp_path):
    (tmp_path / "org" / "model").mkdir(parents=True)
    monkeypatch.setenv("KD_MODEL_ROOT", str(tmp_path))
    assert kd.model_source("org/model") == str(tmp_path / "org" / "model")
    assert kd.model_source("org/other") == "org/other"  # not mirrored: the hub


def test_fingerprint_names_the_weights_not_the_folder(tiny_teacher, tmp_path):
    """Notebook 04 caches its teacher's logits under the teacher's fingerprint: a retrained teacher (other weights,
    same folder) must get another name, the same weights elsewhere the same one."""
    tiny_teacher.save_pretrained(tmp_path / "a")
    tiny_teacher.save_pretrained(tmp_path / "b")
    before = kd.fingerprint(tmp_path / "a")
    assert before == kd.fingerprint(tmp_path / "b") and len(before) == 12
    changed = BertForMaskedLM(tiny_teacher.config)
    changed.load_state_dict(tiny_teacher.state_dict())
    with torch.no_grad():
        changed.bert.encoder.layer[0].output.dense.bias[0] += 1e-3
    changed.save_pretrained(tmp_path / "a")
    assert kd.fingerprint(tmp_path / "a") != before


def test_logits_cache_is_named_by_the_weights_and_what_the_sets_depend_on(tiny_teacher, monkeypatch, tmp_path):
    """Notebook 04 and code/studies/study_transfer_set.py find the teacher's labels by kd.logits_cache: the same
    teacher and sets give the same file; other sets or a retrained teacher another."""
    monkeypatch.setenv("KD_ARTIFACTS_DIR", str(tmp_path))
    smoke = kd.get_profile("smoke")
    tiny_teacher.save_pretrained(kd.artifact_path(smoke, "teacher-imdb"))
    first = kd.logits_cache(smoke, "teacher-imdb", 3000, 10000, 128, "unlabelled")
    assert first == kd.logits_cache(smoke, "teacher-imdb", 3000, 10000, 128, "unlabelled")
    assert first.parent == kd.artifacts_dir(smoke)
    assert kd.fingerprint(kd.saved_path(smoke, "teacher-imdb")) in first.name
    assert first != kd.logits_cache(smoke, "teacher-imdb", 3000, 10000, 128, "both")
    with torch.no_grad():
        tiny_teacher.bert.encoder.layer[0].output.dense.bias[0] += 1e-3
    tiny_teacher.save_pretrained(kd.artifact_path(smoke, "teacher-imdb"))
    assert first != kd.logits_cache(smoke, "teacher-imdb", 3000, 10000, 128, "unlabelled")


# --- metrics

@pytest.mark.parametrize("metric, preds, refs, key, expected", [
    (kd.Accuracy, [0, 1, 1, 0], [0, 1, 0, 0], "accuracy", 0.75),
    (kd.F1, [1, 1, 0, 0], [1, 0, 1, 0], "f1", 0.5),
    (kd.F1, [1, 1, 1, 0], [1, 1, 0, 0], "f1", 0.8),
    (kd.MatthewsCorrelation, [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 1], "matthews_correlation", 1 / 3),
    (kd.MatthewsCorrelation, [1, 0, 1, 0], [1, 0, 1, 0], "matthews_correlation", 1.0),
    (kd.MatthewsCorrelation, [1, 1, 1, 1], [1, 0, 1, 0], "matthews_correlation", 0.0),
])
def test_metrics_known_values(metric, preds, refs, key, expected):
    assert metric().compute(predictions=preds, references=refs)[key] == pytest.approx(expected)


# --- run records

def test_run_record_fields_and_profile_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("KD_RESULTS_DIR", str(tmp_path))
    cpu_record = tmp_path / "cpu" / "00_demo.json"
    cpu_record.parent.mkdir()
    cpu_record.write_text("{}")
    run = kd.Run(SMOKE, "00_demo", seeds={"torch": 1})
    kd.noted_split(run, "mrpc", "validation")
    path = run.save({"f1": 0.5})
    record = json.loads(path.read_text())
    assert path == tmp_path / "smoke" / "00_demo.json" and cpu_record.read_text() == "{}"
    assert {"schema", "profile", "notebook", "finished_at", "wall_seconds", "versions", "data", "seeds", "settings",
            "metrics"} <= set(record)
    assert (record["schema"], record["notebook"], record["settings"]["name"]) == (kd.SCHEMA, "00_demo", "smoke")
    assert record["data"]["mrpc/validation"]["rows"] == 120 and record["versions"]["torch"] == torch.__version__
    assert record["data"]["mrpc/validation"] == {"source": "nyu-mll/glue/mrpc", "local_mirror": True, "rows": 120}
    assert kd.load_record(SMOKE, "00_demo")["metrics"] == {"f1": 0.5}
    with pytest.raises(FileNotFoundError, match="run code/99_missing.ipynb"):
        kd.load_record(SMOKE, "99_missing")


# --- notebooks

NOTEBOOKS = sorted((kd.REPO / "code").glob("[0-9][0-9]_*.ipynb"))


def test_notebooks_share_one_setup_cell_and_carry_no_outputs():
    first_cells = set()
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        first_cells.add("".join(next(c for c in cells if c["cell_type"] == "code")["source"]))
        assert not any(c.get("outputs") or c.get("execution_count") for c in cells if c["cell_type"] == "code"), nb.name
    assert NOTEBOOKS and len(first_cells) == 1
