"""Build the report and the poster from the run records of one profile, offline, with Typst.

    python report/build.py                 # profile cpu: report/report-cpu.pdf, poster/poster-cpu.pdf
    python report/build.py --profile t4    # after a t4 run of the notebooks
    python report/build.py --png DIR       # also every page as a PNG in DIR, to look at
    python report/build.py --figures       # first redraw every figure from the records (kd.figures), in seconds

The sources (report/report.typ, poster/poster.typ) read results/<profile>/*.json and the figures beside them when
they are compiled; the summary tables and the display labels come in as data (sys.inputs), formatted once by
kd.tables from the same records. So a new run of the notebooks followed by this command updates both documents.
Built for the README's profile (cpu), it also rewrites the README's results section from the same tables.
Only kd's torch-free modules are imported: building needs no torch.
"""
import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

import typst

import kd  # torch-free: config, records, labels, tables and figures load at once, the models never (pip install -e .)

REPO = Path(__file__).resolve().parent.parent

DOCUMENTS = {"report": REPO / "report" / "report.typ", "poster": REPO / "poster" / "poster.typ"}
README, README_PROFILE = REPO / "README.md", "cpu"
BEGIN = "<!-- results: written by `python report/build.py` from results/cpu/; edits here are overwritten -->"
END = "<!-- end of results -->"
BUDGET_BEGIN = ("<!-- budget: written by `python report/build.py` from kd.budget (estimates); edits here are "
                "overwritten -->")
BUDGET_END = "<!-- end of budget -->"
NEEDS = kd.NOTEBOOKS  # the report quotes every notebook's record


def load_records(results: Path, profile: str) -> dict[str, dict]:
    """Every notebook's record in `results`, by notebook, read by kd.load_chain (which says which notebook to run
    when a record is missing, another profile's, of an older schema, or from other code or settings)."""
    return kd.load_chain(profile, NEEDS, folder=results)


def summary_tables(records: dict[str, dict]) -> dict[str, dict]:
    """The summary tables ({header, rows} of strings), formatted once by kd.tables for the README and Typst alike."""
    return kd.tables.summary_tables(records, records["05_summary"]["metrics"])


def classic_seeds(record: dict) -> str:
    """How many runs of each classic student the table shows, from notebook 04's record."""
    seeds = record["metrics"]["seeds"]
    if len(seeds) > 1:
        return (f"the mean over seeds {', '.join(map(str, seeds))} ± their standard deviation; a gain whose 95% "
                "interval (paired over seeds, kd.noise) holds zero is a tie")
    return f"one run of each, seed {seeds[0]}"


def readme_results(records: dict[str, dict]) -> str:
    """The README's results section: the summary tables of one profile's records, labelled with profile and machine."""
    summary, tables = records["05_summary"], summary_tables(records)
    m, profile = summary["metrics"], summary["profile"]
    machine, where = m["machine"], f"results/{profile}/"
    gpu = "GPU " + machine["gpu"] if machine["gpu"] else "no GPU"
    md = {name: kd.tables.markdown(table) for name, table in tables.items()}
    parts = [BEGIN,
             f"Profile `{profile}` (teacher `{records['01_student_init']['metrics']['teacher']}`), "
             f"on {machine['cpu_count']} CPU cores, {gpu} ({machine['platform']}, torch {machine['torch']}); "
             f"notebooks 01-04 took {m['course_minutes_01_04']:.0f} min. Every number below is in the run records "
             f"in [`{where}`]({where}); rows marked *reference* are the papers' and earlier projects' numbers, "
             "not ours. One rule tells a gain or a loss from a tie (`kd.noise`): a difference counts when its 95% "
             "interval leaves zero out, paired over seeds where both arms ran the same seeds (Student's t), else "
             "against the standard error of the test set, sqrt(p(1 - p) / n) for an accuracy p on n items.",
             "**What the teacher added** (each comparison against the same training without the teacher: same "
             "start, data, seeds and steps; the difference is taken so that a gain favours the teacher; notebook 03 "
             "notes the tasks whose teacher is not above the majority class, which cannot tell models apart):",
             md["teacher"], f"![learning curve]({where}02_mlm_distillation_learning_curve.png)",
             "**How much of the teacher the student keeps** (fine-tuned scores x100, notebook 03: the median over "
             "seeds, in brackets their range where there are several; retention is student / teacher, above "
             "the majority class is (student - majority) / (teacher - majority), noisy where the teacher is barely "
             "above the majority class, as on MRPC):", md["retention"],
             f"![retention]({where}05_summary_retention.png)",
             "**Smaller and faster** (every model on one CPU clock, timed by notebook 04; IMDb accuracy from "
             "notebooks 03-05):", md["models"], md["size_speed"],
             f"![accuracy against size]({where}05_summary_accuracy_vs_size.png)",
             "**Classic students, single vs distilled** (IMDb test accuracy x100, notebook 04; "
             + classic_seeds(records["04_classic_kd_imdb"]) + "):", md["classic"],
             "**Masked-LM distillation and its ablation** (held-out WikiText, notebook 02):", md["mlm"],
             md["ablation"], END]
    return "\n\n".join(p.strip() for p in parts) + "\n"


