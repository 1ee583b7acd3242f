"""Resolve every dataset split and model a profile loads from the Hugging Face hub, before the long runs: metadata
calls only (seconds, no downloads), so a renamed repo, a missing config or split, or no network shows now, with its
fix, not an hour into a T4 session. `python -m kd.hub_check --profile t4`: exit 0 when everything resolves, else 1.
"""
from __future__ import annotations

import argparse
import os
import sys

from huggingface_hub import HfApi

from .config import PROFILES, TASKS, Profile

LOCAL = "local: nothing to check on the hub"
OFFLINE_FIX = ("check the runtime's internet connection; Colab: Runtime > Disconnect and delete runtime, then run "
               "again; offline, set KD_DATA_ROOT and KD_MODEL_ROOT to local copies laid out like the hub")
BARE = ("bare single-segment id; huggingface_hub's HfFileSystem rejects these. Fix: use the namespaced id, e.g. "
        "google-bert/bert-base-uncased, in")
MODEL_FILES = {"config.json": ("config.json",),  # what AutoModel and AutoTokenizer read, in PyTorch
               "weights": ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                           "pytorch_model.bin.index.json"), "tokenizer": ("tokenizer.json", "vocab.txt")}


def needed_splits(profile: Profile) -> dict[str, dict[str, set[str]]]:
    """Dataset repo -> config -> the splits the notebooks load: 01-02 the masked-LM corpus, 03 every task of TASKS,
    04 IMDb's unsupervised reviews (it loads them whatever classic_transfer says)."""
    from .data import DATASETS  # kd.data imports torch: here, so `import kd.hub_check` and --help stay light

    need = [(profile.mlm_corpus, profile.mlm_train_split), (profile.mlm_corpus, profile.mlm_eval_split)]
    need += [(t.dataset, split) for t in TASKS.values() for split in (t.train_split, t.eval_split)]
    repos: dict[str, dict[str, set[str]]] = {}
    for name, split in need + [("imdb", "unsupervised")]:
        repo, config = DATASETS[name]
        repos.setdefault(repo, {}).setdefault(config, set()).add(split)
    return repos


def _unreachable(exc: Exception) -> bool:
    """By class name as well as isinstance: the classes moved between huggingface_hub 1.x and 2.x, and the transport
    (requests or httpx) has its own. The hub's answers (404, 401, 500) are OSErrors too, but no network failure."""
    names = {c.__name__ for c in type(exc).__mro__}  # OfflineModeIsEnabled: a ConnectionError
    return any("Connect" in n or "Timeout" in n for n in names) or (
        isinstance(exc, OSError) and not names & {"HfHubHTTPError", "HTTPStatusError", "RepositoryNotFoundError"})


def _failure(exc: Exception, url: str, where: str) -> str:
    """'<what happened>. Fix: <fix>' for an exception of a hub call."""
    names = {c.__name__ for c in type(exc).__mro__}
    if names & {"RepositoryNotFoundError", "GatedRepoError"}:
        return (f"not found on the hub (renamed, private or gated?). Fix: open {url}; if it moved, put its new id in "
                f"{where}; if gated or private, accept its terms there and log in (HF_TOKEN)")
    if _unreachable(exc):
        return f"the hub could not be reached. Fix: {OFFLINE_FIX}"
    return (f"the hub answered {type(exc).__name__} {(str(exc).strip().splitlines() or [''])[0]}. Fix: retry; if it "
            f"persists, check the id at {url}")


class _Hub:
    """The api, asked until found unreachable: then each later item says so at once, not after its own timeouts."""

    def __init__(self, api):
        self.api, self.down = api, None

    def __call__(self, method: str, *args, **kwargs):
        try:
            if self.down is None:
                return getattr(self.api, method)(*args, **kwargs)
        except Exception as exc:
            self.down = exc if _unreachable(exc) else None
            raise
        raise self.down


