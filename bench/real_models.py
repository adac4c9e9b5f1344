"""Real trained models from public packages through onnxpipe, as a new user would run it (issue #25).

Downloads the pinned wheels with pip (no other network), unpacks their model files, converts each
with `onnxpipe convert`'s defaults (plus `--input-shape` only where a model's sizes are free and
its package says which), validates the kept files on realistic inputs (rendered text for the OCR
models, synthetic scenes for the detector, speech-like audio for the voice-activity models, face-like
crops for MTCNN), and writes a table: model x artifact -> pass / fail / refused with the reason,
seconds, peak memory.

Usage: python bench/real_models.py [--only NAME,...] [--out runs/real] [--cache DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _common import ROOT, load_line

WHEELS = ("rapidocr-onnxruntime==1.4.4", "silero-vad==6.2.3", "nudenet==3.4.2", "facenet-pytorch==2.6.0")
NETS = ROOT / "bench" / "mtcnn_nets.py"


@dataclass(frozen=True)
class RealModel:
    """One model: where it is in its wheel, how it is fed, what its package says of its sizes."""

    name: str
    member: str  # the file inside the unpacked wheels
    inputs: str  # the kind of realistic samples made for it (see make_inputs)
    args: tuple[str, ...] = ()
    note: str = ""
    extra: dict = field(default_factory=dict)


MODELS = (
    RealModel(
        "ppocr-det",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        "text-page",
        ("--input-shape", "x=1,3,320,320"),
        "PP-OCRv4 text detector; sides free (multiples of 32; rapidocr resizes to them)",
    ),
    RealModel(
        "ppocr-rec",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
        "text-line",
        ("--input-shape", "x=1,3,48,320"),
        "PP-OCRv4 recognizer; rapidocr feeds lines 48 high, 320 wide",
    ),
    RealModel(
        "ppocr-cls",
        "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "text-cls",
        ("--input-shape", "x=1,3,48,192"),
        "PP-OCR direction classifier; batch written -1, rapidocr feeds 48 x 192",
    ),
    RealModel(
        "yolov8n",
        "nudenet/320n.onnx",
        "scene",
        ("--input-shape", "images=1,3,320,320"),
        "YOLOv8n detector (nudenet); height and width named, 320 in its package",
    ),
    RealModel(
        "silero-vad", "silero_vad/data/silero_vad.onnx", "audio", (), "Silero VAD v6; sr chooses an If"
    ),
    RealModel(
        "silero-vad-op15",
        "silero_vad/data/silero_vad_16k_op15.onnx",
        "audio",
        (),
        "Silero VAD 16 kHz, opset 15",
    ),
    RealModel(
        "silero-vad-op18", "silero_vad/data/silero_vad_op18_ifless.onnx", "audio", (), "Silero VAD, opset 18"
    ),
    RealModel(
        "mtcnn-pnet",
        "facenet_pytorch/data/pnet.pt",
        "face-12",
        ("--model-class", f"{NETS}:PNet", "--input-shape", "1,3,12,12"),
        "MTCNN P-Net",
    ),
    RealModel(
        "mtcnn-rnet",
        "facenet_pytorch/data/rnet.pt",
        "face-24",
        ("--model-class", f"{NETS}:RNet", "--input-shape", "1,3,24,24"),
        "MTCNN R-Net",
    ),
    RealModel(
        "mtcnn-onet",
        "facenet_pytorch/data/onet.pt",
        "face-48",
        ("--model-class", f"{NETS}:ONet", "--input-shape", "1,3,48,48"),
        "MTCNN O-Net",
    ),
)


def fetch(cache: Path) -> Path:
    """Download and unpack the wheels into ``cache`` (once); the folder of their files."""
    unpacked = cache / "unpacked"
    if unpacked.is_dir():
        return unpacked
    wheels = cache / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels), *WHEELS],
        check=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix=".unpacked-", dir=cache))
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp, [m for m in z.namelist() if m.endswith((".onnx", ".pt"))])
    tmp.rename(unpacked)
    return unpacked


def _text_images(n: int, height: int, width: int, rng: np.random.Generator, lines: int) -> np.ndarray:
    """``n`` RGB images of dark text on light paper, [n, height, width, 3] in [0, 1]."""
    from PIL import Image, ImageDraw

    words = ["onnxpipe", "parity", "2026", "TFLite", "model", "validate", "hello world", "OCR 42", "convert"]
    out = []
    for _ in range(n):
        paper = tuple(int(v) for v in rng.integers(200, 256, 3))
        im = Image.new("RGB", (width, height), paper)
        draw = ImageDraw.Draw(im)
        for k in range(lines):
            y = int((k + 0.2) * height / lines) if lines > 1 else int(height * 0.25)
            x = int(rng.integers(2, max(3, width // 6)))
            ink = tuple(int(v) for v in rng.integers(0, 80, 3))
            draw.text(
                (x, y), " ".join(rng.choice(words, 3)), fill=ink, font_size=max(10, height // (lines + 1))
            )
        out.append(np.asarray(im, np.float32) / 255.0)
    return np.stack(out)


def _scenes(n: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """Synthetic scenes: a sky-to-ground gradient, a few ellipses and boxes, sensor noise; [n, side, side, 3]."""
    from PIL import Image, ImageDraw

    out = []
    for _ in range(n):
        top, bottom = rng.uniform(0.3, 1.0, 3), rng.uniform(0.0, 0.6, 3)
        t = np.linspace(0, 1, side)[:, None, None]
        base = (top * (1 - t) + bottom * t) * np.ones((side, side, 3))
        im = Image.fromarray((base * 255).astype(np.uint8))
        draw = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(2, 6))):
            x0, y0 = rng.integers(0, side - 40, 2)
            w, h = rng.integers(20, side // 2, 2)
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=colour)
        pixels = np.asarray(im, np.float32) / 255.0 + rng.normal(0, 0.02, (side, side, 3))
        out.append(np.clip(pixels, 0, 1))
    return np.stack(out).astype(np.float32)


def make_inputs(kind: str, path: Path, n: int = 8, seed: int = 0) -> Path:
    """Realistic samples for a model, as an ``.npz`` of its input names, in its layout and scaling."""
    rng = np.random.default_rng(seed)
    nchw = lambda a: np.ascontiguousarray(a.transpose(0, 3, 1, 2)).astype(np.float32)  # noqa: E731
    if kind == "text-page":  # PP-OCR det: ImageNet mean and std
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        arrays = {"x": nchw((_text_images(n, 320, 320, rng, lines=6) - mean) / std)}
    elif kind in ("text-line", "text-cls"):  # PP-OCR rec and cls: (x - 0.5) / 0.5
        width = 320 if kind == "text-line" else 192
        arrays = {"x": nchw((_text_images(n, 48, width, rng, lines=1) - 0.5) / 0.5)}
    elif kind == "scene":  # YOLOv8: [0, 1]
        arrays = {"images": nchw(_scenes(n, 320, rng))}
    elif kind == "audio":  # 512 samples at 16 kHz: voiced harmonics with vibrato, breath noise, silence
        t = np.arange(512) / 16000
        clips = []
        for i in range(n):
            f0 = rng.uniform(90, 250)
            voiced = sum(
                np.sin(2 * np.pi * k * f0 * t * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / k
                for k in range(1, 6)
            )
            level = 0.0 if i % 4 == 3 else rng.uniform(0.05, 0.5)
            clips.append(level * voiced + rng.normal(0, 0.005, 512))
        arrays = {
            "input": np.stack(clips).astype(np.float32),
            "state": np.zeros((2, n, 128), np.float32),
            "sr": np.array(16000, np.int64),
        }
    elif kind.startswith("face-"):  # MTCNN: (x - 127.5) / 128
        side = int(kind.split("-")[1])
        arrays = {"input": nchw((_scenes(n, max(side, 48), rng)[:, :side, :side] * 255 - 127.5) * 0.0078125)}
    else:
        raise ValueError(kind)
    np.savez(path, **arrays)
    return path


def _peak_of(proc: subprocess.Popen) -> int:
    """Peak resident memory of ``proc`` and its children together, sampled every 0.2 s (bytes)."""
    import psutil

    peak = 0
    try:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            total = 0
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
            peak = max(peak, total)
            time.sleep(0.2)
    except psutil.Error:
        pass
    return peak


def _onnxpipe(args: list[str]) -> tuple[int, str, float, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "onnxpipe.pipeline", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    import threading

    peak: list[int] = []
    watcher = threading.Thread(target=lambda: peak.append(_peak_of(proc)))
    watcher.start()
    out, err = proc.communicate()
    watcher.join()
    return proc.returncode, out + err, time.perf_counter() - t0, peak[0] if peak else 0


def _reason(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("Error:")]
    line = lines[-1] if lines else (text.strip().splitlines() or ["(no output)"])[-1]
    return line[:300]


def run_one(model: RealModel, files: Path, out: Path, runtimes: str | None) -> list[dict]:
    """Convert and validate one model; its rows."""
    run = out / model.name
    samples = make_inputs(model.inputs, out / f"{model.name}_inputs.npz")
    source = files / model.member
    code, text, seconds, peak = _onnxpipe(
        ["convert", str(source), "--out", str(run), "--inputs", str(samples), *model.args]
    )
    traceback = "Traceback" in text
    base = {
        "model": model.name,
        "convert_s": round(seconds, 1),
        "peak_gb": round(peak / 2**30, 2),
        "traceback": traceback,
    }
    kept = (run / "manifest.json").is_file() and json.loads((run / "manifest.json").read_text())["artifacts"]
    failed = (
        []
        if code == 0
        else [
            base | {"artifact": "-", "status": "refused" if code == 2 else "failed", "reason": _reason(text)}
        ]
    )
    if code != 0 and (code == 2 or not any(not k.endswith(".onnx") for k in kept or {})):
        return failed  # refused, or nothing kept: the planner keeps what passed and says what did not
    args = ["validate", str(run), "--inputs", str(samples), "--devices", "cpu", "--force"]
    if "--model-class" in model.args:  # the run's checkpoint imports this class: say so again
        args += ["--model-class", model.args[model.args.index("--model-class") + 1]]
    args += ["--runtimes", runtimes] if runtimes else []
    _, vtext, vseconds, _ = _onnxpipe(args)
    base |= {"validate_s": round(vseconds, 1), "traceback": traceback or "Traceback" in vtext}
    if not (run / "parity.json").is_file():
        return [base | {"artifact": "-", "status": "failed", "reason": _reason(vtext)}]
    report = json.loads((run / "parity.json").read_text())  # the kept files, as validate judged them
    manifest = json.loads((run / "manifest.json").read_text())["artifacts"]
    rows = []
    for artifact in dict.fromkeys(r["artifact"] for r in report["results"]):
        results = [r for r in report["results"] if r["artifact"] == artifact]
        statuses = sorted({r["status"] for r in results})
        worst = max(
            (r for r in results if r.get("metrics")), key=lambda r: r["metrics"]["max_abs"], default=None
        )
        rows.append(
            base
            | {
                "artifact": artifact,
                "route": manifest.get(artifact, {}).get("backend"),
                "status": "pass" if statuses == ["pass"] else "/".join(statuses),
                "max_abs": worst and worst["metrics"]["max_abs"],
                "runtimes": len(results),
                "reason": next(
                    (r["message"] for r in results if r["status"] != "pass" and r.get("message")), ""
                ),
            }
        )
    return rows + failed


def render(rows: list[dict]) -> str:
    """The table, one row per model and artifact."""
    lines = [
        "| model | artifact | route | status | worst max abs | runtimes | convert s | validate s | peak GB | reason |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        max_abs = "–" if r.get("max_abs") is None else f"{r['max_abs']:.2e}"
        lines.append(
            f"| {r['model']} | {r['artifact']} | {r.get('route') or '–'} | {r['status']} | {max_abs} | "
            f"{r.get('runtimes', '–')} | {r['convert_s']} | {r.get('validate_s', '–')} | {r['peak_gb']} | "
            f"{(r.get('reason') or '').replace('|', '/')[:160]} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Fetch, convert, validate, and write ``real_models.md``/``.json`` into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="Comma list of model names.")
    parser.add_argument("--out", default="runs/real", type=Path)
    parser.add_argument(
        "--cache",
        default=Path(os.environ.get("ONNXPIPE_REAL_CACHE", ROOT / "runs" / ".real-models")),
        type=Path,
    )
    parser.add_argument("--runtimes", default=None, help="Validate on these runtimes only [every one].")
    a = parser.parse_args()
    chosen = [m for m in MODELS if a.only is None or m.name in a.only.split(",")]
    out = a.out if a.out.is_absolute() else ROOT / a.out
    out.mkdir(parents=True, exist_ok=True)
    a.cache.mkdir(parents=True, exist_ok=True)
    print(load_line())
    files = fetch(a.cache)
    rows = []
    for model in chosen:
        print(f"== {model.name}: {model.note}", flush=True)
        got = run_one(model, files, out, a.runtimes)
        for r in got:
            print(f"   {r['artifact']}: {r['status']} {r.get('reason', '')[:200]}", flush=True)
        rows += got
    table = render(rows)
    (out / "real_models.md").write_text(table)
    (out / "real_models.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table)
    tracebacks = [r["model"] for r in rows if r["traceback"]]
    print(f"tracebacks: {len(set(tracebacks))} ({', '.join(sorted(set(tracebacks))) or 'none'})")


if __name__ == "__main__":
    main()
