"""Colab as a learner meets it: the set-up cell (at most 6 lines, the same in every notebook), a clone that fails,
the installs and the one restart, Drive optional, results where the learner reads them, training data on the
runtime's disk, warnings whose fix installs a tested stack, and notebook 05's profile from the records found."""
import importlib.machinery
import json
import sys
import types

import kd
import kd.runtime
import pytest

NOTEBOOKS = sorted((kd.REPO / "code").glob("0*.ipynb"))


def setup_cell(notebook=NOTEBOOKS[0]) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def test_the_setup_cell_is_short_and_the_same_in_every_notebook():
    cells = {nb.name: setup_cell(nb) for nb in NOTEBOOKS}
    assert len(set(cells.values())) == 1, "the set-up cells differ"
    cell = next(iter(cells.values()))
    assert len(cell.splitlines()) <= 6 and max(map(len, cell.splitlines())) <= 110
    for line in cell.splitlines():  # locally the installed package: the path is touched on Colab only
        assert "sys.path" not in line or line.startswith('if "google.colab" in sys.modules'), line


@pytest.fixture
def colab(monkeypatch, tmp_path):
    """A pretend Colab: google.colab importable, the clone, Drive mounting, pip and the hub check recorded, no restart
    for real."""
    calls = types.SimpleNamespace(system=[], run=[], mounted=[], killed=[], hub=[], pip_stdout="", clone_rc=0,
                                  mount_error=None)
    fake = types.ModuleType("google.colab")

    def mount(path):
        if calls.mount_error:
            raise calls.mount_error
        calls.mounted.append(path)

    fake.drive = types.SimpleNamespace(mount=mount)
    google = types.ModuleType("google")
    for module in (fake, google):  # as imported modules have, for libraries that look a module's spec up
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", fake)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr("os.system", lambda command: calls.system.append(command) or calls.clone_rc)

    def run(command, **kwargs):
        calls.run.append(command)
        return types.SimpleNamespace(returncode=0, stdout=calls.pip_stdout, stderr="")

    monkeypatch.setattr("subprocess.run", run)
    monkeypatch.setattr("os.kill", lambda pid, signal: calls.killed.append(signal))
    monkeypatch.setattr("time.sleep", lambda s: None)
    monkeypatch.setattr(kd.runtime, "check_hub", lambda profile=None: calls.hub.append(profile))
    monkeypatch.setenv("KD_REPO_URL", "https://example.org/me/kd-bert-course.git")
    monkeypatch.delenv("KD_DRIVE", raising=False)
    return calls


@pytest.mark.parametrize("url", ["https://github.com/YOUR-ACCOUNT/kd-bert-course.git",
                                 "https://github.com/me/a-private-fork.git"])
def test_a_clone_that_fails_stops_with_the_url_and_the_fix(colab, monkeypatch, url):
    monkeypatch.setenv("KD_REPO_URL", url)
    colab.clone_rc = 128  # git's exit status for "repository not found" / no credentials
    with pytest.raises(SystemExit, match=f"Cannot clone {url}: set REPO_URL to the URL of your public copy"):
        exec(setup_cell(), {})
    assert colab.run == [] and colab.mounted == []  # nothing installed or mounted


@pytest.mark.parametrize("installed, restarts", [("", False), ("Successfully installed evaluate-0.4.9", True),
                                                 ("Successfully installed some-new-package-1.0", False)])
def test_setup_installs_colab_requirements_and_restarts_only_for_loaded_upgrades(colab, capsys, installed, restarts):
    colab.pip_stdout = installed
    import evaluate  # noqa: F401  (loaded, as a runtime that imported it would have it)

    exec(setup_cell(), {})
    assert "git clone" in colab.system[0] and sys.path[0] == "/content/kd/code"
    pip = [c for c in colab.run if "pip" in c]
    assert len(pip) == 1 and pip[0][-1].endswith("requirements-colab.txt")
    assert bool(colab.killed) == restarts
    if restarts:  # said before the restart: what happened and what to run next
        printed = capsys.readouterr().out
        assert "restarts now" in printed and "Runtime > Run all" in printed
    else:
        assert colab.mounted == ["/content/drive"] and colab.hub == [None]


def test_setup_prints_the_versions_and_the_gpu(colab, capsys):
    exec(setup_cell(), {})
    printed = capsys.readouterr().out
    for name in kd.runtime.CHECKED:
        assert f"{name} {kd.runtime.version(name)}" in printed
    assert "GPU: none" in printed and "WARNING" not in printed  # the tests' own stack is a tested one


