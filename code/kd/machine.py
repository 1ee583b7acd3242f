"""The machine a run ran on: which precision the CPU computes in, and the versions and hardware a run record
notes. Nothing here imports torch at import time."""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

from .config import Profile


def cpu_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX): there bf16 autocast speeds training up; on
    other CPUs it is emulated, several times slower, though it computes the same thing."""
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


CPU_BF16_CHOICES = {"auto": "bf16 autocast where the CPU computes bf16 natively (and the profile allows), else fp32",
                    "1": "bf16 autocast on any CPU (emulated where not native: same numbers, slower)",
                    "0": "fp32 on any CPU"}


def precision(profile: Profile) -> str:
    """What the Trainers compute in: "fp16" on a GPU when the profile says so, else "fp32"; on a CPU, the switch
    KD_CPU_BF16 (auto | 1 | 0, see CPU_BF16_CHOICES) picks "bf16" autocast or "fp32". Every run record says which."""
    import torch

    if torch.cuda.is_available():
        return "fp16" if profile.fp16 else "fp32"
    choice = os.environ.get("KD_CPU_BF16", "auto").strip().lower()
    if choice not in CPU_BF16_CHOICES:
        raise ValueError(f"KD_CPU_BF16={choice!r} is not one of {', '.join(CPU_BF16_CHOICES)}: "
                         + "; ".join(f"{k}: {v}" for k, v in CPU_BF16_CHOICES.items())
                         + ". Set it to one of them, or unset it (auto).")
    bf16 = {"1": True, "0": False}.get(choice, profile.cpu_bf16 and cpu_bf16())
    return "bf16" if bf16 else "fp32"


def versions() -> dict:
    import torch  # only a run that trains needs it
    from importlib.metadata import version  # the others' versions without importing them (evaluate takes seconds)

    return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": version("transformers"),
            "datasets": version("datasets"), "evaluate": version("evaluate"), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "cpu_bf16": cpu_bf16()}


def code_version() -> dict:
    """Which code a run ran: the digest of the kd package's sources (what a chain's notebooks must share), and the
    git commit of the checkout with whether code/ (the package and the notebooks) had uncommitted changes; None
    outside a git checkout. results/ is left out: the notebooks themselves change it as they run."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for f in sorted(here.glob("*.py")):
        digest.update(f.name.encode() + b"\0" + f.read_bytes())

    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True,
                                  timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    return {"kd": digest.hexdigest()[:16], "commit": commit,
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", "..")) if commit else None}
