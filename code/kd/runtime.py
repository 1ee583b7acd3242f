"""The rest of every notebook's set-up cell, after the clone: on Colab install what the runtime lacks (restarting it
once if that upgraded a package it had loaded) and mount Drive; everywhere, print the versions that matter and warn,
with the fix, about any outside the range the tests ran (requirements.txt's bounds). Imports no torch before the
installs; reads versions without importing the packages."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .config import REPO

CHECKED = ("torch", "transformers", "datasets", "accelerate")  # what the course's behaviour depends on
TESTED_STACKS = "Colab's (constraints-colab.txt) and the newest that requirements.txt admits"


def tested_ranges(requirements: Path = REPO / "requirements.txt") -> dict[str, str]:
    """name -> version range of requirements.txt (e.g. "<6,>=5.15") for the packages in CHECKED: the floors are the
    versions CI tests on Colab's stack, the ceilings the newest it tests below."""
    from packaging.requirements import Requirement  # ships with pip and with transformers

    ranges = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):  # options such as `-e .` name no version range
            req = Requirement(line)
            if req.name.lower() in CHECKED:
                ranges[req.name.lower()] = str(req.specifier)
    return ranges


def version_warnings(found: dict[str, str | None], ranges: dict[str, str]) -> list[str]:
    """One warning per package missing or outside its tested range, naming the version, the range and the fix."""
    from packaging.specifiers import SpecifierSet

    warnings = []
    for name, spec in ranges.items():
        have = found.get(name)
        if have is None or not SpecifierSet(spec).contains(have.split("+")[0], prereleases=True):
            what = "is not installed" if have is None else f"{have} is outside the tested range {spec}"
            warnings.append(f"WARNING: {name} {what} (requirements.txt). Fix: pip install '{name}{spec}', then "
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
    pip upgraded needs a fresh process: the runtime is restarted once (Colab restarts a process that ends)."""
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-r", str(root / "requirements-colab.txt")],
                         capture_output=True, text=True)
    if pip.returncode:
        raise SystemExit(f"Installing requirements-colab.txt failed:\n{pip.stderr[-2000:]}")
    installed = [w.rsplit("-", 1)[0].replace("-", "_").lower() for line in pip.stdout.splitlines()
                 if line.startswith("Successfully installed") for w in line.split()[2:]]
    if set(installed) & {m.lower() for m in sys.modules}:
        print(f"Upgraded {installed}, which this runtime had loaded: restarting it. Run all again.")
        os.kill(os.getpid(), 9)


def prepare(root: Path) -> None:
    """Called by the set-up cell once the course is at `root` (on Colab: freshly cloned)."""
    colab = "google.colab" in sys.modules
    if colab:
        install_colab_requirements(root)
        from google.colab import drive
        drive.mount("/content/drive")
    found = installed_versions()
    import torch  # after the installs

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(", ".join(f"{name} {found[name]}" for name in CHECKED) + f"; GPU: {gpu}; tested: {TESTED_STACKS}")
    for warning in version_warnings(found, tested_ranges()):
        print(warning)
