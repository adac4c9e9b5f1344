"""``onnxpipe doctor``: one table of what onnxpipe can use here, each missing piece with its fix."""

from __future__ import annotations

from click.testing import CliRunner

from onnxpipe.converters.route import ROUTES
from onnxpipe.pipeline.commands import doctor
from tests.conftest import onnxpipe


def test_doctor_lists_every_environment_route_and_runtime_and_exits_0_when_the_pipeline_can_run(tmp_path):
    proc = onnxpipe("doctor", "--no-cuda")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {
        line.split(" | ")[0].lstrip("| "): line for line in proc.stdout.splitlines() if line.startswith("| ")
    }
    assert rows["main environment (.venv)"].split(" | ")[1] == "ok"
    assert (
        "torch 2.13.0" in rows["main environment (.venv)"]
        and "onnx2tf 1.28" in rows["main environment (.venv)"]
    )
    for name in ROUTES.names():
        assert f"route {name}" in rows
    assert "runtime tflite-runtime" in rows and "Chromium (HTML report test, tfjs-browser)" in rows
    assert "runtime tfjs-browser" in rows and rows["tfjs environment (tensorflowjs)"].split(" | ")[1] == "ok"
    assert "the default pipeline can run here" in proc.stdout

    # An environment that is not there: its row says so and names the make target; still exit 0.
    proc = onnxpipe(
        "doctor", "--no-cuda", env={"ONNXPIPE_LEGACY_PYTHON": str(tmp_path / "nowhere" / "bin" / "python")}
    )
    assert proc.returncode == 0, proc.stderr
    legacy = next(line for line in proc.stdout.splitlines() if line.startswith("| legacy environment"))
    assert "| no |" in legacy and "not set up" in legacy and "make setup-legacy" in legacy
    route = next(line for line in proc.stdout.splitlines() if line.startswith("| route onnx-tf "))
    assert "| no |" in route and "make setup-legacy" in route


def test_doctor_exits_1_naming_the_fix_when_the_main_environment_lacks_a_package(monkeypatch):
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda p: None if p == "onnx2tf" else real(p))
    result = CliRunner().invoke(doctor.command, ["--no-cuda"])
    assert result.exit_code == 1, result.output
    assert "| MISSING | missing onnx2tf;" in result.output
    assert (
        "the default pipeline cannot run: main environment" in result.output and "make setup" in result.output
    )


def test_version_is_printed():
    proc = onnxpipe("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("onnxpipe, version ")
