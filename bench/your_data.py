"""int8 on the user's own data: a user model class, calibrated on its own images, against noise.

The user's side, end to end through the CLI: the digits written as PNG files (a training folder and
a held-out folder with labels), a model class of the user's own trained on the training images,
then `onnxpipe convert --model-class ... --precision fp32,int8 --calibration train/` and the same
conversion calibrated on uniform noise instead, each validated with `--inputs held_out/ --labels`.
Prints, side by side, each int8 file's accuracy and top-1 agreement with the PyTorch reference on
the held-out images.

Usage: python bench/your_data.py [--out runs/your_data]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from _common import ROOT

NET = '''
import torch


class Net(torch.nn.Module):
    """A user's digit classifier: two convolutions, global pooling, a linear head."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1, stride=2)
        self.head = torch.nn.Linear(32, 10)

    def forward(self, image):
        x = torch.relu(self.conv2(torch.relu(self.conv1(image))))
        return self.head(x.mean(dim=(2, 3)))
'''
MEAN, STD = 0.5, 0.25


def _write(folder: Path, images: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        pixels = (img / 16.0 * 255).round().astype(np.uint8)  # digits are 0..16
        Image.fromarray(pixels).resize((16, 16), Image.Resampling.BILINEAR).save(folder / f"{i:04d}.png")


def _train(out: Path, train_dir: Path, labels: np.ndarray) -> Path:
    import torch

    sys.path.insert(0, str(ROOT))
    from onnxpipe.models.spec import ModelSpec, TensorSpec
    from onnxpipe.models.user_data import UserData, load_user_inputs

    spec = ModelSpec("Net", (TensorSpec("image", ("N", 1, 16, 16)),), (TensorSpec("logits", ("N", 10)),))
    x = torch.from_numpy(load_user_inputs(UserData(str(train_dir), (MEAN,), (STD,)), spec)["image"])
    y = torch.from_numpy(labels)
    namespace: dict = {}
    exec(NET, namespace)
    torch.manual_seed(0)
    net = namespace["Net"]()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(30):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[i : i + 64]), y[i : i + 64]).backward()
            opt.step()
    torch.save(net.state_dict(), out / "weights.pt")
    return out / "weights.pt"


def _onnxpipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "onnxpipe.pipeline", *args], capture_output=True, text=True, check=False
    )


def main() -> None:
    """Write the data, train, convert twice, validate both and print the comparison."""
    from sklearn.datasets import load_digits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/your_data"))
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    train, held = order[:1200], order[1200:]
    _write(out / "train", digits.images[train])
    _write(out / "held_out", digits.images[held])
    (out / "labels.txt").write_text("\n".join(str(v) for v in digits.target[held]) + "\n")
    np.savez(  # what the pixels of uniform noise look like once normalised: what random calibration is
        out / "noise.npz",
        image=((np.random.default_rng(1).uniform(0, 1, (200, 1, 16, 16)) - MEAN) / STD).astype(np.float32),
    )
    weights = _train(out, out / "train", digits.target[train].astype(np.int64))
    (out / "net.py").write_text(NET)
    user = ["--model-class", f"{out / 'net.py'}:Net", "--input-shape", "1,1,16,16", "--input-name", "image"]
    norm = ["--mean", str(MEAN), "--std", str(STD)]
    rows = []
    for name, calibration in (("own images", out / "train"), ("uniform noise", out / "noise.npz")):
        run = out / name.replace(" ", "_")
        print(f"converting, int8 calibrated on {name} ...", flush=True)
        proc = _onnxpipe(
            "convert", str(weights), *user, "--out", str(run), "--to", "tflite", "--precision", "fp32,int8",
            "--backend", "onnx2tf", "--calibration", str(calibration), *norm,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"convert failed:\n{proc.stderr[-3000:]}")
        _onnxpipe(
            "validate", str(run), *user[:2], "--devices", "cpu", "--runtimes", "pytorch,ai-edge-litert",
            "--inputs", str(out / "held_out"), *norm, "--labels", str(out / "labels.txt"), "--random", "0",
            "--no-edge", "--fail-on", "none",
        )  # fmt: skip
        report = json.loads((run / "parity.json").read_text())
        extra = json.loads((run / "manifest.json").read_text())["artifacts"]["model_int8.tflite"]["extra"]
        for r in report["results"]:
            if r["runtime"] == "ai-edge-litert":
                rows.append((name, r, extra.get("calibration"), report["reference"]["accuracy"]))
    print(f"\n{len(held)} held-out digits; reference (PyTorch fp32) accuracy {rows[0][3]:.4f}\n")
    print(
        "| calibrated on | artifact | status | accuracy | top-1 agreement | cosine | SNR (dB) | mean abs "
        "| max abs | calibration record |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r, record, _ in rows:
        m = r["metrics"]
        print(
            f"| {name} | {r['artifact']} | {r['status']} | {r['accuracy']:.4f} | {m['top1_agreement']:.4f} "
            f"| {m['cosine']:.4f} | {m['snr_db']:.1f} | {m['mean_abs']:.3g} | {m['max_abs']:.3g} "
            f"| {record if r['precision'] == 'int8' else '-'} |"
        )
    own = next(r for n, r, _, _ in rows if n == "own images" and r["precision"] == "int8")
    noise = next(r for n, r, _, _ in rows if n == "uniform noise" and r["precision"] == "int8")
    for metric in ("max_abs", "mean_abs"):
        a, b = noise["metrics"][metric], own["metrics"][metric]
        print(f"int8 {metric}, noise-calibrated / own-data-calibrated: {a / b:.2f} ({a:.3g} / {b:.3g})")
    print(
        f"int8 SNR gained by calibrating on own data: {own['metrics']['snr_db'] - noise['metrics']['snr_db']:.1f} dB"
    )


if __name__ == "__main__":
    main()
