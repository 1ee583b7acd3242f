"""The committed run records, results/<profile>/<notebook>.json, against the record schema (kd.SCHEMA).

The report, the poster and the README read these records by stable ids (kd.labels); a record with a missing key,
a display label where an id belongs, or a pre-formatted Markdown table fails here, not in a Typst build.
Read from the repository (kd.REPO / "results"), not kd.results_dir: conftest points that at a scratch folder.
"""
import dataclasses
import json
import statistics
from datetime import datetime
from numbers import Real

import kd
import pytest
from kd.labels import ABLATIONS, METRICS, MODELS, TASKS

RESULTS = kd.REPO / "results"
PROFILE_DIRS = sorted(p for p in RESULTS.iterdir() if p.is_dir())
RECORDS = sorted(p for d in PROFILE_DIRS for p in d.glob("*.json"))
PROFILE_FIELDS = {f.name for f in dataclasses.fields(kd.Profile)}
TASK_IDS = ["cola", "mrpc", "imdb"]
VERSIONS = {"python", "torch", "transformers", "datasets", "evaluate", "platform", "cpu_count", "torch_threads", "gpu",
            "precision"}


def rid(path):
    return f"{path.parent.name}/{path.stem}"


def load(path):
    return json.loads(path.read_text())


def number(x):
    return isinstance(x, Real) and not isinstance(x, bool)  # True is an int to Python, not a measurement here


def fraction(x):
    return number(x) and 0 <= x <= 1


