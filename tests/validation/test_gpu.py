import numpy as np
import pytest
import torch

from onnxpipe.pipeline.rundir import RunDir
from onnxpipe.validation.runtimes.pytorch import PyTorchRuntime

CUDA = torch.cuda.is_available()


def test_cuda_absence_is_reported_as_a_reason():
    reason = PyTorchRuntime.unavailable_reason("cuda")
    if CUDA:
        assert reason is None
    else:
        assert reason == "no CUDA device (torch.cuda.is_available() is False)"


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="Requires: CUDA device (torch.cuda.is_available() is False)")
def test_pytorch_on_cuda_matches_cpu(cnn_run):
    ref = next(a for a in [*RunDir(cnn_run).artifacts()] if a.label == "model.onnx")
    ckpt = type(ref)(cnn_run / "checkpoint.pt", "torch", ref.spec)
    x = {"input": np.random.default_rng(0).random((32, 1, 8, 8), dtype=np.float32)}
    with PyTorchRuntime(ckpt, "cpu") as cpu, PyTorchRuntime(ckpt, "cuda") as gpu:
        assert gpu.device_used == "cuda"
        np.testing.assert_allclose(gpu.run(x)["logits"], cpu.run(x)["logits"], atol=1e-4, rtol=1e-4)
