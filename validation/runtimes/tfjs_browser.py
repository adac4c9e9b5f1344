"""TensorFlow.js in headless Chromium: the graph model on the browser's WebGL backend (WASM otherwise).

The validating process serves, from ``127.0.0.1`` only and on a port of its own, a page
(``validation/tfjs/page.html``), the tfjs scripts and WebAssembly binaries from
``validation/tfjs/node_modules`` (``make setup-tfjs``) and the artifact's own files, nothing else.
Headless Chromium (Debian's ``chromium``, ``make setup-browser``) opens the page, which loads the
model once, says which backend it got (WebGL through the machine's GPU, or SwiftShader's software
GPU where there is none, with float32 textures or not; WASM where the browser offers no WebGL), then
asks for batches and sends each one's outputs back: inputs and outputs travel as ``.npz`` bodies,
the same arrays every runtime gets. The page times ``execute`` and the read-back of the outputs.
"""

from __future__ import annotations

import http.server
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from onnxpipe.models import wire
from onnxpipe.models.artifact import Format
from onnxpipe.models.errors import OnnxpipeError
from onnxpipe.validation.runtimes.base import Runtime
from onnxpipe.validation.runtimes.tfjs import TFJS_DIR, packages_reason

__all__ = ["TfjsBrowserRuntime", "chromium_path"]

_MODULES = TFJS_DIR / "node_modules" / "@tensorflow"
#: What the page may fetch under lib/: name -> file.
_LIB = {
    "tf.min.js": _MODULES / "tfjs" / "dist" / "tf.min.js",
    "tf-backend-wasm.min.js": _MODULES / "tfjs-backend-wasm" / "dist" / "tf-backend-wasm.min.js",
    "npz.js": TFJS_DIR / "npz.js",
    **{
        name: _MODULES / "tfjs-backend-wasm" / "dist" / name
        for name in (
            "tfjs-backend-wasm.wasm",
            "tfjs-backend-wasm-simd.wasm",
            "tfjs-backend-wasm-threaded-simd.wasm",
        )
    },
}
_TYPES = {
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".html": "text/html",
}


class TfjsBrowserError(OnnxpipeError):
    """The page failed, or Chromium exited or did not answer."""