@pytest.mark.parametrize("how", ["declined", "failed", "KD_DRIVE=0"])
def test_drive_is_optional(colab, monkeypatch, capsys, how):
    if how == "KD_DRIVE=0":
        monkeypatch.setenv("KD_DRIVE", "0")
    else:
        colab.mount_error = (ValueError("mount failed") if how == "failed"
                             else RuntimeError("credential propagation was unsuccessful"))
    exec(setup_cell(), {})  # no stop
    printed = capsys.readouterr().out
    assert "WARNING" in printed and "disconnect" in printed and "loses" in printed
    assert colab.mounted == [] and colab.hub == [None]  # the rest of the set-up ran


def test_drive_off_after_an_earlier_mount_uses_the_local_disk(monkeypatch, tmp_path):
    """KD_DRIVE=0 (or Drive gone) after a session that linked results/<profile> to Drive: the stale link is removed
    and the runtime's disk used; a dangling link stops nothing."""
    mydrive, clone = tmp_path / "MyDrive", tmp_path / "clone"
    mydrive.mkdir()
    monkeypatch.setattr(kd.records, "MYDRIVE", mydrive)
    monkeypatch.setattr(kd.records, "REPO", clone)
    monkeypatch.delenv("KD_RESULTS_DIR", raising=False)
    monkeypatch.delenv("KD_DRIVE", raising=False)
    assert kd.records._colab_drive() == mydrive / "kd-bert"
    linked = kd.records.results_dir("t4")
    assert linked.is_symlink() and linked.resolve() == (mydrive / "kd-bert" / "results" / "t4").resolve()
    monkeypatch.setenv("KD_DRIVE", "0")
    assert kd.records._colab_drive() is None
    local = kd.records.results_dir("t4")
    assert local == clone / "results" / "t4" and local.is_dir() and not local.is_symlink()
    local.rmdir()
    local.symlink_to(tmp_path / "gone", target_is_directory=True)  # Drive unmounted: a dangling link
    monkeypatch.delenv("KD_DRIVE")
    monkeypatch.setattr(kd.records, "MYDRIVE", tmp_path / "no-drive")
    assert kd.records.results_dir("t4").is_dir()


def test_results_on_drive_show_in_the_clone_and_a_committed_folder_is_kept(monkeypatch, tmp_path, capsys):
    drive, clone = tmp_path / "MyDrive" / "kd-bert", tmp_path / "clone"
    (clone / "results" / "cpu").mkdir(parents=True)
    (clone / "results" / "cpu" / "01_student_init.json").write_text("{}")  # a committed run
    monkeypatch.setattr(kd.records, "_colab_drive", lambda: drive)
    monkeypatch.setattr(kd.records, "REPO", clone)
    monkeypatch.delenv("KD_RESULTS_DIR", raising=False)
    t4 = kd.records.results_dir("t4")
    assert t4 == clone / "results" / "t4" and t4.is_symlink() and t4.resolve() == (drive / "results" / "t4").resolve()
    (t4 / "02_mlm_distillation.json").write_text("{}")
    assert (drive / "results" / "t4" / "02_mlm_distillation.json").exists()  # written once, kept on Drive
    committed = clone / "results" / "cpu"
    assert kd.records.results_dir("cpu") == committed  # notebook 05 reads the committed run, not an empty folder
    assert not committed.is_symlink() and (committed / "01_student_init.json").exists()
    assert "holds files of its own" in capsys.readouterr().out


def test_the_t4_profile_names_namespaced_hub_ids():
    t4 = kd.PROFILES["t4"]
    assert t4.teacher == "google-bert/bert-base-uncased"
    assert t4.released_student == "distilbert/distilbert-base-uncased"
    assert set(kd.budget.SHAPES) >= {t4.teacher, t4.released_student}


def test_training_data_is_read_from_a_local_copy_of_drive(monkeypatch, tmp_path):
    drive = tmp_path / "MyDrive" / "kd-bert"
    corpus = drive / "artifacts" / "t4" / "corpus" / "blocks"
    corpus.mkdir(parents=True)
    (corpus / "data.arrow").write_text("x")
    monkeypatch.setattr(kd.records, "_colab_drive", lambda: drive)
    monkeypatch.setenv("KD_LOCAL_DIR", str(tmp_path / "local"))
    copy = kd.records.local_copy(corpus)
    assert copy == tmp_path / "local" / "artifacts" / "t4" / "corpus" / "blocks" and (copy / "data.arrow").exists()
    assert kd.records.local_copy(tmp_path / "elsewhere") == tmp_path / "elsewhere"  # not on Drive: as it is
    again = tmp_path / "local2"  # a copy cut off earlier in this process leaves a partial folder: copied afresh
    monkeypatch.setenv("KD_LOCAL_DIR", str(again))
    half = again / "artifacts" / "t4" / "corpus" / f"blocks.partial-{__import__('os').getpid()}"
    half.mkdir(parents=True)
    assert (kd.records.local_copy(corpus) / "data.arrow").exists()