def _dataset(hub: _Hub, repo: str, configs: dict[str, set[str]]) -> list[tuple[bool, str]]:
    """A line per config of a repo (a file <config>/<split>-*.parquet per split), one for the repo if it fails."""
    head, url, where = f"dataset {repo}", f"https://huggingface.co/datasets/{repo}", "kd.data.DATASETS"
    if "/" not in repo:
        return [(False, f"{head}: {BARE} {where}")]
    try:
        info = hub("dataset_info", repo)
        files = [f for f in hub("list_repo_files", repo, repo_type="dataset") if f.endswith(".parquet")]
    except Exception as exc:
        return [(False, f"{head} ({', '.join(sorted(configs))}): {_failure(exc, url, where)}")]
    out = []
    if info.id != repo:
        out.append((False, f"{head}: renamed, the hub now calls it {info.id}. Fix: replace {repo} by {info.id} in "
                           f"{where}"))
    for config, splits in sorted(configs.items()):
        have = sorted({f.split("/")[1].split("-")[0] for f in files if f.startswith(f"{config}/")})
        lacking = sorted(s for s in splits if not any(f.startswith(f"{config}/{s}-") for f in files))
        if not have:
            there = ", ".join(sorted({f.split("/")[0] for f in files if "/" in f})) or "none"
            out.append((False, f"{head} {config}: config not in the repo (no {config}/*.parquet; configs there: "
                               f"{there}). Fix: name one of those configs in {where}"))
        elif lacking:
            out.append((False, f"{head} {config}: no split {', '.join(lacking)} (no {config}/<split>-*.parquet; "
                               f"splits there: {', '.join(have)}). Fix: name one of those in kd.config (the "
                               "profile's mlm_train_split / mlm_eval_split, or TASKS)"))
        else:
            out.append((True, f"{head} {config}: {', '.join(sorted(splits))}"))
    return out


def _model(hub: _Hub, model_id: str, where: str) -> tuple[bool, str]:
    """A model repo: its id as the hub spells it, and the files AutoModel and AutoTokenizer read."""
    head, url = f"model {model_id}", f"https://huggingface.co/{model_id}"
    if "/" not in model_id:
        return False, f"{head}: {BARE} {where}"
    try:
        info = hub("model_info", model_id)
    except Exception as exc:
        return False, f"{head}: {_failure(exc, url, where)}"
    if info.id != model_id:  # the hub redirects a renamed repo, as long as the old name is not taken again
        return False, f"{head}: renamed, the hub now calls it {info.id}. Fix: use {info.id} in {where}"
    files = {s.rfilename for s in getattr(info, "siblings", None) or ()}
    found = {kind: [n for n in names if n in files] for kind, names in MODEL_FILES.items()}
    if lacking := [f"{kind} ({' or '.join(MODEL_FILES[kind][:2])})" for kind, names in found.items() if not names]:
        return False, (f"{head}: lacks {', '.join(lacking)}. Fix: name a PyTorch checkpoint that has them in {where} "
                       f"(its files: {url}/tree/main)")
    return True, f"{head}: {', '.join(names[0] for names in found.values())}"


def _results(profile: Profile | str, api=None) -> list[tuple[bool, str]]:
    """(resolved, line) per item the profile loads: its datasets, then its models."""
    from . import data, models  # they import torch (see needed_splits)

    profile = PROFILES[profile] if isinstance(profile, str) else profile
    hub, out = _Hub(HfApi() if api is None else api), []
    if root := data.data_root(profile):  # KD_DATA_ROOT, else the profile's data_root
        out.append((True, f"datasets {root} {LOCAL}"))
    else:
        for repo, configs in needed_splits(profile).items():
            out += _dataset(hub, repo, configs)
    for field in ("teacher", "released_student"):
        if (model_id := getattr(profile, field)) is None:
            continue
        if model_id in models.RANDOM_MODELS:
            out.append((True, f"model {model_id} ({field}, a random stand-in) {LOCAL}"))
        elif (source := models.model_source(model_id, profile)) != model_id:  # KD_MODEL_ROOT, MiniLM's PyPI copy
            out.append((True, f"model {model_id} ({field}, {source}) {LOCAL}"))
        else:
            out.append(_model(hub, model_id, f"kd.config.PROFILES[{profile.name!r}].{field}"))
    return out


def check(profile: Profile | str, api=None) -> list[str]:
    """The problems, each naming the id and the fix; empty when everything the profile loads resolves."""
    return [line for ok, line in _results(profile, api) if not ok]


def report(profile: Profile | str, api=None) -> bool:
    """Print a line per item (ok, or MISSING with the fix) and a summary; True when everything resolves."""
    results = _results(profile, api)
    for ok, line in results:
        print(f"ok  {line}" if ok else f"MISSING {line}")
    missing, name = sum(not ok for ok, _ in results), getattr(profile, "name", profile)
    print(f"{name}: {missing} of {len(results)} missing: fix them before the long runs" if missing
          else f"{name}: everything the profile loads resolves")
    return not missing


def main(argv: list[str] | None = None, api=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kd.hub_check", description=__doc__.split(":")[0])
    parser.add_argument("--profile", default=os.environ.get("KD_PROFILE") or "t4", choices=list(PROFILES),
                        help="whose datasets and models to resolve (default: $KD_PROFILE, else t4)")
    return 0 if report(parser.parse_args(argv).profile, api) else 1


if __name__ == "__main__":
    sys.exit(main())
