"""The rest of every notebook's set-up cell, after the clone: on Colab install what the runtime lacks (restarting it
once if that upgraded a package it had loaded), mount Drive if it can (never a stop: without it the runtime's disk is
used, with a warning) and check the hub ids the profile will load; everywhere, print the versions that matter and
warn, with a tested fix, about any outside the range the tests ran (requirements.txt's bounds). Imports no torch
before the installs; reads versions without importing the packages.

Locally the package is installed (`pip install -e .`, in requirements.txt), so a kernel started in the project's
environment imports kd without any sys.path edit; on Colab the set-up cell puts the clone's code/ on the path.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .config import REPO

CHECKED = ("torch", "transformers", "datasets", "accelerate", "huggingface_hub", "tokenizers")  # what runs depend on
TESTED_STACKS = "Colab's (constraints-colab.txt) and the newest that requirements.txt admits"
DRIVE = Path("/content/drive")


def tested_ranges(requirements: Path = REPO / "requirements.txt") -> dict[str, str]:
    """name -> version range of requirements.txt (e.g. "<6,>=5.15") for the packages in CHECKED: the floors are the
    versions CI tests on Colab's stack, the ceilings the newest it tests below."""
    from packaging.requirements import Requirement  # ships with pip and with transformers

    ranges = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):  # options such as `-e .` name no version range
            req = Requirement(line)
            name = req.name.lower().replace("-", "_")
            if name in CHECKED:
                ranges[name] = str(req.specifier)
    return ranges


def colab_pins(constraints: Path = REPO / "constraints-colab.txt") -> dict[str, str]:
    """name -> version of Colab's tested stack (constraints-colab.txt), the one CI's second leg runs."""
    pins = {}
    for line in constraints.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, pinned = line.split("==")
            pins[name.strip().lower().replace("-", "_")] = pinned.strip()
    return pins


def fix_command(names: list[str], ranges: dict[str, str]) -> str:
    """The pip command that puts the named packages back on a tested stack: Colab's pins (constraints-colab.txt) for
    those it pins, so that the whole set resolves together to what CI's Colab leg ran; the tested range otherwise."""
    pinned = colab_pins()
    spec = " ".join(n if n in pinned else f"'{n}{ranges[n]}'" for n in names)
    return f"pip install -c {REPO / 'constraints-colab.txt'} {spec}"


def version_warnings(found: dict[str, str | None], ranges: dict[str, str]) -> list[str]:
    """One warning per package missing or outside its tested range, naming the version, the range and the fix."""
    from packaging.specifiers import SpecifierSet

    warnings = []
    for name, spec in ranges.items():
        have = found.get(name)
        if have is None or not SpecifierSet(spec).contains(have.split("+")[0], prereleases=True):
            what = "is not installed" if have is None else f"{have} is outside the tested range {spec}"
            warnings.append(f"WARNING: {name} {what} (requirements.txt). Fix: {fix_command([name], ranges)}, then "
                            "restart the runtime (Colab: Runtime > Restart session) and run this cell again.")
    return warnings


def installed_versions() -> dict[str, str | None]:
    found = {}
    for name in CHECKED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def install_colab_requirements(root: Path) -> None:
    """pip install what Colab lacks (requirements-colab.txt); a package the runtime had already imported and that
    pip upgraded needs a fresh process: the runtime is restarted once (Colab restarts a process that ends), after
    saying so and what to run next."""
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-r", str(root / "requirements-colab.txt")],
                         capture_output=True, text=True)
    if pip.returncode:
        raise SystemExit(f"Installing requirements-colab.txt failed:\n{pip.stderr[-2000:]}\nFix: run this cell again; "
                         "if it fails the same way, Runtime > Disconnect and delete runtime, then Run all.")
    installed = [w.rsplit("-", 1)[0].replace("-", "_").lower() for line in pip.stdout.splitlines()
                 if line.startswith("Successfully installed") for w in line.split()[2:]]
    loaded = sorted(set(installed) & {m.lower() for m in sys.modules})
    if loaded:
        print(f"Installed {', '.join(loaded)}, which this runtime had already loaded: the runtime restarts now to load "
              "the new version (Colab may then say the session crashed: that is this restart, nothing is lost). "
              "Next: Runtime > Run all.", flush=True)
        time.sleep(1)  # let the message reach the notebook before the process ends
        os.kill(os.getpid(), 9)


def mount_drive() -> Path | None:
    """Google Drive's MyDrive, or None: KD_DRIVE=0, a declined authorisation or a failed mount fall back to the
    runtime's local disk with a warning that says what a disconnect then loses. Never a stop."""
    lost = ("checkpoints, saved models and results go to this runtime's own disk: a disconnect or a runtime reset "
            "loses them (download results/ before you close). To keep them on Drive, unset KD_DRIVE or allow the "
            "mount, and run this cell again.")
    if os.environ.get("KD_DRIVE", "1").strip() == "0":
        print(f"WARNING: KD_DRIVE=0: Drive is not used; {lost}")
        return None
    try:
        from google.colab import drive
        drive.mount(str(DRIVE))
    except Exception as error:  # noqa: BLE001  (any failure of the mount: the course goes on without Drive)
        print(f"WARNING: Google Drive was not mounted ({type(error).__name__}: {error}); {lost}")
        return None
    return DRIVE / "MyDrive"


def check_hub(profile_name: str | None = None) -> None:
    """Resolve every hub id the profile will load (kd.hub_check, metadata only: seconds); print what is missing and
    the fix. A failure is reported, not raised: the learner decides."""
    from . import hub_check
    from .config import get_profile

    hub_check.report(get_profile(profile_name, needs_gpu=False))


def prepare() -> None:
    """Called by the set-up cell once the course is importable (on Colab: freshly cloned)."""
    colab = "google.colab" in sys.modules
    if colab:
        install_colab_requirements(REPO)
        mount_drive()
    found = installed_versions()
    import torch  # after the installs

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(", ".join(f"{name} {found[name]}" for name in CHECKED) + f"; GPU: {gpu}; tested: {TESTED_STACKS}")
    for warning in version_warnings(found, tested_ranges()):
        print(warning)
    if colab and os.environ.get("KD_HUB_CHECK", "1") != "0":
        check_hub()
