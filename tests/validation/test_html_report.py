import json
import shutil
import subprocess

import pytest

from tests.conftest import onnxpipe

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium(tmp_path, *args):
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_report_html_is_self_contained(cnn_run):
    page = (cnn_run / "report.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert 'id="hops"' in page.replace("'", '"') and page.count("<svg") >= 2


def test_report_command_regenerates_the_pages(cnn_copy):
    (cnn_copy / "report.html").unlink()
    (cnn_copy / "parity.md").unlink()
    onnxpipe("report", str(cnn_copy), check=True)
    assert (cnn_copy / "report.html").stat().st_size > 1000
    assert json.loads((cnn_copy / "parity.json").read_text())["passed"]
    assert "# Parity report: PASSED" in (cnn_copy / "parity.md").read_text()


def test_report_command_refuses_what_is_not_a_report(tmp_path):
    (tmp_path / "parity.json").write_text("[1, 2]")
    proc = onnxpipe("report", str(tmp_path))
    assert proc.returncode == 2 and "not an onnxpipe parity report" in proc.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="Requires: chromium (make setup-browser installs it)")
def test_report_renders_with_its_plots_in_headless_chromium(cnn_run, tmp_path):
    url = (cnn_run / "report.html").as_uri()
    shot = tmp_path / "report.png"
    proc = _chromium(tmp_path, "--window-size=1280,1700", f"--screenshot={shot}", url)
    assert shot.is_file() and shot.stat().st_size > 20_000, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = _chromium(tmp_path, "--dump-dom", url).stdout
    assert "Parity report" in dom and "PASSED" in dom
    assert dom.count('class="bar"') >= 8 * 20  # one histogram per result, 20+ bars each
    assert "checkpoint.pt → model.onnx" in dom and "saved_model → model_fp16.tflite" in dom