def readme_budget() -> str:
    """The README's Colab budget: kd.budget's estimate for the t4 profile, and the sessions it packs into."""
    ends = {end: kd.budget.estimate(kd.PROFILES["t4"], end) for end in kd.budget.ENDS}
    sessions = "; ".join(f"session {i}: " + ", ".join(f"`{nb}`" for nb in names)
                         for i, names in enumerate(kd.budget.sessions(ends["low"]), 1))
    share = {kind: "–".join(f"{v:.1%}".replace(".0%", "%") for v in ends_.values())
             for kind, ends_ in kd.budget.T4_SHARE.items()}
    parts = [BUDGET_BEGIN,
             "Estimates, not measurements (`kd.budget`: FLOPs at a share of a T4's fp16 peak, "
             f"{share['train']} for training steps and {share['forward']} for forward passes, the low and the high "
             "end of what published T4 figures support, plus fixed costs; token lengths measured on the data):",
             kd.tables.markdown(kd.tables.budget_table(ends)),
             f"Free Colab sessions last about {kd.budget.SESSION_HOURS:.0f} hours; planned for the pessimistic end, "
             f"at most {kd.budget.PACK_HOURS} h each, in order: {sessions}.", BUDGET_END]
    return "\n\n".join(p.strip() for p in parts) + "\n"


def _replace_block(text: str, begin: str, end: str, block: str) -> str:
    if begin not in text or end not in text:
        raise RuntimeError(f"README.md has no section to update: it needs the lines {begin!r} and {end!r}.")
    head, rest = text.split(begin, 1)
    return head + block.rstrip("\n") + rest.split(end, 1)[1]


def update_readme(records: dict[str, dict]) -> None:
    text = _replace_block(README.read_text(), BEGIN, END, readme_results(records))
    README.write_text(_replace_block(text, BUDGET_BEGIN, BUDGET_END, readme_budget()))


def build(profile: str = "cpu", out_dir: Path | None = None, png_dir: Path | None = None,
          results: Path | None = None) -> dict[str, Path]:
    """Compile both documents from `results` (default results/<profile>/); returns {name: pdf path}.
    Nothing is written unless every record exists."""
    if profile not in kd.PROFILES:
        raise ValueError(f"Unknown profile {profile!r}. Valid profiles: {', '.join(kd.PROFILES)}.")
    results = Path(results or kd.results_dir(kd.PROFILES[profile])).resolve()
    records = load_records(results, profile)
    root = Path(os.path.commonpath([REPO, results]))  # Typst reads files only below its root
    # Typst reads the records itself (numbers for its sentences) and gets the formatted tables and labels as data
    inputs = {"profile": profile, "results": "/" + str(results.relative_to(root)),
              **kd.tables.typst_inputs(summary_tables(records), records)}
    finished = records["05_summary"]["finished_at"]
    stamp = int(datetime.strptime(finished, "%Y-%m-%dT%H:%M:%S%z").timestamp())  # same records, same bytes
    built = {}
    for name, source in DOCUMENTS.items():
        pdf = Path(out_dir or source.parent) / f"{name}-{profile}.pdf"
        pdf.parent.mkdir(parents=True, exist_ok=True)
        pdf.write_bytes(typst.compile(str(source), root=str(root), sys_inputs=inputs, format="pdf", timestamp=stamp))
        built[name] = pdf
        if png_dir:
            Path(png_dir).mkdir(parents=True, exist_ok=True)
            pages = typst.compile(str(source), root=str(root), sys_inputs=inputs, format="png", ppi=60)
            for i, page in enumerate(pages if isinstance(pages, list) else [pages], 1):
                (Path(png_dir) / f"{name}-{profile}-{i}.png").write_bytes(page)
    if out_dir is None:  # the tables beside the records, as notebook 05 writes them, from today's kd.tables
        tables = results / "05_summary_tables.md"
        tables.write_text(kd.tables.tables_markdown(summary_tables(records), profile))
        built["tables"] = tables
    if profile == README_PROFILE and out_dir is None:
        update_readme(records)
        built["README results"] = README
    return built


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", help="whose records to read: results/<profile>/ (default cpu)")
    parser.add_argument("--out", type=Path, help="write the PDFs here instead of report/ and poster/")
    parser.add_argument("--png", type=Path, help="also write every page as a PNG here")
    parser.add_argument("--figures", action="store_true",
                        help="first redraw every figure of the profile from its records (kd.figures), in seconds")
    args = parser.parse_args()
    if args.figures:
        os.environ.setdefault("MPLBACKEND", "Agg")
        for file, status in kd.figures.redraw(args.profile).items():
            print(f"{file}: {status}")
    try:
        for name, path in build(args.profile, args.out, args.png).items():
            print(f"{name}: {path}")
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        sys.exit(f"error: {error}")
