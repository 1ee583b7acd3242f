"""kd.hub_check against a fake hub: what a t4 run loads resolves, and each way it does not is named with its fix.
Offline: the fake serves the metadata calls the module makes (dataset_info, list_repo_files, model_info)."""
import dataclasses
from types import SimpleNamespace

import httpx
import huggingface_hub.errors as hub_errors
import pytest

from kd import hub_check
from kd.config import PROFILES

T4 = dataclasses.replace(PROFILES["t4"], teacher="google-bert/bert-base-uncased",
                         released_student="distilbert/distilbert-base-uncased")


def _parquet(config, splits, shards=1):
    return [f"{config}/{s}-{i:05d}-of-{shards:05d}.parquet" for s in splits for i in range(shards)]


DATASETS = {  # the hub's parquet layout (main branch) of the repos kd.data.DATASETS names
    "nyu-mll/glue": ["README.md", *_parquet("cola", ("train", "validation", "test")),
                     *_parquet("mrpc", ("train", "validation", "test")), *_parquet("sst2", ("train", "test"))],
    "stanfordnlp/imdb": ["README.md", *_parquet("plain_text", ("train", "test", "unsupervised"))],
    "Salesforce/wikitext": ["README.md", *_parquet("wikitext-103-raw-v1", ("train",), shards=2),
                            *_parquet("wikitext-103-raw-v1", ("validation", "test")),
                            *_parquet("wikitext-2-v1", ("train", "validation", "test"))],
}
MODEL_FILES = [".gitattributes", "config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5",
               "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
MODELS = {"google-bert/bert-base-uncased": MODEL_FILES, "distilbert/distilbert-base-uncased": MODEL_FILES}


def hub_error(name):
    """The installed huggingface_hub's exception class (its __init__ wants an HTTP response: skipped)."""
    cls = getattr(hub_errors, name)
    return cls.__new__(cls, f"404 Client Error ({name})")


class FakeApi:
    """HfApi's metadata calls over the layout above; `renamed`: asked id -> the id the hub reports; `error`: raised by
    every call. `calls` records what was asked."""

    def __init__(self, datasets=None, models=None, renamed=None, error=None):
        self.datasets, self.models = datasets or DATASETS, models or MODELS
        self.renamed, self.error, self.calls = renamed or {}, error, []

    def _ask(self, method, repo_id, repos):
        self.calls.append((method, repo_id))
        if self.error is not None:
            raise self.error
        if repo_id not in repos:
            raise hub_error("RepositoryNotFoundError")

    def dataset_info(self, repo_id, **kwargs):
        self._ask("dataset_info", repo_id, self.datasets)
        return SimpleNamespace(id=self.renamed.get(repo_id, repo_id))

    def list_repo_files(self, repo_id, *, repo_type=None, **kwargs):
        assert repo_type == "dataset"
        self._ask("list_repo_files", repo_id, self.datasets)
        return list(self.datasets[repo_id])

    def model_info(self, repo_id, **kwargs):
        self._ask("model_info", repo_id, self.models)
        return SimpleNamespace(id=self.renamed.get(repo_id, repo_id),
                               siblings=[SimpleNamespace(rfilename=f) for f in self.models[repo_id]])


class NoApi:
    """Any call fails the test: a local profile has nothing to ask the hub."""

    def __getattr__(self, name):
        raise AssertionError(f"the hub was asked ({name}) for a local profile")


@pytest.fixture(autouse=True)
def hub_sources(monkeypatch):
    """Data and models from the hub, whatever the machine's environment says."""
    for var in ("KD_DATA_ROOT", "KD_MODEL_ROOT"):
        monkeypatch.delenv(var, raising=False)


def test_complete_layout_resolves(capsys):
    api = FakeApi()
    assert hub_check.check(T4, api) == []
    assert sorted(repo for method, repo in api.calls if method == "list_repo_files") == sorted(DATASETS)  # once each
    assert hub_check.report(T4, FakeApi()) is True
    out = capsys.readouterr().out
    assert "MISSING" not in out
    for line in ("ok  dataset Salesforce/wikitext wikitext-103-raw-v1: train, validation",
                 "ok  dataset stanfordnlp/imdb plain_text: test, train, unsupervised",
                 "ok  dataset nyu-mll/glue cola: train, validation", "ok  dataset nyu-mll/glue mrpc: train, validation",
                 "ok  model google-bert/bert-base-uncased: config.json, model.safetensors, tokenizer.json",
                 "ok  model distilbert/distilbert-base-uncased: config.json, model.safetensors, tokenizer.json"):
        assert line in out


def test_missing_config_is_named():
    layout = {**DATASETS, "Salesforce/wikitext": [f for f in DATASETS["Salesforce/wikitext"]
                                                  if not f.startswith("wikitext-103-raw-v1/")]}
    [problem] = hub_check.check(T4, FakeApi(datasets=layout))
    assert "Salesforce/wikitext" in problem and "wikitext-103-raw-v1" in problem and "config not in the repo" in problem
    assert "configs there: wikitext-2-v1" in problem and "Fix: " in problem and "kd.data.DATASETS" in problem


def test_missing_split_is_named():
    layout = {**DATASETS, "stanfordnlp/imdb": [f for f in DATASETS["stanfordnlp/imdb"] if "unsupervised" not in f]}
    [problem] = hub_check.check(T4, FakeApi(datasets=layout))
    assert "stanfordnlp/imdb plain_text: no split unsupervised" in problem and "splits there: test, train" in problem


@pytest.mark.parametrize("kind, asked, now", [
    ("model", "google-bert/bert-base-uncased", "google-bert/bert-base-uncased-v2"),
    ("dataset", "stanfordnlp/imdb", "stanford/imdb")])
def test_renamed_repo_names_both_ids(kind, asked, now):
    [problem] = hub_check.check(T4, FakeApi(renamed={asked: now}))
    assert problem.startswith(f"{kind} {asked}: renamed") and f"now calls it {now}" in problem
    assert ("kd.config.PROFILES['t4'].teacher" if kind == "model" else "kd.data.DATASETS") in problem


@pytest.mark.parametrize("error", [ConnectionError("no route"), httpx.ConnectError("boom"), OSError("DNS"),
                                   httpx.ReadTimeout("slow"), hub_errors.OfflineModeIsEnabled("offline"),
                                   type("ReadTimeoutError", (Exception,), {})("slow")], ids=type)
def test_network_failure_says_the_hub_could_not_be_reached(error):
    api = FakeApi(error=error)
    problems = hub_check.check(T4, api)
    assert len(api.calls) == 1  # found unreachable once: the other items are not each left to time out
    assert [p.split(":")[0] for p in problems] == [
        "dataset Salesforce/wikitext (wikitext-103-raw-v1)", "dataset nyu-mll/glue (cola, mrpc)",
        "dataset stanfordnlp/imdb (plain_text)", "model google-bert/bert-base-uncased",
        "model distilbert/distilbert-base-uncased"]
    for p in problems:
        assert "the hub could not be reached. Fix: check the runtime's internet connection" in p
        assert "KD_DATA_ROOT and KD_MODEL_ROOT" in p


@pytest.mark.parametrize("name", ["RepositoryNotFoundError", "GatedRepoError"])
def test_not_found_is_not_a_network_failure(name):
    models = {"google-bert/bert-base-uncased": MODEL_FILES}
    api = FakeApi(models=models)
    [problem] = hub_check.check(T4, api)
    assert problem.startswith("model distilbert/distilbert-base-uncased: not found on the hub (renamed, private or")
    assert "kd.config.PROFILES['t4'].released_student" in problem
    api = FakeApi(error=hub_error(name))
    problems = hub_check.check(T4, api)
    assert len(problems) == 5 and all("not found on the hub" in p for p in problems)
    assert len(api.calls) == 5  # not taken for a network failure: every repo asked


def test_incomplete_model_repo():
    models = {**MODELS, "distilbert/distilbert-base-uncased": ["config.json", "tf_model.h5", "vocab.txt"]}
    [problem] = hub_check.check(T4, FakeApi(models=models))
    assert problem.startswith("model distilbert/distilbert-base-uncased: lacks weights (model.safetensors or "
                              "pytorch_model.bin). Fix:")


def test_bare_id_flagged_without_asking_the_hub():
    api = FakeApi(models={**MODELS, "bert-base-uncased": MODEL_FILES})
    [problem] = hub_check.check(dataclasses.replace(T4, teacher="bert-base-uncased"), api)
    assert problem.startswith("model bert-base-uncased: bare single-segment id; huggingface_hub's HfFileSystem")
    assert "google-bert/bert-base-uncased" in problem
    assert ("model_info", "bert-base-uncased") not in api.calls


@pytest.mark.parametrize("name", ["smoke", "t4-shapes"])
def test_local_profile_checks_nothing(name, capsys):
    assert hub_check.report(PROFILES[name], NoApi()) is True
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok  datasets ") and lines[0].endswith("local: nothing to check on the hub")
    assert all(line.endswith("local: nothing to check on the hub") for line in lines[:-1])
    assert lines[-1] == f"{name}: everything the profile loads resolves"


def test_local_data_root_still_checks_hub_models(monkeypatch, tmp_path):
    monkeypatch.setenv("KD_DATA_ROOT", str(tmp_path))
    api = FakeApi()
    assert hub_check.check(T4, api) == []
    assert [method for method, _ in api.calls] == ["model_info", "model_info"]


def test_main_exit_code(monkeypatch, capsys):
    monkeypatch.setitem(PROFILES, "t4", T4)
    assert hub_check.main(["--profile", "t4"], api=FakeApi()) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "t4: everything the profile loads resolves"
    assert hub_check.main(["--profile", "t4"], api=FakeApi(error=ConnectionError("down"))) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("MISSING dataset Salesforce/wikitext") and out[-1].startswith("t4: 5 of 5 missing")
    monkeypatch.setenv("KD_PROFILE", "smoke")  # the default: $KD_PROFILE
    assert hub_check.main([], api=NoApi()) == 0
