"""The t4 code path without a GPU: every notebook, in order, in the `t4-shapes` profile (t4's shapes and branches on
the CPU, fp16 off, data and steps cut to a handful; see kd.config). nbval runs each notebook alone in `smoke`; this
runs them again as t4 would: a bert-base-shaped teacher that has its masked-LM head, 12 -> 6 layers, blocks of 256,
accumulation 8, 512-token IMDb, the released-DistilBERT row, int8. One kernel runs the five notebooks one after the
other (nbval already proves each stands alone): torch and transformers are imported once, not five times."""
import json

import kd
import kd.figures
import nbformat
from nbclient import NotebookClient

NOTEBOOKS = sorted((kd.REPO / "code").glob("0*.ipynb"))


def test_every_notebook_runs_in_t4_shapes(monkeypatch, tmp_path):
    monkeypatch.setenv("KD_PROFILE", "t4-shapes")  # the kernel inherits it
    course = nbformat.v4.new_notebook(metadata=nbformat.read(NOTEBOOKS[0], as_version=4).metadata)
    for path in NOTEBOOKS:
        course.cells += nbformat.read(path, as_version=4).cells
    for i, cell in enumerate(course.cells):  # each notebook numbers its cells from 0: one course, unique ids
        cell.id = f"course-{i:03d}"
    NotebookClient(course, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS[0].parent)}}).execute()
    for path in NOTEBOOKS:
        record = json.loads((kd.results_dir("t4-shapes") / f"{path.stem}.json").read_text())
        assert record["profile"] == "t4-shapes" and record["settings"]["teacher"] == "random-bert-base", path.stem
    scores = json.loads((kd.results_dir("t4-shapes") / "03_finetune_glue_imdb.json").read_text())["metrics"]["scores"]
    assert all("distilbert_released" in by_model for by_model in scores.values())  # t4's reference row ran too
    redrawn = kd.figures.redraw("t4-shapes", folder=tmp_path)  # every figure again, from the records alone
    assert redrawn["01_student_init_head_fit.png"] == kd.figures.NOTHING  # t4: BERT has its head, nothing fitted
    assert {f: s for f, s in redrawn.items() if s not in ("drawn", kd.figures.NOTHING)} == {}
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(f for f, s in redrawn.items() if s == "drawn")
