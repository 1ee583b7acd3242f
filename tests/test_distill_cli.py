"""`python -m kd.distill_mlm`: notebook 02's distillation as a command, under torchrun with 2 CPU processes (gloo)."""
import dataclasses
import json
import os
import subprocess
import sys

import kd
import pytest

SMOKE = kd.get_profile("smoke")


def launch(out, steps, env, processes=2):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "kd.distill_mlm", "--profile", "smoke", "--steps", str(steps), "--out", str(out)]
    done = subprocess.run(command, cwd=kd.REPO / "code", env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert OPEN_AT_EXIT not in done.stderr  # an open gloo group at exit can abort the process, now and then
    return done.stdout


OPEN_AT_EXIT = "process group still open at exit"
EXIT_HOOK = f"""import atexit, sys


def _open_group():  # runs after the program's own exit handlers: is torch.distributed's group closed by then?
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        print({OPEN_AT_EXIT!r}, file=sys.stderr)


atexit.register(_open_group)
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The smoke teacher with a masked-LM head saved where the command looks for notebook 01's (no head fit needed)."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    hook = tmp_path_factory.mktemp("hook")  # a sitecustomize that reports a process group left open at exit
    (hook / "sitecustomize.py").write_text(EXIT_HOOK)
    env = {**os.environ, "KD_ARTIFACTS_DIR": str(artifacts), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}
    teacher, tokenizer, _ = kd.load_masked_lm(kd.teacher_source(SMOKE))
    teacher.save_pretrained(artifacts / "smoke" / "teacher-mlm")
    tokenizer.save_pretrained(artifacts / "smoke" / "teacher-mlm")
    return env


def test_two_processes_write_one_record_and_resume(env, tmp_path):
    out = tmp_path / "run"
    notebooks = kd.results_dir(SMOKE) / "02_mlm_distillation.json"
    before = notebooks.read_bytes() if notebooks.exists() else None
    printed = launch(out, 4, env)
    assert printed.count("record:") == 1  # process 0 alone reports and writes
    record = json.loads((out / "02_mlm_distillation.json").read_text())
    m = record["metrics"]
    assert record["schema"] == kd.SCHEMA and record["profile"] == "smoke"
    assert (m["steps"], m["processes"]) == (4, 2)
    assert m["blocks_per_step"] == SMOKE.distill_batch * SMOKE.distill_accum * 2  # batch x accumulation x processes
    assert m["tokens_seen"] == 4 * m["blocks_per_step"] * SMOKE.block_size
    assert {"teacher", "student_init", "student_distilled"} == set(m["masked_acc"])
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-4", "settings.json"]
    assert (out / "student-distilled" / "config.json").exists()
    assert (notebooks.read_bytes() if notebooks.exists() else None) == before  # the notebook's record is untouched

    launch(out, 6, env)  # the same command with more steps continues from checkpoint-4
    state = json.loads((out / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3, 4, 5, 6]  # 1-4 not redone
    assert json.loads((out / "02_mlm_distillation.json").read_text())["metrics"]["steps"] == 6


def test_help_names_every_option():
    done = subprocess.run([sys.executable, "-m", "kd.distill_mlm", "--help"], cwd=kd.REPO / "code",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for option in ("--out", "--profile", "--steps", "--minutes", "--batch", "--accum", "--corpus", "--hub-corpus",
                   "--temperature", "--alpha-ce", "--alpha-mlm", "--alpha-cos", "--masked-only"):
        assert option in done.stdout
    assert "torchrun --nproc_per_node" in done.stdout


def test_loss_flags_override_the_profiles_triple_loss(env, tmp_path):
    """The flags reach the run: the record's triple loss is the overridden one, the rest the profile's."""
    from kd import distill_mlm

    args = distill_mlm.parse_args(["--out", "x", "--temperature", "4", "--alpha-ce", "0"])
    assert (args.temperature, args.alpha_ce, args.alpha_mlm, args.masked_only) == (4.0, 0.0, None, None)
    command = [sys.executable, "-m", "kd.distill_mlm", "--profile", "smoke", "--steps", "1", "--out", str(tmp_path),
               "--temperature", "4", "--alpha-ce", "0"]
    done = subprocess.run(command, cwd=kd.REPO / "code", env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ran = json.loads((tmp_path / "02_mlm_distillation.json").read_text())["metrics"]["distill_config"]
    assert ran == {**dataclasses.asdict(SMOKE.distill), "temperature": 4.0, "alpha_ce": 0.0}


def test_corpus_choices_are_masked_lm_corpora_of_the_data_module():
    from kd import data, distill_mlm

    assert set(distill_mlm.CORPORA) <= set(data.DATASETS)
