"""The t4 code path without a GPU: every notebook, in order, in the `t4-shapes` profile (t4's shapes and branches on
the CPU, fp16 off, data and steps cut to a handful; see kd.config). nbval runs them in `smoke`; this runs them again
as t4 would: a bert-base-shaped teacher that has its masked-LM head, 12 -> 6 layers, blocks of 256, accumulation 8,
512-token IMDb, the released-DistilBERT row, int8."""
import json

import kd
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((kd.REPO / "code").glob("0*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_t4_shapes(path, monkeypatch):
    monkeypatch.setenv("KD_PROFILE", "t4-shapes")  # the kernel inherits it
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    record = json.loads((kd.results_dir("t4-shapes") / f"{path.stem}.json").read_text())
    assert record["profile"] == "t4-shapes" and record["settings"]["teacher"] == "random-bert-base"