# --- versions: the floors are what CI tests, and a version outside gets a warning whose fix installs a tested stack

def test_requirement_floors_are_colabs_versions_which_ci_tests():
    ranges, colab = kd.runtime.tested_ranges(), kd.runtime.colab_pins()
    assert set(ranges) == set(kd.runtime.CHECKED)  # huggingface_hub and tokenizers are checked too
    for name in set(kd.runtime.CHECKED) - {"torch"}:
        floor = next(s.split(">=")[1] for s in ranges[name].split(",") if s.startswith(">="))
        assert tuple(map(int, floor.split("."))) == tuple(map(int, colab[name].split(".")))[:len(floor.split("."))]
    ci = (kd.REPO / ".ci" / "run").read_text()
    assert "constraints-colab.txt" in ci and "requirements.txt" in ci


def test_a_version_outside_the_tested_range_is_a_warning_naming_it_the_range_and_the_fix():
    ranges = {"transformers": ">=5.15,<6", "datasets": ">=4.0", "torch": ">=2.4"}
    ok = {"transformers": "5.15.0", "datasets": "4.4.1", "torch": "2.11.0+cu126"}
    assert kd.runtime.version_warnings(ok, ranges) == []
    assert kd.runtime.version_warnings({**ok, "transformers": "5.25.0.dev0"}, ranges) == []
    old, missing, torch_old = kd.runtime.version_warnings({"transformers": "5.12.0", "datasets": None,
                                                           "torch": "2.1.0"}, ranges)
    assert "transformers 5.12.0 is outside the tested range" in old and ">=5.15" in old and "<6" in old
    assert "restart" in old and "datasets is not installed" in missing
    assert "'torch>=2.4'" in torch_old  # not pinned by Colab's stack: its tested range
    assert kd.runtime.version_warnings({**ok, "transformers": "6.0.0"}, ranges)  # above the ceiling


def test_the_fix_installs_colabs_tested_stack():
    """The fix pins every package it names to constraints-colab.txt, the stack CI's second leg runs, which lies inside
    requirements.txt's ranges: what the learner installs is what the tests ran."""
    from packaging.specifiers import SpecifierSet

    ranges, pins = kd.runtime.tested_ranges(), kd.runtime.colab_pins()
    names = [n for n in kd.runtime.CHECKED if n != "torch"]
    fix = kd.runtime.fix_command(names, ranges)
    assert f"-c {kd.REPO / 'constraints-colab.txt'}" in fix
    for name in names:
        assert name in fix.split() and name in pins, name
        assert SpecifierSet(ranges[name]).contains(pins[name]), (name, pins[name], ranges[name])


# --- notebook 05 on a CPU runtime: no GPU asked, the profile from the records found

def test_notebook_05_asks_for_no_gpu_and_needs_no_hand_edit():
    nb = json.loads((kd.REPO / "code" / "05_summary.ipynb").read_text())
    assert "accelerator" not in nb["metadata"]
    assert "kd.summary_profile()" in "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    for other in NOTEBOOKS[:4]:  # the training notebooks keep asking for a GPU
        assert json.loads(other.read_text())["metadata"].get("accelerator") == "GPU"


def test_summary_profile_is_t4_when_its_records_are_there(monkeypatch, tmp_path):
    monkeypatch.delenv("KD_PROFILE", raising=False)
    monkeypatch.setenv("KD_RESULTS_DIR", str(tmp_path))
    assert kd.summary_profile() == "cpu"
    (tmp_path / "t4").mkdir(exist_ok=True)
    for nb in kd.NOTEBOOKS[:3]:
        (tmp_path / "t4" / f"{nb}.json").write_text("{}")
    assert kd.summary_profile() == "cpu"  # 04 missing: not a whole t4 run
    (tmp_path / "t4" / f"{kd.NOTEBOOKS[3]}.json").write_text("{}")
    assert kd.summary_profile() == "t4"
    monkeypatch.setenv("KD_PROFILE", "smoke")
    assert kd.summary_profile() == "smoke"
