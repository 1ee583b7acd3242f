"""Test settings, applied before anything is collected, so the notebook kernels nbval starts inherit them:
the `smoke` profile, no network, and throw-away results/ and artifacts/ folders (committed results stay untouched)."""
import os
import tempfile
from pathlib import Path

import pytest

_scratch = Path(tempfile.mkdtemp(prefix="kd-tests-"))
os.environ.update(KD_PROFILE="smoke", KD_RESULTS_DIR=str(_scratch / "results"),
                  KD_ARTIFACTS_DIR=str(_scratch / "artifacts"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                  TOKENIZERS_PARALLELISM="false")
if "PYTEST_XDIST_WORKER" in os.environ:  # pytest -n 2: two workers on two cores, one thread each (two each: 4x slower)
    os.environ["OMP_NUM_THREADS"] = "1"
for var in ("KD_DATA_ROOT", "KD_MODEL_ROOT", "KD_CPU_BF16"):  # tests read only what the repository ships; the
    # precision is the machine's (auto) unless a test forces a path (the cpu_precision fixture)
    os.environ.pop(var, None)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Unit tests use tiny matrices: a second thread only contends with the rest of a shared machine (10x slower
    when it is busy). Imported here, after the settings above; the notebooks under nbval keep their threads."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=["fp32", "bf16"])
def cpu_precision(request, monkeypatch):
    """Both CPU precision paths on every machine, whatever it computes natively: KD_CPU_BF16 forced to 0, then 1.
    bf16 autocast computes the same thing on a CPU without native bf16, only slower: tests using this stay tiny."""
    monkeypatch.setenv("KD_CPU_BF16", {"fp32": "0", "bf16": "1"}[request.param])
    return request.param


def pytest_sessionfinish(session, exitstatus):
    """The scratch folders go when the tests end: the t4-shapes notebooks leave gigabytes of bert-base-sized models."""
    import shutil

    shutil.rmtree(_scratch, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # the group marks are set before xdist reads them
def pytest_collection_modifyitems(items):
    """`pytest -n 2 --dist loadgroup` (pytest-xdist) runs the tests on two workers. The notebooks under nbval hand
    each other their models through artifacts/, so they share one worker, in order; the long t4-shapes course
    goes first, so the other worker takes everything else meanwhile."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group("notebooks"))
    items.sort(key=lambda item: item.path.name != "test_t4_shapes.py")  # stable: the rest keep their order
