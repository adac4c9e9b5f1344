"""The architecture sweep, one architecture at a time (``slow``: about 20 to 60 s each).

Each Hugging Face architecture of ``bench/architectures.py`` is built from its tiny config, saved as
a folder and converted with the planner's defaults; the test asserts that a validated SavedModel
and a validated fp32 TFLite file were kept (the planner keeps nothing that failed validation).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("transformers")


def _architectures() -> tuple[str, ...]:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location("architectures", ROOT / "bench" / "architectures.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.ARCHITECTURES
    finally:
        sys.path.remove(str(ROOT / "bench"))


@pytest.mark.slow
@pytest.mark.parametrize("name", _architectures())
def test_the_architecture_converts_to_a_validated_saved_model_and_fp32_tflite(tmp_path, name):
    script = ROOT / "bench" / "architectures.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--only", name, "--precisions", "fp32", "--out", str(tmp_path)],
        capture_output=True, text=True, check=False, cwd=ROOT, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (record,) = json.loads((tmp_path / "architectures.json").read_text())["records"]
    assert record["error"] is None, record["error"]
    assert {"saved_model", "model_fp32.tflite"} <= set(record["kept"]), (
        tmp_path / "architectures.md"
    ).read_text()
    assert record["spread"] > 0.01  # its output depends on its input, so passing validation means something