def chromium_path() -> str | None:
    """Chromium's executable: ``ONNXPIPE_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on PATH."""
    return os.environ.get("ONNXPIPE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _own_group() -> None:
    """In Chromium, before it runs: a process group of its own (stopped whole), dying with onnxpipe."""
    os.setsid()
    wire._die_with_parent()


class _Page:
    """The local server's state for one artifact: its folder, the pending batch, the replies."""

    def __init__(self, model_dir: Path):
        self.model_dir = model_dir.resolve()
        self.jobs: queue.Queue[tuple[dict, bytes]] = queue.Queue()
        self.replies: queue.Queue[tuple[dict, bytes]] = queue.Queue()


def _handler(page: _Page) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # no request log on stderr
            pass

        def _send(self, code: int, body: bytes = b"", ctype: str = "application/octet-stream", header=None):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if header is not None:
                self.send_header("X-Onnxpipe", json.dumps(header))
            self.end_headers()
            self.wfile.write(body)

        def _file(self, path: Path) -> None:
            self._send(200, path.read_bytes(), _TYPES.get(path.suffix, "application/octet-stream"))

        def do_GET(self) -> None:
            route = self.path.split("?", 1)[0]
            if route in ("/", "/index.html"):
                return self._file(TFJS_DIR / "page.html")
            if route.startswith("/lib/") and route[5:] in _LIB:
                return self._file(_LIB[route[5:]])
            if route.startswith("/model/"):  # the artifact's own files, and only those
                name = route[len("/model/") :]
                target = (page.model_dir / name).resolve()
                if "/" not in name and target.parent == page.model_dir and target.is_file():
                    return self._file(target)
                return self._send(404)
            if route == "/job":
                try:
                    header, body = page.jobs.get(timeout=10)
                except queue.Empty:
                    return self._send(204)
                return self._send(200, body, header=header)
            return self._send(404)

        def do_POST(self) -> None:
            if self.path != "/result":
                return self._send(404)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            page.replies.put((json.loads(self.headers.get("X-Onnxpipe") or "{}"), body))
            return self._send(200)

    return Handler


class TfjsBrowserRuntime(Runtime):
    """The graph model in a page of headless Chromium (WebGL where it has it, else WASM)."""

    name = "tfjs-browser"
    formats = frozenset({Format.TFJS})

    @classmethod
    def unavailable_reason(cls, device: str = "cpu") -> str | None:  # noqa: D102
        if chromium_path() is None:
            return "Chromium is not installed (no `chromium` on PATH): run `make setup-browser` (Debian's package)"
        return packages_reason() or super().unavailable_reason(device)

    def _load(self) -> None:
        self._page = _Page(self.artifact.path)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self._page))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._profile = tempfile.mkdtemp(prefix="onnxpipe-chromium-")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _close
        port = self._server.server_address[1]
        self._browser = subprocess.Popen(
            [
                chromium_path(),
                "--headless",
                "--no-sandbox",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--use-angle=swiftshader",  # a software GPU where the machine has none
                "--enable-unsafe-swiftshader",
                "--ignore-gpu-blocklist",
                f"--user-data-dir={self._profile}",
                f"http://127.0.0.1:{port}/?backend=webgl",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            preexec_fn=_own_group,
        )
        self._next_id = 0
        try:
            hello, _ = self._reply(timeout_s=120, what="load the model")
        except Exception:
            self._close()
            raise
        if "error" in hello:
            self._close()
            raise TfjsBrowserError(
                f"the page could not load {self.artifact.label}: {hello['type']}: {hello['error']}"
            )
        self.version, self.backend, self._agent = hello["version"], hello["backend"], hello.get("agent", "")
        self._declared = {d["name"]: d["shape"] for d in hello["inputs"]}
        self._dtypes = {d["name"]: d["dtype"] for d in hello["inputs"]}

    @property
    def detail(self) -> str:
        """The browser and the backend the page got (``webgl (ANGLE ... SwiftShader ..., float32 textures)``)."""
        b = self.backend
        got = b["name"]
        if got == "webgl":
            got += f" ({b['renderer'] or 'unknown renderer'}, {'float32' if b['float32'] else 'float16'} textures)"
        browser = re.search(r"(HeadlessChrome|Chrome)/(\S+)", self._agent)
        where = f"Chromium {browser.group(2)}" if browser else "the browser"
        return f"@tensorflow/tfjs {self.version} in {where}, backend {got}"

    def _reply(self, timeout_s: float, what: str) -> tuple[dict, bytes]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self._page.replies.get(timeout=0.2)
            except queue.Empty:
                pass
            code = self._browser.poll()
            if code is not None:
                raise TfjsBrowserError(
                    f"Chromium exited ({code}) before the page could {what}{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                raise TfjsBrowserError(f"the page did not {what} within {timeout_s:.0f} s{self._log_tail()}")

    def _log_tail(self) -> str:
        self._log.seek(0)
        lines = [line for line in self._log.read().decode(errors="replace").splitlines() if line.strip()]
        return ("\n--- last lines of Chromium's log ---\n" + "\n".join(lines[-8:])) if lines else ""

    def declared_shapes(self) -> dict[str, list[int]]:  # noqa: D102
        return self._declared

    def declared_dtypes(self) -> dict[str, str]:  # noqa: D102
        return {k: v for k, v in self._dtypes.items() if v in ("float32", "int32", "bool")}

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        self._next_id += 1
        self._page.jobs.put(({"op": "run", "id": self._next_id}, wire.to_npz(feeds)))
        while True:
            header, data = self._reply(timeout_s=600, what="run a batch")
            if header.get("id") == self._next_id:
                break
        if "error" in header:
            raise TfjsBrowserError(f"{header['type']}: {header['error']}")
        self.inference_s = header["seconds"]
        return wire.from_npz(data)

    def _close(self) -> None:
        browser = getattr(self, "_browser", None)
        if browser is not None:
            self._page.jobs.put(({"op": "stop"}, b""))
            try:
                os.killpg(browser.pid, signal.SIGTERM)
                browser.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(browser.pid, signal.SIGKILL)
                browser.wait()
            self._browser = None
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
            self._server = None
        if getattr(self, "_profile", None):
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
