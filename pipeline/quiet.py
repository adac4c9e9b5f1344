"""TensorFlow's start-up noise kept off the terminal (``onnxpipe --verbose`` lets it through).

Importing TensorFlow (or loading a TFLite interpreter) makes its C++ side write lines such as
``oneDNN custom operations are on``, ``Could not find cuda drivers on your machine``,
``failed call to cuInit: ... UNKNOWN ERROR (303)`` and ``Created TensorFlow Lite XNNPACK delegate
for CPU`` straight to file descriptor 2, once per process that imports it, before any Python
setting can reach them (they come from absl's logger, which ``TF_CPP_MIN_LOG_LEVEL`` no longer
governs). They read like failures to anyone who does not know TensorFlow and say nothing about the
user's model. :func:`filter_stderr` puts a pipe in front of descriptor 2 for the whole process (and
the workers it starts, which inherit it) and passes on every line except those: progress bars and
partial lines pass at once, so nothing waits for a newline.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import sys
import threading

__all__ = ["NOISE", "filter_stderr", "is_noise"]

#: What the frameworks print at start-up; each line matching one of these is dropped.
NOISE = tuple(
    re.compile(p)
    for p in (
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
        r"^I\d{4} [\d:.]+\s+\d+ \S+:\d+\] ",  # absl INFO lines (oneDNN, CUDA drivers, CPU features)
        r"^[WE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] .*(cuInit|cuda|CUDA|TensorRT|cuDNN|cuFFT|cuBLAS|computation placer)",
        r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags",
        r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU",
        r"^INFO: Initialized TensorFlow Lite runtime",
    )
)
#: How noise lines begin: a partial line that could still become one is held until it ends.
_STARTS = (b"WARNING: ", b"INFO: ", b"To enable ")
_ABSL = re.compile(rb"^[IWE]\d")


def _may_be_noise(partial: bytes) -> bool:
    return bool(_ABSL.match(partial)) or any(s.startswith(partial) or partial.startswith(s) for s in _STARTS)


def is_noise(line: str) -> bool:
    """Whether ``line`` is one of the frameworks' start-up lines."""
    return any(p.search(line) for p in NOISE)


class _Filter:
    """The pump between the pipe now at descriptor 2 and the real stderr."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self.real = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self.read = read
        # sys.stderr was opened on what descriptor 2 was (a file: seekable, and TextIOWrapper
        # remembers): a new one over the pipe, line-buffered, replaces it until stop().
        self.saved_stderr = sys.stderr
        sys.stderr = open(  # noqa: SIM115 - closed by stop()
            2,
            "w",
            buffering=1,
            encoding=sys.stderr.encoding or "utf-8",
            errors="backslashreplace",
            closefd=False,
        )
        self.thread = threading.Thread(target=self._pump, name="onnxpipe-stderr", daemon=True)
        self.thread.start()
        atexit.register(self.stop)

    def _out(self, data: bytes) -> None:
        while data:
            data = data[os.write(self.real, data) :]

    def _pump(self) -> None:
        held, mid_line = b"", False  # mid_line: the current line is passing, not being judged
        while True:
            try:
                chunk = os.read(self.read, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                if held:
                    self._out(held)
                return
            data, passing = held + chunk, []
            held = b""
            for piece in re.split(rb"(?<=[\n\r])", data):
                if not piece:
                    continue
                ended = piece.endswith((b"\n", b"\r"))
                if mid_line:
                    passing.append(piece)
                elif ended:
                    if not is_noise(piece.decode("utf-8", "replace").rstrip("\r\n")):
                        passing.append(piece)
                elif _may_be_noise(piece):
                    held = piece  # decided once the line ends
                else:
                    passing.append(piece)
                    mid_line = True
                if ended:
                    mid_line = False
            if passing:
                self._out(b"".join(passing))

    def stop(self) -> None:
        """Put the real stderr back and let the pump drain what is left."""
        with contextlib.suppress(OSError, ValueError):  # a closed stderr: nothing to flush
            sys.stderr.flush()
        if sys.stderr is not self.saved_stderr:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.close()
            sys.stderr = self.saved_stderr
        os.dup2(self.real, 2)  # the pipe's last writer here is gone: the pump reads to its end
        self.thread.join(timeout=1.0)


_ACTIVE: _Filter | None = None


def filter_stderr() -> None:
    """Drop the frameworks' start-up lines from this process's stderr (and its children's)."""
    global _ACTIVE
    if _ACTIVE is None:
        _ACTIVE = _Filter()
