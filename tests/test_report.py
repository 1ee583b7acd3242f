"""The report, the poster and the README's results section: built from the committed `cpu` run records, offline."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CPU_RESULTS = REPO / "results" / "cpu"
spec = importlib.util.spec_from_file_location("build", REPO / "report" / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)


def pages(pdf: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))


def test_report_and_poster_build_from_records(tmp_path):
    built = build.build("cpu", out_dir=tmp_path, results=CPU_RESULTS)
    assert set(built) == {"report", "poster"}  # a build into another folder leaves the README alone
    assert pages(built["poster"]) == 1
    assert pages(built["report"]) >= 4
    assert all(path.read_bytes().startswith(b"%PDF") for path in built.values())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both documents built once from the committed cpu records, and the tables they print (kd.tables)."""
    out = tmp_path_factory.mktemp("built")
    pdfs = build.build("cpu", out_dir=out, results=CPU_RESULTS)
    return pdfs, build.summary_tables(build.load_records(CPU_RESULTS, "cpu"))


def page_spans(pdf: Path) -> list[list[dict]]:
    """Every run of text in a PDF with its font, size and box (PyMuPDF), page by page."""
    import pymupdf

    with pymupdf.open(pdf) as doc:
        return [[span for block in page.get_text("dict")["blocks"] for line in block.get("lines", [])
                 for span in line["spans"] if span["text"].strip()] for page in doc]


def spans(pdf: Path) -> list[dict]:
    """Every run of text in a PDF, all pages together."""
    return [span for page in page_spans(pdf) for span in page]


def table_sizes(pdf: Path, tables: list[dict]) -> tuple[list[float], int]:
    """The font sizes of the spans that print a number cell of these tables whole ("+0.3 ± 0.3", "85.5%": text that
    only a table prints), and how many such cells there are."""
    cells = {c.strip() for t in tables for row in t["rows"] for c in row if len(c.strip()) > 2 and any(
        ch.isdigit() for ch in c)}  # not "2": a superscript in the text prints that too
    found = [s["size"] for s in spans(pdf) if s["text"].strip() in cells]
    return found, len(cells)


def body_size(pdf: Path) -> float:
    """The size most of a document's characters are set in."""
    counts: dict[float, int] = {}
    for s in spans(pdf):
        counts[round(s["size"], 1)] = counts.get(round(s["size"], 1), 0) + len(s["text"])
    return max(counts, key=counts.get)


def test_every_table_on_the_poster_prints_at_the_body_size_or_larger(built):
    pdfs, tables = built
    body = body_size(pdfs["poster"])
    shown = [tables[name] for name in ("teacher", "ablation", "retention", "classic")]
    sizes, cells = table_sizes(pdfs["poster"], shown)
    assert len(sizes) >= cells / 2, f"the poster's tables were not found in its text ({len(sizes)} of {cells})"
    assert body >= 24 and min(sizes) >= body - 0.1, (body, sorted(sizes)[:5])


def test_every_table_in_the_report_prints_at_9_pt_or_larger(built):
    pdfs, tables = built
    sizes, cells = table_sizes(pdfs["report"], list(tables.values()))
    assert len(sizes) >= cells / 2, f"the report's tables were not found in its text ({len(sizes)} of {cells})"
    assert min(sizes) >= 9 - 0.05, sorted(sizes)[:5]


def header_lines(pdf: Path, size: float) -> list[tuple[int, int]]:
    """(page, lines) of every table header: the bold text set at a table's size, in bands of lines 14 pt apart or
    closer (a header's own lines; the next table's header is further down)."""
    out = []
    for number, page in enumerate(page_spans(pdf), start=1):
        ys = sorted({round(s["bbox"][1]) for s in page if "Bold" in s["font"] and abs(s["size"] - size) < 0.3})
        bands = []
        for y in ys:
            if bands and y - bands[-1][-1] <= 14:
                bands[-1].append(y)
            else:
                bands.append([y])
        out += [(number, len(band)) for band in bands]
    return out


def test_every_table_header_in_the_report_takes_two_lines_at_most(built):
    headers = header_lines(built[0]["report"], 9.0)
    assert len(headers) >= 5, f"the report's table headers were not found: {headers}"
    assert all(lines <= 2 for _, lines in headers), f"(page, lines) of each header: {headers}"


def test_no_figure_in_the_report_or_the_poster_is_a_bitmap(built):
    """Figures go in as vector graphics (the SVG beside each PNG): sharp at any print size."""
    import pymupdf

    for name, pdf in built[0].items():
        with pymupdf.open(pdf) as doc:
            bitmaps = [(page.number + 1, image[7]) for page in doc for image in page.get_images(full=True)]
        assert not bitmaps, f"{name}: bitmaps on pages {bitmaps}"