def strings(value):
    """Every string in a record, keys included."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def test_there_are_records_to_check():
    """Guards the parametrised tests below against passing vacuously (e.g. if results/ moved)."""
    assert (RESULTS / "cpu").is_dir()
    assert {p.stem for p in (RESULTS / "cpu").glob("*.json")} == set(kd.NOTEBOOKS)  # the report needs all five


@pytest.mark.parametrize("path", RECORDS, ids=rid)
def test_records_hold_no_paths_of_the_machine_that_ran_them(path):
    """Where data and models came from is a hub id, "artifacts/<folder>" or a flag (local_mirror), never a folder of
    the machine: a record reads the same wherever it was made."""
    strings = []

    def walk(value):
        if isinstance(value, dict):
            [walk(v) for v in value.values()]
        elif isinstance(value, list):
            [walk(v) for v in value]
        elif isinstance(value, str):
            strings.append(value)

    walk(load(path))
    assert [s for s in strings if s.startswith(("/", "~")) or ":\\" in s] == []
    for info in load(path)["data"].values():
        assert isinstance(info["local_mirror"], bool) and not info["source"].startswith("hub:")


@pytest.mark.parametrize("path", RECORDS, ids=rid)
def test_top_level(path):
    r = load(path)
    assert set(r) == {"schema", "profile", "notebook", "finished_at", "wall_seconds", "versions", "code", "data",
                      "seeds", "settings", "metrics"}
    assert r["schema"] == kd.SCHEMA == 4 and r["profile"] == path.parent.name and r["notebook"] == path.stem
    assert path.stem in kd.NOTEBOOKS and path.parent.name in kd.PROFILES
    datetime.strptime(r["finished_at"], "%Y-%m-%dT%H:%M:%S%z")  # raises on another format
    assert number(r["wall_seconds"]) and r["wall_seconds"] > 0
    assert VERSIONS <= set(r["versions"]) and isinstance(r["versions"]["cpu_count"], int)
    assert r["versions"]["precision"] in ("fp32", "bf16", "fp16")  # what the Trainers computed in (kd.precision)
    assert isinstance(r["seeds"], dict) and isinstance(r["metrics"], dict)
    code = r["code"]  # which code ran (kd.code_version): a 16-hex digest of kd, and the commit where there was one
    assert set(code) == {"kd", "commit", "dirty"} and len(code["kd"]) == 16 and int(code["kd"], 16) >= 0
    assert code["commit"] is None or (len(code["commit"]) == 40 and isinstance(code["dirty"], bool))
    for key, info in r["data"].items():
        dataset, split = key.split("/")  # "<dataset>/<split>": exactly one slash
        assert dataset and split and isinstance(info["source"], str) and isinstance(info["rows"], int), key
    settings = r["settings"]
    assert set(settings) <= PROFILE_FIELDS, f"not Profile fields: {sorted(set(settings) - PROFILE_FIELDS)}"
    assert settings["name"] == r["profile"]
    if "task_kd" in settings:
        assert set(settings["task_kd"]) == {f.name for f in dataclasses.fields(kd.TaskKDConfig)}


@pytest.mark.parametrize("path", RECORDS, ids=rid)
def test_no_markdown_in_records(path):
    """Records hold numbers; tables are formatted by kd.tables (a Markdown table row starts with '|')."""
    assert not [s[:60] for s in strings(load(path)) if s.lstrip().startswith("|")]


def check_01(m):
    for key, kind in [("teacher", str), ("teacher_source", str), ("teacher_layers", int), ("student_layers", list),
                      ("head_fitted", bool), ("teacher_masked_acc", dict),
                      ("eval_masked_tokens", int)]:
        assert isinstance(m[key], kind), key
    assert all(isinstance(i, int) and 0 <= i < m["teacher_layers"] for i in m["student_layers"])
    stages = {"as_loaded", "frozen_encoder", "adapted"} if m["head_fitted"] else {"as_loaded"}
    assert set(m["teacher_masked_acc"]) == set(m["teacher_perplexity"]) == stages
    assert all(fraction(v) for v in m["teacher_masked_acc"].values()) and fraction(m["student_init_masked_acc"])
    assert number(m["student_init_perplexity"]) and number(m["all_layers_max_abs_diff"])
    for key in ("params", "params_with_mlm_head"):
        assert set(m[key]) == {"teacher", "student_init"} and all(isinstance(v, int) for v in m[key].values())


def check_02(m):
    for key in ("masked_acc", "perplexity"):
        assert set(m[key]) == {"teacher", "student_init", "student_distilled", "student_mlm"}, key
        assert all(number(v) for v in m[key].values())
    assert all(fraction(v) for v in m["masked_acc"].values())
    assert isinstance(m["eval_masked_tokens"], int) and isinstance(m["final_loss_terms"], dict)
    curves = m["loss_curves"]
    assert all(len(v) == len(curves["step"]) for v in curves.values())
    assert set(m["distill_config"]) == {f.name for f in dataclasses.fields(kd.DistillConfig)}
    for key in ("steps", "tokens_seen"):
        assert isinstance(m[key], int), key
    assert isinstance(m["stopped_by_time_budget"], bool)
    arms, n = m["arms"], m["eval_masked_tokens"]  # the triple loss and its no-teacher control, paired by seed
    assert set(arms) == set(kd.ARMS) and arms["triple"]["seeds"] == arms["mlm_only"]["seeds"]
    for arm, a in arms.items():
        assert len(a["masked_acc"]) == len(a["perplexity"]) == len(a["curves"]) == len(a["seeds"]) > 0, arm
        assert all(fraction(x) for x in a["masked_acc"]) and all(number(x) and x >= 1 for x in a["perplexity"])
        for curve in a["curves"]:  # held-out scores along the run, from step 0 to the last step
            assert curve[0]["step"] == 0 and curve[-1]["step"] == m["steps"] and len(curve) >= 2, arm
            assert curve[-1]["masked_acc"] == pytest.approx(a["masked_acc"][a["curves"].index(curve)]), arm
    assert arms["triple"]["masked_acc"][0] == m["masked_acc"]["student_distilled"]  # the first seed's is the model
    assert arms["mlm_only"]["masked_acc"][0] == m["masked_acc"]["student_mlm"]       # saved for notebook 03
    assert m["teacher_added"] == kd.lesson.teacher_added(arms, n)  # the record's verdicts are the one rule's
    ablation = m["ablation"]
    assert isinstance(ablation["steps"], int) and all(isinstance(s, int) for s in ablation["seeds"])
    assert set(ablation["masked_acc"]) <= set(ABLATIONS) and "triple" in ablation["masked_acc"]
    for row in ablation["masked_acc"].values():
        assert row["seeds"] == ablation["seeds"] and len(row["runs"]) == len(row["seeds"])
        assert all(fraction(v) for v in row["runs"]) and min(row["runs"]) <= row["mean"] <= max(row["runs"])
        assert number(row["std"]) and row["std"] >= 0


def check_03(m):
    assert set(m["headline_metric"]) == set(TASK_IDS) and set(m["headline_metric"].values()) <= set(METRICS)
    assert set(m["models"]) <= set(MODELS) and "teacher" in m["models"]
    assert all(isinstance(v, str) for v in m["models"].values())
    assert set(m["scores"]) == set(TASK_IDS) and set(m["tasks"]) == set(TASK_IDS) <= set(TASKS)
    for task, by_model in m["scores"].items():  # task KD (DistilBERT (D)) on kd.TASK_KD_TASKS only, as the paper
        expected = set(m["models"]) - ({"student_task_kd"} if task not in kd.TASK_KD_TASKS else set())
        assert set(by_model) == expected, task
        for model, s in by_model.items():
            where = f"{task}/{model}"
            assert all(isinstance(x, int) for x in s["seeds"]) and len(s["runs"]) == len(s["seeds"]) > 0, where
            for run in s["runs"]:
                assert set(run) <= set(METRICS) and all(number(v) for v in run.values()), where
            headline = [100 * run[m["headline_metric"][task]] for run in s["runs"]]  # the median is of these, x100
            assert s["median"] == pytest.approx(statistics.median(headline)), where
            assert s["range"] == pytest.approx([min(headline), max(headline)]), where
    assert set(m["retention"]) == set(m["models"]) - {"teacher"}
    for model, kept in m["retention"].items():
        tasks = [t for t in TASK_IDS if model in m["scores"][t]]
        assert set(kept) == set(tasks) | ({"mean"} if tasks == TASK_IDS else set()), model  # a mean of all or none
        for task in tasks:  # retention is student / teacher of the medians above (None: teacher <= 0)
            student, teacher = m["scores"][task][model]["median"], m["scores"][task]["teacher"]["median"]
            assert kept[task] == (pytest.approx(student / teacher) if teacher > 0 else None), f"{model}/{task}"
        present = [kept[t] for t in tasks if kept[t] is not None]
        if "mean" in kept:
            assert kept["mean"] == (pytest.approx(statistics.mean(present)) if present else None), model
    assert set(m["task_kd"]) == {f.name for f in dataclasses.fields(kd.TaskKDConfig)}
    for task in TASK_IDS:  # the settings that ran, and every comparison of kd.lesson.PAIRS_03 under the one rule
        assert {"lr", "epochs", "max_len", "train_rows", "eval_rows"} <= set(m["tasks"][task]), task
        assert set(m["comparisons"][task]) == {"teacher_vs_majority", *kd.lesson.PAIRS_03}, task
        for name, v in m["comparisons"][task].items():
            assert kd.noise.Verdict.from_dict(v).verdict in ("gain", "loss", "tie"), (task, name)
    for model in kd.config.FINETUNED:  # the paired models ran the same seeds on every task
        for task in TASK_IDS:
            assert m["scores"][task][model]["seeds"] == m["scores"][task]["teacher"]["seeds"], (task, model)


def check_04(m):
    assert fraction(m["teacher_accuracy"]) and isinstance(m["teacher_params"], int)
    assert m["table"], "no classic students"
    assert isinstance(m["workers"], int) and m["seeds"] and all(isinstance(s, int) for s in m["seeds"])
    for row in m["table"]:
        modes = [mode for mode in ("single", "distilled", "labelled_kd") if mode in row]
        assert modes[:2] == ["single", "distilled"], row  # labelled_kd: the control students only
        assert set(row) == {"id", "kind", "layers", "params", "precision",
                            *(f"{mode}{part}" for mode in modes for part in ("", "_runs", "_seconds"))}, row
        for mode in modes:  # every seed's run and seconds kept; the mode's number is the mean over seeds
            assert len(row[f"{mode}_runs"]) == len(m["seeds"]) and all(fraction(v) for v in row[f"{mode}_runs"])
            assert row[mode] == pytest.approx(sum(row[f"{mode}_runs"]) / len(m["seeds"]))
            assert len(row[f"{mode}_seconds"]) == len(m["seeds"]) and all(s > 0 for s in row[f"{mode}_seconds"])
        assert row["kind"] in kd.SmallStudent.KINDS and isinstance(row["layers"], int)
        assert row["id"] == f"{row['kind']}-{row['layers']}" and row["id"] in MODELS
        assert isinstance(row["params"], int) and fraction(row["single"]) and fraction(row["distilled"])
    latency = m["latency"]
    assert isinstance(latency["seq_len"], int) and isinstance(latency["runs"], int) and latency["batch"] == 1
    assert set(latency["ms"]) <= set(MODELS)
    missing = {"teacher", "student_distilled", "student_int8", *(r["id"] for r in m["table"])} - set(latency["ms"])
    assert not missing, f"latency lacks {sorted(missing)}"
    assert all(number(v) and v > 0 for v in latency["ms"].values())
    assert isinstance(m["max_len"], int) and isinstance(m["init_from_teacher"], bool)
    assert isinstance(m["trainer_overrides"], dict)
    t = m["transfer_set"]
    assert t["choice"] in ("unlabelled", "augmented", "both") and isinstance(t["augmented_rows"], int)
    assert (t["augmented_rows"] > 0) == (t["choice"] != "unlabelled")
    assert set(m["task_kd"]) == {f.name for f in dataclasses.fields(kd.TaskKDConfig)}
    assert m["control_students"] and set(m["controls"]) == {*m["control_students"], "pooled"}
    for row in m["table"]:  # the soft targets on the labelled reviews alone: exactly the control students
        assert ("labelled_kd" in row) == (row["id"] in m["control_students"]), row["id"]
    assert m["controls"] == kd.tables.classic_controls(m)  # the record's verdicts are the one rule's


def check_05(m):
    assert set(m["records"]) == set(kd.NOTEBOOKS[:4])
    for nb, r in m["records"].items():
        assert isinstance(r["finished_at"], str) and number(r["wall_seconds"]), nb
    assert number(m["course_minutes_01_04"])
    assert {"platform", "cpu_count", "gpu", "torch"} <= set(m["machine"])
    assert not {"paper_retention", "classic_gain"} & set(m)  # a constant and a derived value: computed where shown
    assert m["models"] and {r["id"] for r in m["models"]} <= set(MODELS)
    for r in m["models"]:
        assert set(r) == {"id", "params", "size_mb", "cpu_latency_ms", "imdb_accuracy"}, r
        assert isinstance(r["params"], int) and fraction(r["imdb_accuracy"])
        assert all(number(r[k]) and r[k] > 0 for k in ("size_mb", "cpu_latency_ms"))
    check = m["int8_check"]
    assert isinstance(check["eval_rows"], int) and fraction(check["fp32"]) and fraction(check["int8"])
    for who in ("ours", "paper"):
        assert number(m["size_speed"][who]["params"]) and number(m["size_speed"][who]["latency"])
    assert isinstance(m["latency_seq_len"], int) and isinstance(m["latency_runs"], int)


CHECKS = dict(zip(kd.NOTEBOOKS, [check_01, check_02, check_03, check_04, check_05]))


@pytest.mark.parametrize("path", RECORDS, ids=rid)
def test_metrics(path):
    CHECKS[path.stem](load(path)["metrics"])


@pytest.mark.parametrize("folder", PROFILE_DIRS, ids=lambda p: p.name)
def test_summary_agrees_with_the_records_it_summarises(folder):
    """Notebook 05 reads 01-04: its copy of their run times and of 04's latencies must be theirs (a rerun of 04
    without 05, or a second latency measurement, fails here)."""
    if not all((folder / f"{nb}.json").exists() for nb in kd.NOTEBOOKS):
        pytest.skip(f"{folder.name}: not every notebook has run")
    records = {nb: load(folder / f"{nb}.json") for nb in kd.NOTEBOOKS}
    summary = records["05_summary"]["metrics"]
    for nb, r in summary["records"].items():
        assert r == {"finished_at": records[nb]["finished_at"], "wall_seconds": records[nb]["wall_seconds"]}, nb
    minutes = sum(r["wall_seconds"] for r in summary["records"].values()) / 60
    assert summary["course_minutes_01_04"] == pytest.approx(minutes)
    latency = records["04_classic_kd_imdb"]["metrics"]["latency"]
    assert summary["latency_seq_len"] == latency["seq_len"] and summary["latency_runs"] == latency["runs"]
    for row in summary["models"]:  # one CPU clock: 05's latencies are 04's
        assert row["cpu_latency_ms"] == latency["ms"][row["id"]], row["id"]


@pytest.mark.parametrize("folder", PROFILE_DIRS, ids=lambda p: p.name)
def test_the_committed_records_are_one_run_of_the_course(folder):
    """One code version, profile and settings across the notebooks (kd.load_chain, as notebook 05 and the report)."""
    present = [nb for nb in kd.NOTEBOOKS if (folder / f"{nb}.json").exists()]
    assert kd.load_chain(folder.name, present, folder=folder)


@pytest.mark.parametrize("folder", PROFILE_DIRS, ids=lambda p: p.name)
def test_fine_tuned_teacher_is_the_one_the_student_learnt_from(folder):
    """Where notebook 01 fitted and adapted the teacher's masked-LM head, notebook 03 fine-tunes that teacher,
    not the checkpoint as downloaded: retention compares the student with its own teacher."""
    r1, r3 = (folder / f"{nb}.json" for nb in ("01_student_init", "03_finetune_glue_imdb"))
    if not (r1.exists() and r3.exists()):
        pytest.skip(f"{folder.name}: notebooks 01 and 03 have not both run")
    fitted = load(r1)["metrics"]["head_fitted"]
    assert load(r3)["metrics"]["models"]["teacher"].endswith("/teacher-mlm") == fitted


@pytest.mark.parametrize("folder", PROFILE_DIRS, ids=lambda p: p.name)
def test_figures_are_named_after_their_notebook(folder):
    figures = sorted(folder.glob("*.png"))
    for png in figures:
        assert any(png.name.startswith(f"{nb}_") for nb in kd.NOTEBOOKS), png.name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png.name
    assert figures or folder.name != "cpu"


def test_summary_tables_build_from_the_cpu_records():
    folder = RESULTS / "cpu"
    records = {nb: load(folder / f"{nb}.json") for nb in kd.NOTEBOOKS}
    tables = kd.tables.summary_tables(records, records["05_summary"]["metrics"])
    assert set(tables) == {"teacher", "retention", "size_speed", "models", "classic", "mlm", "ablation"}
    for name, table in tables.items():
        assert table["rows"], name
        for row in table["rows"]:
            assert len(row) == len(table["header"]), (name, row)
            assert all(isinstance(cell, str) for cell in row), (name, row)
    # the committed Markdown is what kd.tables makes of the committed records (fails if either is stale)
    assert kd.tables.tables_markdown(tables, "cpu") == (folder / "05_summary_tables.md").read_text()


def _write(tmp_path, folder, notebook, **fields):
    path = tmp_path / folder / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": kd.SCHEMA, "profile": folder, "notebook": notebook, "metrics": {}, **fields}))


def test_load_record_refuses_other_schema_or_profile(monkeypatch, tmp_path):
    monkeypatch.setenv("KD_RESULTS_DIR", str(tmp_path))
    _write(tmp_path, "smoke", "03_finetune_glue_imdb")
    assert kd.load_record("smoke", "03_finetune_glue_imdb")["metrics"] == {}  # a current one loads
    _write(tmp_path, "smoke", "03_finetune_glue_imdb", schema=kd.SCHEMA - 1)
    with pytest.raises(ValueError, match=rf"schema {kd.SCHEMA - 1}.*run code/03_finetune_glue_imdb\.ipynb again"):
        kd.load_record("smoke", "03_finetune_glue_imdb")
    _write(tmp_path, "smoke", "02_mlm_distillation", profile="cpu")  # e.g. copied from results/cpu
    with pytest.raises(ValueError, match=r"'cpu' run.*run code/02_mlm_distillation\.ipynb again"):
        kd.load_record(kd.get_profile("smoke"), "02_mlm_distillation")


def test_the_classic_table_judges_each_gain_by_the_one_rule_and_pools_them():
    row = {"id": "bilstm-1", "kind": "bilstm", "layers": 1, "params": 4_000_000, "single": 0.78, "distilled": 0.79,
           "single_runs": [0.77, 0.78, 0.79], "distilled_runs": [0.80, 0.77, 0.80]}
    steady = {**row, "id": "bilstm-2", "layers": 2, "single_runs": [0.77, 0.78, 0.79],
              "distilled_runs": [0.80, 0.81, 0.815], "distilled": 0.8083}
    nb04 = {"table": [row, steady], "teacher_params": 1, "teacher_accuracy": 0.83}
    v = kd.tables.classic_gain(row, 1000)
    assert v.diff == pytest.approx(1.0) and v.pairs == 3 and v.rule == "paired"  # differences +3, -1, +1 points
    assert v.margin == pytest.approx(4.303 * 2.0 / 3 ** 0.5, rel=1e-3) and v.verdict == "tie"
    rows = kd.tables.classic_table(nb04, 6, 1000)["rows"]
    assert rows[0][3] == "78.0 ± 1.0" and rows[0][5] == "+1.0 ± 5.0 (tie)"
    assert rows[1][5].endswith("(gain)")  # +3.0, +3.0, +2.5: steady differences, outside their interval
    pooled = kd.tables.classic_pooled(nb04)  # the students are the units: one pair each, their means over seeds
    assert rows[2][0] == "all 2 students pooled" and rows[2][5] == str(pooled) and pooled.pairs == 2
    assert pooled.diff == pytest.approx(100 * ((0.79 - 0.78) + (0.8083 - 0.78)) / 2)
    one_seed = {**row, "single_runs": [0.78], "distilled_runs": [0.79]}  # one run each: the test set's noise
    v1 = kd.tables.classic_gain(one_seed, 1000)
    assert v1.rule == "single" and v1.verdict == "tie" and v1.margin == pytest.approx(2 * 100 * (
        (0.79 * 0.21 + 0.78 * 0.22) / 1000) ** 0.5)


def test_retrain_time_quotes_the_committed_cpu_minutes_and_the_t4_estimate():
    record = kd.lesson.committed("04_classic_kd_imdb")
    said = kd.lesson.retrain_time("04_classic_kd_imdb")
    assert f"about {record['wall_seconds'] / 60:.0f} min on 2 CPU cores" in said
    hours = sorted(kd.budget.estimate(kd.PROFILES["t4"], end)["04_classic_kd_imdb"]["hours"] for end in ("low", "high"))
    assert f"{hours[0]:.1f}" in said and f"{hours[1]:.1f} h in the t4 profile" in said


def test_the_t4_budget_counts_every_seed_and_the_rewrites_of_notebook_04():
    from dataclasses import replace

    t4 = kd.PROFILES["t4"]
    one = kd.budget.estimate(replace(t4, classic_seeds=1))["04_classic_kd_imdb"]["hours"]
    three = kd.budget.estimate(replace(t4, classic_seeds=3))["04_classic_kd_imdb"]["hours"]
    students = len(kd.labels.CLASSIC_KINDS) * 2 * 2 + len(t4.classic_control)  # kinds x depths x modes + controls
    runs = students * (t4.classic_steps * kd.budget.SMALL_STEP_S + kd.budget.RUN_OVERHEAD_S) / 3600
    assert three - one == pytest.approx(2 * runs)
    plain = kd.budget.estimate(replace(t4, classic_transfer="unlabelled"))["04_classic_kd_imdb"]["hours"]
    assert kd.budget.estimate(t4)["04_classic_kd_imdb"]["hours"] > plain  # labelling the rewrites costs time


def _chain(tmp_path, **changed):
    """Records of notebooks 01-03 of one smoke run, then `changed` (notebook -> fields) written over them."""
    profile = kd.get_profile("smoke")
    now = {"code": kd.code_version(), "settings": json.loads(json.dumps(dataclasses.asdict(profile), default=float))}
    for nb in kd.NOTEBOOKS[:3]:
        _write(tmp_path, "smoke", nb, **{**now, **changed.get(nb, {})})
    return profile


def test_a_chain_of_records_from_one_code_and_profile_loads(monkeypatch, tmp_path):
    monkeypatch.setenv("KD_RESULTS_DIR", str(tmp_path))
    profile = _chain(tmp_path)
    assert list(kd.load_chain(profile, kd.NOTEBOOKS[:3], running=profile)) == kd.NOTEBOOKS[:3]


def test_a_chain_mixing_code_or_settings_is_refused_naming_the_notebooks(monkeypatch, tmp_path):
    monkeypatch.setenv("KD_RESULTS_DIR", str(tmp_path))
    other = {**kd.code_version(), "kd": "0" * 16}
    _chain(tmp_path, **{"03_finetune_glue_imdb": {"code": other}})
    with pytest.raises(ValueError, match=r"03_finetune_glue_imdb differ from 01_student_init in code.*Rerun "
                                         r"03_finetune_glue_imdb"):
        kd.load_chain("smoke", kd.NOTEBOOKS[:3])
    settings = {**dataclasses.asdict(kd.get_profile("smoke")), "classic_steps": 1}
    _chain(tmp_path, **{"02_mlm_distillation": {"settings": json.loads(json.dumps(settings, default=float))}})
    with pytest.raises(ValueError, match=r"02_mlm_distillation differ from 01_student_init in settings "
                                         r"\(classic_steps\)"):
        kd.load_chain("smoke", kd.NOTEBOOKS[:3])


def test_records_of_other_code_than_the_notebook_running_now_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("KD_RESULTS_DIR", str(tmp_path))
    other = {**kd.code_version(), "kd": "0" * 16}
    profile = _chain(tmp_path, **{nb: {"code": other} for nb in kd.NOTEBOOKS[:3]})
    assert kd.load_chain(profile, kd.NOTEBOOKS[:3])  # one chain, of other code
    with pytest.raises(ValueError, match=r"ran with other code or settings than this notebook runs now.*rerun "
                                         r"01_student_init, 02_mlm_distillation, 03_finetune_glue_imdb in order"):
        kd.load_chain(profile, kd.NOTEBOOKS[:3], running=profile)


def test_the_code_version_is_the_digest_of_every_kd_source_and_the_commit():
    import hashlib
    import subprocess

    digest = hashlib.sha256()
    for f in sorted((kd.REPO / "code" / "kd").glob("*.py")):
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    version = kd.code_version()
    assert version["kd"] == digest.hexdigest()[:16]
    head = subprocess.run(["git", "-C", str(kd.REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert version["commit"] == (head.stdout.strip() or None)


def test_the_teacher_imdb_accuracy_has_one_home():
    nb03 = {"tasks": {"imdb": {"eval_rows": 1000, "max_len": 128}},
            "scores": {"imdb": {"teacher": {"seeds": [1, 0], "runs": [{"accuracy": 0.81}, {"accuracy": 0.83}]}}}}
    assert kd.lesson.teacher_imdb_accuracy(nb03, kd.PROFILES["cpu"]) == 0.83  # seed 0: the model notebook 04 distils
    assert kd.lesson.teacher_imdb_accuracy(nb03, kd.PROFILES["t4"]) is None  # other reviews and length: measured in 04


def test_a_mixed_chain_is_named_as_mixed_when_the_notebook_also_checks_its_own_code(monkeypatch, tmp_path):
    monkeypatch.setenv("KD_RESULTS_DIR", str(tmp_path))
    other = {**kd.code_version(), "kd": "0" * 16}
    profile = _chain(tmp_path, **{"02_mlm_distillation": {"code": other}})
    with pytest.raises(ValueError, match=r"02_mlm_distillation differ from 01_student_init in code"):
        kd.load_chain(profile, kd.NOTEBOOKS[:3], running=profile)
