import numpy as np
import pytest

from onnxpipe.models.artifact import Format
from onnxpipe.models.errors import EnvironmentProblem, UnknownNameError, UsageError, ValidationInputError
from onnxpipe.pipeline.rundir import RunDir
from onnxpipe.validation.runtimes import get_runtime
from onnxpipe.validation.runtimes.base import Runtime
from onnxpipe.validation.runtimes.onnxrt import OnnxRuntime


def _artifact(run, name):
    return next(a for a in RunDir(run).artifacts() if a.label == name)


def test_inputs_are_checked_once_before_any_runtime_sees_them(cnn_run):
    with OnnxRuntime(_artifact(cnn_run, "model.onnx")) as rt:
        good = np.zeros((2, 1, 8, 8), np.float32)
        assert rt.run({"input": good})["logits"].shape == (2, 10)
        with pytest.raises(ValidationInputError, match=r"inputs \['x'\], expected \['input'\]"):
            rt.run({"x": good})
        with pytest.raises(ValidationInputError, match="input 'input': got dtype float64, expected float32"):
            rt.run({"input": good.astype(np.float64)})
        with pytest.raises(
            ValidationInputError,
            match=r"input 'input': got shape \[2, 8, 8, 1\], expected \['batch', 1, 8, 8\]",
        ):
            rt.run({"input": good.reshape(2, 8, 8, 1)})


def test_nhwc_artifacts_are_fed_nchw_inputs_transparently(cnn_run):
    x = np.random.default_rng(1).random((5, 1, 8, 8), dtype=np.float32)
    with OnnxRuntime(_artifact(cnn_run, "model.onnx")) as rt:
        want = rt.run({"input": x})["logits"]
    for name, runtime in [("saved_model", "tensorflow"), ("model_fp32.tflite", "ai-edge-litert")]:
        with get_runtime(runtime)(_artifact(cnn_run, name)) as rt:
            np.testing.assert_allclose(rt.run({"input": x})["logits"], want, atol=1e-4)
            # batch size changes between calls are handled (TFLite resizes its input)
            assert rt.run({"input": x[:1]})["logits"].shape == (1, 10)


def test_onnxruntime_without_cuda_provider_is_unavailable_on_cuda():
    assert "no CUDAExecutionProvider" in OnnxRuntime.unavailable_reason("cuda")
    assert OnnxRuntime.unavailable_reason("cpu") is None


def test_cuda_provider_listed_but_not_attached_is_never_reported_as_cuda(cnn_run, monkeypatch):
    # onnxruntime-gpu on a machine without a GPU lists CUDA as available and silently runs on CPU.
    import onnxruntime as ort

    from onnxpipe.validation.inputs import InputConfig
    from onnxpipe.validation.parity import ValidateOptions, validate

    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    art = _artifact(cnn_run, "model.onnx")
    with OnnxRuntime(art, device="cuda") as rt:
        assert rt.device_used == "cpu"  # read from the session's providers
    ref = type(art)(cnn_run / "checkpoint.pt", "torch", art.spec)
    opts = ValidateOptions(  # in this process, where the patch is (a host process would not see it)
        inputs=InputConfig(samples=8, random=0, edge=False, batch=4, sweep=(1,)),
        runtimes=("onnxruntime",),
        isolate=False,
    )
    rows = {r.device: r for r in validate(ref, [art], opts).results}
    assert rows["cpu"].status == "pass"
    assert rows["cuda"].status == "unavailable"
    assert "asked for cuda, but the session runs on cpu" in rows["cuda"].message


def test_runtime_refuses_a_format_it_cannot_run(cnn_run):
    with pytest.raises(UsageError, match="runtime 'onnxruntime' runs"):
        OnnxRuntime(_artifact(cnn_run, "model_fp32.tflite"))


class _Missing(Runtime):
    name = "missing"
    formats = frozenset({Format.ONNX})
    packages = ("surely_not_installed_pkg",)

    def _load(self):
        raise AssertionError("must not load")

    def _run(self, feeds):
        raise AssertionError("must not run")


def test_absent_package_is_reported_not_run(cnn_run):
    assert _Missing.unavailable_reason() == "package surely_not_installed_pkg is not installed"
    runtime = _Missing(_artifact(cnn_run, "model.onnx"))
    with pytest.raises(EnvironmentProblem, match="unavailable: package surely_not_installed_pkg"), runtime:
        pass


def test_unknown_runtime():
    with pytest.raises(
        UnknownNameError,
        match=r"unknown runtime .tensorrt.; valid: ai-edge-litert, ai-edge-litert-ref, onnx-reference, onnxruntime",
    ):
        get_runtime("tensorrt")


def test_onnxruntime_and_onnxruntime_gpu_side_by_side_is_refused(monkeypatch):
    # Both distributions write the same package; whichever came second overwrote the other.
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda d: "1.31.1" if d == "onnxruntime-gpu" else real(d)
    )
    reason = OnnxRuntime.unavailable_reason("cpu")
    assert "both onnxruntime 1.31.1 and onnxruntime-gpu 1.31.1 are installed" in reason


def test_make_setup_gpu_replaces_onnxruntime_never_adds_to_it():
    import subprocess

    from tests.conftest import ROOT

    dry = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "setup-gpu", "STAMP=Makefile"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = dry.stdout.splitlines()
    uninstall = next(
        i for i, line in enumerate(lines) if "uninstall --yes --quiet onnxruntime onnxruntime-gpu" in line
    )
    install = next(i for i, line in enumerate(lines) if "install --quiet onnxruntime-gpu==" in line)
    assert uninstall < install
