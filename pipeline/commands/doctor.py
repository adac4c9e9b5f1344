"""``onnxpipe doctor``: what onnxpipe can use on this machine, and the make target for what is missing."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click

#: The main environment's packages the default pipeline (train, export, convert, validate) needs.
CORE = ("torch", "onnx", "onnxruntime", "tensorflow", "onnx2tf", "ai-edge-litert")
#: Further packages whose versions shape results: shown, not required.
OTHER = ("onnxscript", "transformers", "numpy")


@dataclass(frozen=True)
class Check:
    """One row of the doctor's table."""

    what: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = False


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _main_environment() -> Check:
    found = {p: _version(p) for p in (*CORE, *OTHER)}
    missing = [p for p in CORE if found[p] is None]
    detail = ", ".join(f"{p} {v}" for p, v in found.items() if v)
    if missing:
        detail = f"missing {', '.join(missing)}; " + detail
    return Check(
        f"main environment ({Path(sys.prefix).name})", not missing, detail, "make setup", required=True
    )


def _other_environment(what: str, python: Path, packages: tuple[str, ...], fix: str) -> Check:
    """An environment of its own: its interpreter exists and reports its packages' versions."""
    if not python.is_file():
        return Check(what, False, f"not set up ({python.parents[1].name} missing)", fix)
    script = (
        "import importlib.metadata as m\n"
        f"for p in {list(packages)!r}:\n"
        "    try: print(p, m.version(p))\n"
        "    except m.PackageNotFoundError: print(p, '-')\n"
    )
    try:
        proc = subprocess.run(
            [str(python), "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check(what, False, f"{python} does not run: {e}", fix)
    versions = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    missing = [p for p in packages if versions.get(p, "-") == "-"]
    detail = ", ".join(f"{p} {versions[p]}" for p in packages if versions.get(p, "-") != "-")
    if proc.returncode or missing:
        return Check(what, False, f"missing {', '.join(missing) or packages[0]}; {detail}", fix)
    return Check(what, True, detail, fix)


def _cuda() -> list[Check]:
    """CUDA as torch, ONNX Runtime (a real session, not its provider list) and TensorFlow see it."""
    checks = []
    import torch

    if torch.cuda.is_available():
        checks.append(
            Check("CUDA: torch", True, f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})")
        )
    else:
        checks.append(
            Check("CUDA: torch", False, f"no CUDA device (torch {torch.__version__})", "a GPU machine")
        )
    from onnxpipe.validation.runtimes import RUNTIMES

    reason = RUNTIMES.get("onnxruntime").unavailable_reason("cuda")
    if reason is None:
        reason = _ort_session_device()
    checks.append(
        Check("CUDA: onnxruntime", reason is None, reason or "CUDAExecutionProvider runs", "make setup-gpu")
    )
    try:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        checks.append(
            Check("CUDA: tensorflow", bool(gpus), f"{len(gpus)} GPU(s) (tensorflow {tf.__version__})")
        )
    except ImportError:
        checks.append(Check("CUDA: tensorflow", False, "tensorflow is not installed", "make setup"))
    return checks


def _ort_session_device() -> str | None:
    """Why a real ONNX Runtime session does not run on CUDA (``None`` when it does)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    try:
        session = ort.InferenceSession(
            model.SerializeToString(),
            providers=["CUDAExecutionProvider", "CPUExecutionProvider"],
        )
    except Exception as e:  # a broken CUDA install raises here
        return f"a session on CUDA fails: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    if session.get_providers()[0] != "CUDAExecutionProvider":
        return "onnxruntime-gpu is installed but its session falls back to CPU (no GPU attached)"
    return None


def _browser() -> Check:
    found = next(
        (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )
    return Check(
        "Chromium (HTML report test, tfjs-browser)",
        found is not None,
        found or "not found",
        "make setup-browser (needs root)",
    )


def checks(cuda: bool = True) -> list[Check]:
    """Every check, in the order the table shows them."""
    from onnxpipe.converters.route import ROUTES
    from onnxpipe.converters.routes.litert_torch import LITERT_PYTHON
    from onnxpipe.converters.routes.onnx_tf import LEGACY_PYTHON
    from onnxpipe.converters.saved_model_to_tfjs import TFJS_PYTHON
    from onnxpipe.validation.runtimes import RUNTIMES
    from onnxpipe.validation.runtimes.tflite_edge import EDGE_PYTHON

    rows = [
        _main_environment(),
        _other_environment(
            "legacy environment (onnx-tf)",
            LEGACY_PYTHON,
            ("onnx_tf", "tensorflow", "onnx"),
            "make setup-legacy",
        ),
        _other_environment(
            "edge environment (tflite-runtime)", EDGE_PYTHON, ("tflite-runtime",), "make setup-edge"
        ),
        _other_environment(
            "litert environment (litert-torch)", LITERT_PYTHON, ("litert-torch", "torch"), "make setup-litert"
        ),
        _other_environment(
            "tfjs environment (tensorflowjs)", TFJS_PYTHON, ("tensorflowjs", "tensorflow"), "make setup-tfjs"
        ),
    ]
    for name in ROUTES.names():
        route = ROUTES.get(name)
        reason = route.unavailable_reason()
        rows.append(Check(f"route {name}", reason is None, reason or route.summary, route.needs))
    for name in RUNTIMES.names():
        reason = RUNTIMES.get(name).unavailable_reason("cpu")
        rows.append(Check(f"runtime {name}", reason is None, reason or "runs here (cpu)", ""))
    if cuda:
        rows += _cuda()
    rows.append(_browser())
    return rows


def render(rows: list[Check]) -> str:
    """The table: what, status, detail, and the fix for what is missing."""
    lines = ["| what | status | detail | fix |", "|---|---|---|---|"]
    for r in rows:
        status = "ok" if r.ok else ("MISSING" if r.required else "no")
        lines.append(f"| {r.what} | {status} | {r.detail.replace('|', '/')} | {'' if r.ok else r.fix} |")
    return "\n".join(lines) + "\n"


@click.command("doctor")
@click.option("--no-cuda", is_flag=True, help="Skip the CUDA checks (they import torch and TensorFlow).")
def command(no_cuda: bool) -> None:
    """What onnxpipe can use here: environments, routes, runtimes, CUDA, the browser; and the fixes.

    Exit code 0 when the default pipeline (train, export, convert, validate) can run, 1 otherwise.

    Example:
      onnxpipe doctor
    """
    version = _version("onnxpipe") or "?"
    click.echo(f"onnxpipe {version} on Python {sys.version.split()[0]} ({sys.executable})\n")
    rows = checks(cuda=not no_cuda)
    click.echo(render(rows))
    blocking = [r for r in rows if r.required and not r.ok]
    if blocking:
        click.echo(f"the default pipeline cannot run: {'; '.join(f'{r.what}: {r.fix}' for r in blocking)}")
        sys.exit(1)
    click.echo("the default pipeline can run here; rows marked `no` are optional (each row says its fix)")
