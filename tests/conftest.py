"""Test settings, applied before anything is collected, so the notebook kernels nbval starts inherit them:
the `smoke` profile, no network, and throw-away results/ and artifacts/ folders (committed results stay untouched)."""
import os
import sys
import tempfile
from pathlib import Path

_scratch = Path(tempfile.mkdtemp(prefix="kd-tests-"))
os.environ.update(KD_PROFILE="smoke", KD_RESULTS_DIR=str(_scratch / "results"), KD_ARTIFACTS_DIR=str(_scratch / "artifacts"),
                  HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
for var in ("KD_DATA_ROOT", "KD_MODEL_ROOT"):  # tests read only what the repository ships
    os.environ.pop(var, None)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "code"))