def test_build_imports_no_torch(tmp_path):
    """report/build.py needs only kd's torch-free modules (config, records, labels, tables): building the documents
    on a machine without torch works, and is quick. A fresh interpreter, so no other test's import counts."""
    script = f"""
import runpy, sys
sys.argv = ["build.py", "--out", {str(tmp_path)!r}]
try:
    runpy.run_path({str(REPO / "report" / "build.py")!r}, run_name="__main__")
finally:
    heavy = sorted(m for m in ("torch", "transformers", "datasets", "evaluate") if m in sys.modules)
    print("imported:", heavy)
"""
    env = {k: v for k, v in os.environ.items() if k != "KD_RESULTS_DIR"}  # read the committed results/
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert "imported: []" in run.stdout, run.stdout
    assert (tmp_path / "report-cpu.pdf").exists() and (tmp_path / "poster-cpu.pdf").exists()


def test_build_without_records_names_the_notebook_and_writes_nothing(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for nb in build.NEEDS[:-1]:  # everything but notebook 05's record
        (results / f"{nb}.json").write_text((CPU_RESULTS / f"{nb}.json").read_text())
    with pytest.raises(FileNotFoundError, match=r"code/05_summary\.ipynb in profile 'cpu'"):
        build.build("cpu", out_dir=tmp_path / "out", results=results)
    assert not (tmp_path / "out").exists()


def test_build_rejects_an_old_schema_record(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for nb in build.NEEDS:
        record = json.loads((CPU_RESULTS / f"{nb}.json").read_text())
        if nb == "02_mlm_distillation":
            record["schema"] = 1  # written before the stable ids: its keys are display labels
        (results / f"{nb}.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"run code/02_mlm_distillation\.ipynb again"):
        build.build("cpu", out_dir=tmp_path / "out", results=results)
    assert not (tmp_path / "out").exists()


def test_readme_results_are_the_records():
    """The README shows exactly what report/build.py writes from results/cpu/ (run it after a new cpu run)."""
    records = build.load_records(CPU_RESULTS, "cpu")
    assert build.readme_results(records) in (REPO / "README.md").read_text()


def test_readme_budget_is_the_estimate():
    """The README's Colab budget is kd.budget's estimate for the t4 profile (run report/build.py after changing it)."""
    assert build.readme_budget() in (REPO / "README.md").read_text()


def test_every_number_in_the_readme_results_is_in_a_record():
    """A second, independent check: each number in the README's results section appears in a run record or in
    kd.labels.REFERENCES (other people's numbers), as recorded, x100, or rounded as the tables print it; a retyped
    or stale number fails."""
    readme = (REPO / "README.md").read_text()
    section = readme.split(build.BEGIN, 1)[1].split(build.END, 1)[0]
    section = re.sub(r"\]\([^)]*\)|`[^`]*`|\([^)]*Linux[^)]*\)", "", section)  # links, code names, the platform string
    known = set()

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            for x in (value, 100 * value, value / 1e6, value / 60):
                for digits in range(4):
                    known.add(f"{abs(x):.{digits}f}")  # the README's signs are compared apart (lstrip)
        elif isinstance(value, str):
            known.update(re.findall(r"\d+(?:\.\d+)?", value))

    for record in CPU_RESULTS.glob("0[1-5]_*.json"):
        walk(json.loads(record.read_text()))
    walk(build.kd.labels.REFERENCES)
    records = build.load_records(CPU_RESULTS, "cpu")  # values derived where they are shown, not recorded:
    walk(build.kd.tables.derived(records))  # the paper's retention, the classic gains
    models = records["05_summary"]["metrics"]["models"]  # and the speed-ups, teacher ms / model ms
    teacher_ms = next(m["cpu_latency_ms"] for m in models if m["id"] == "teacher")
    walk([teacher_ms / m["cpu_latency_ms"] for m in models])
    numbers = re.findall(r"(?<![\w.])[-+]?\d+(?:\.\d+)?", section)
    assert numbers, "the README has no results section"
    notebook_numbers = {f"{i:02d}" for i in range(1, 6)} | {str(i) for i in range(1, 6)}
    unknown = sorted({n.lstrip("+-") for n in numbers} - known - notebook_numbers)
    assert not unknown, f"numbers in the README's results that no run record holds: {unknown}"


def test_the_reports_noise_margins_follow_the_one_rule():
    """The report calls a masked-LM or task-KD difference a tie inside kd.noise's margin for one run each: twice the
    combined standard error of two shares on the same items; here from the committed records."""
    import math

    import kd

    assert kd.noise.single(0.5, 0.9, kd.noise.share_se(0.5, 400), kd.noise.share_se(0.9, 400)).margin == \
        pytest.approx(2 * math.sqrt(0.25 / 400 + 0.09 / 400))
    records = {nb: kd.load_record("cpu", nb, kd.REPO / "results" / "cpu") for nb in kd.NOTEBOOKS}
    d, m02 = kd.tables.derived(records), records["02_mlm_distillation"]["metrics"]
    acc, n = m02["masked_acc"], m02["eval_masked_tokens"]
    assert d["mlm_margin"] == pytest.approx(2 * math.hypot(kd.noise.share_se(acc["teacher"], n),
                                                           kd.noise.share_se(acc["student_distilled"], n)))
    assert set(d["ablation_verdict"]) == set(m02["ablation"]["masked_acc"]) - {"triple"}
    assert d["imdb_rows"] == records["03_finetune_glue_imdb"]["data"]["imdb/test"]["subset_rows"]
