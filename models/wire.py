"""The worker protocol: how onnxpipe talks to a process of its own in another environment.

Every such process (the onnx2tf and onnx-tf converters, the tflite-runtime interpreter, the ranks
of distributed training, the next ones) speaks this one protocol over its stdin and stdout. Each
message is one frame::

    b"ONNXPIPE" | header length (u64 LE) | body length (u64 LE) | header: JSON | body: .npz or empty

The header's ``kind`` says what it is: ``request`` (parent to worker), then from the worker any
number of ``event`` frames (progress, epochs) and one ``reply`` or ``error``. An error header
holds the exception's ``type``, ``message``, ``traceback`` and an optional ``kind`` the parent
maps to a typed onnxpipe error. Arrays travel in the body as an ``.npz`` (never pickled).

The module needs only the standard library and NumPy and imports nothing of onnxpipe, because a
worker in another environment (numpy 1.26, no onnxpipe installed) runs it by path::

    python wire.py HANDLER.py

which loads ``HANDLER.py`` and serves its ``handle(header, arrays, emit)`` until stdin closes.
Inside the worker, file descriptor 1 belongs to the protocol: whatever Python or a C++ library
prints goes to stderr, which the parent keeps as the worker's log. The parent side is
:class:`Worker` (and :func:`call` for one request): it raises the worker's failure, its exit, or
its timeout as the onnxpipe error class the caller names, with the worker's message and its log's
last lines. A worker can run under a memory cap (``max_memory``: its address space, so a runaway
conversion fails alone instead of taking the machine): running out of it is reported as ``out of
memory at N GB`` (kind ``out-of-memory``). Every worker's peak resident memory is measured when
it exits (:attr:`Worker.peak_rss`) and added to :data:`PEAKS`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import resource
import selectors
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

__all__ = [
    "PEAKS",
    "WIRE",
    "Channel",
    "Message",
    "Worker",
    "call",
    "claim_stdout",
    "command",
    "from_npz",
    "serve",
    "to_npz",
]

#: This file: what a worker in another environment runs (``python WIRE HANDLER.py``).
WIRE = Path(__file__).resolve()

#: (what, peak resident bytes) of every worker that exited, in order: callers measure the workers
#: of one attempt as the entries added during it.
PEAKS: list[tuple[str, int]] = []

_MAGIC = b"ONNXPIPE"
_FRAME = struct.Struct("<8sQQ")


class Message(NamedTuple):
    """One frame: its kind, its JSON header (without ``kind``) and its arrays."""

    kind: str
    header: dict
    arrays: dict


def to_npz(arrays: Mapping) -> bytes:
    """A frame's body: ``arrays`` as an ``.npz`` (empty for no arrays)."""
    if not arrays:
        return b""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def from_npz(body: bytes) -> dict:
    """A frame body's arrays (never unpickled)."""
    if not body:
        return {}
    with np.load(io.BytesIO(body), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _encode(kind: str, header: Mapping | None, arrays: Mapping | None) -> bytes:
    head = json.dumps({**(header or {}), "kind": kind}).encode()
    body = to_npz(arrays or {})
    return _FRAME.pack(_MAGIC, len(head), len(body)) + head + body


def _decode(head: bytes, body: bytes) -> Message:
    header = json.loads(head)
    return Message(header.pop("kind"), header, from_npz(body))


class Channel:
    """Frames over a pair of binary streams (the worker's side: stdin and the real stdout)."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO):
        self._reader, self._writer = reader, writer

    def send(self, kind: str, header: Mapping | None = None, arrays: Mapping | None = None) -> None:
        """Write one frame and flush it."""
        self._writer.write(_encode(kind, header, arrays))
        self._writer.flush()

    def receive(self) -> Message | None:
        """The next frame, or ``None`` when the stream ends before one starts."""
        start = self._reader.read(_FRAME.size)
        if not start:
            return None
        if len(start) < _FRAME.size:
            raise EOFError("the stream ended inside a frame's start")
        magic, head_size, body_size = _FRAME.unpack(start)
        if magic != _MAGIC:
            raise ValueError(f"not a worker-protocol frame: starts with {start!r}")
        return _decode(self._reader.read(head_size), self._reader.read(body_size))


def claim_stdout() -> Channel:
    """This process's channel to its parent; from now on everything printed goes to stderr.

    Libraries print to file descriptor 1 from C++ too, so the descriptor itself moves: the
    protocol keeps a private copy of it, and descriptor 1 becomes a copy of stderr.
    """
    sys.stdout.flush()
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return Channel(sys.stdin.buffer, protocol_out)


def describe_error(e: BaseException) -> dict:
    """An error frame's header for ``e``: its type, message, traceback and optional ``kind``."""
    return {
        "type": type(e).__name__,
        "message": str(e),
        "error_kind": getattr(e, "kind", None),
        "traceback": traceback.format_exc(),
    }


Handler = Callable[[dict, dict, Callable[..., None]], Any]


def serve(handle: Handler, channel: Channel | None = None) -> int:
    """Answer requests with ``handle(header, arrays, emit)`` until the parent closes stdin.

    ``handle`` returns a reply header, or ``(header, arrays)``; ``emit(header, arrays)`` sends an
    event first. Whatever it raises goes back as an error frame, and the worker serves on.
    """
    channel = channel or claim_stdout()

    def emit(header: Mapping | None = None, arrays: Mapping | None = None) -> None:
        channel.send("event", header, arrays)

    while (msg := channel.receive()) is not None:
        try:
            result = handle(msg.header, msg.arrays, emit)
        except Exception as e:  # the parent raises it as a typed error
            channel.send("error", describe_error(e))
            continue
        header, arrays = result if isinstance(result, tuple) else (result, None)
        channel.send("reply", header, arrays)
    return 0


def command(python: str | os.PathLike, handler: str | os.PathLike) -> list[str]:
    """The command line that serves ``handler`` (a file) with ``python`` (any environment's)."""
    return [str(python), str(WIRE), str(handler)]


def _tail(data: bytes, lines: int = 15) -> str:
    text = data.decode(errors="replace").rstrip()
    return "\n".join(text.splitlines()[-lines:])


def _prctl():
    """Libc's ``prctl``, looked up in the parent (no dynamic loading in a forked child); ``None`` off Linux."""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``)."""
    if _PRCTL is not None:  # elsewhere the worker ends when its pipe does
        _PRCTL(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL


class Worker:
    """A worker process and its channel, seen from the parent. Use as a context manager.

    Args:
        argv: The command (:func:`command` for a handler file in any environment).
        what: What it does, for messages ("onnx2tf", "tflite-runtime", ...).
        error: The onnxpipe error class its failures, exits and timeouts are raised as.
        errors: Error classes by the ``kind`` a worker's exception declares (its ``kind``
            attribute), e.g. ``{"not-loadable": ArtifactNotLoadable}``.
        log: Where its stderr goes (a file kept for the user); a temporary file when ``None``.
        cwd: Its working folder.
        env: Its environment (``None``: this process's).
        max_memory: Its address-space cap in bytes (``None``: none). Running out of it raises the
            class ``errors["out-of-memory"]`` (else ``error``) with ``out of memory at N GB``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        what: str,
        error: type[Exception],
        errors: Mapping[str, type[Exception]] | None = None,
        log: str | os.PathLike | None = None,
        cwd: str | os.PathLike | None = None,
        env: Mapping[str, str] | None = None,
        max_memory: int | None = None,
    ):
        self.argv, self.what, self.error, self.errors = list(argv), what, error, dict(errors or {})
        self.max_memory = max_memory
        self.peak_rss: int | None = None
        self.log_path = Path(log) if log else None
        self.cwd, self.env = cwd, env
        self._proc: subprocess.Popen | None = None
        self._buf = bytearray()

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the process."""
        self._log = self.log_path.open("w+b") if self.log_path else tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=self.cwd,
            env=None if self.env is None else dict(self.env),
            preexec_fn=self._in_child,
        )
        os.set_blocking(self._proc.stdout.fileno(), False)

    def _in_child(self) -> None:
        """In the child, before it runs: die with this process, and cap its address space.

        A worker whose onnxpipe was killed (SIGKILL, the OOM killer) would otherwise go on writing
        into a run directory the next onnxpipe has taken over.
        """
        _die_with_parent()
        if self.max_memory:
            resource.setrlimit(resource.RLIMIT_AS, (self.max_memory, self.max_memory))

    def _wait(self, timeout_s: float | None = None) -> int:
        """Reap the process (``os.wait4``: its peak memory comes with its status); its exit code.

        Raises:
            subprocess.TimeoutExpired: It is still running after ``timeout_s``.
        """
        proc = self._proc
        assert proc is not None
        if proc.returncode is not None:
            return proc.returncode
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                self.peak_rss = usage.ru_maxrss * 1024  # kilobytes on Linux
                PEAKS.append((self.what, self.peak_rss))
                return proc.returncode
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.argv, timeout_s)
            time.sleep(0.05)

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the worker wrote to stderr."""
        self._log.flush()
        self._log.seek(0)
        return _tail(self._log.read(), lines)

    def send(self, header: Mapping | None = None, arrays: Mapping | None = None) -> None:
        """Send a request without waiting: :meth:`reply` collects the answer later."""
        assert self._proc is not None and self._proc.stdin is not None, "start the worker first"
        try:
            self._proc.stdin.write(_encode("request", header, arrays))
            self._proc.stdin.flush()
        except BrokenPipeError:
            self._wait()
            raise self._died() from None

    def request(
        self,
        header: Mapping | None = None,
        arrays: Mapping | None = None,
        *,
        on_event: Callable[[Message], None] | None = None,
        timeout_s: float | None = None,
    ) -> Message:
        """Send a request and return the reply, passing events to ``on_event`` on the way."""
        self.send(header, arrays)
        return self.reply(on_event=on_event, timeout_s=timeout_s)

    def reply(
        self, *, on_event: Callable[[Message], None] | None = None, timeout_s: float | None = None
    ) -> Message:
        """Wait for the worker's reply (a worker that starts working unasked, like a DDP rank)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            msg = self._receive(deadline, timeout_s)
            if msg is None:
                raise self._died()
            if msg.kind == "event":
                if on_event:
                    on_event(msg)
            elif msg.kind == "error":
                raise self._raised(msg.header)
            else:
                return msg

    def close(self, timeout_s: float = 10) -> int:
        """Close its stdin, wait for it to exit (killing it after ``timeout_s``); its exit status."""
        proc = self._proc
        if proc is None:
            return 0
        if proc.stdin and not proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        try:
            code = self._wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = self._wait()
        if proc.stdout:
            proc.stdout.close()
        self._log.close()
        self._proc = None
        return code

    # -- reading frames ------------------------------------------------------------------------

    def _receive(self, deadline: float | None, timeout_s: float | None) -> Message | None:
        start = self._fill(_FRAME.size, deadline, timeout_s)
        if start is None:
            return None
        _magic, head_size, body_size = _FRAME.unpack(bytes(self._buf[: _FRAME.size]))
        frame = self._fill(_FRAME.size + head_size + body_size, deadline, timeout_s)
        if frame is None:
            return None
        data = bytes(self._buf[: _FRAME.size + head_size + body_size])
        del self._buf[: len(data)]
        return _decode(data[_FRAME.size : _FRAME.size + head_size], data[_FRAME.size + head_size :])

    def _fill(self, size: int, deadline: float | None, timeout_s: float | None) -> bool | None:
        """Read until ``size`` bytes of a frame are buffered; ``None`` when the worker ended first.

        Bytes before a frame's start are not the protocol's (a launcher that printed to stdout):
        they go to the log.
        """
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                at = self._buf.find(_MAGIC)
                if at != 0 and len(self._buf) >= len(_MAGIC):
                    keep = at if at > 0 else len(self._buf) - len(_MAGIC) + 1
                    self._log.write(bytes(self._buf[:keep]))
                    del self._buf[:keep]
                    continue
                if len(self._buf) >= size and at == 0:
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self._proc.kill()
                    self._wait()
                    raise self._made(f"{self.what} did not finish within {timeout_s:.0f} s")
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self._wait()
                    return None
                self._buf += chunk

    # -- errors ------------------------------------------------------------------------------

    def _made(self, message: str, cls: type[Exception] | None = None, **attrs: Any) -> Exception:
        exc = (cls or self.error)(message)
        exc.log_tail = self.log_tail()  # type: ignore[attr-defined]
        for k, v in attrs.items():
            setattr(exc, k, v)
        return exc

    def _out_of_memory(self) -> Exception:
        cap = (self.max_memory or 0) / 2**30
        return self._made(
            f"{self.what}: out of memory at {cap:.1f} GB (its cap; --max-memory raises it)",
            self.errors.get("out-of-memory", self.error),
            error_kind="out-of-memory",
        )

    def _raised(self, header: dict) -> Exception:
        if self.max_memory and header["type"] in ("MemoryError", "ResourceExhaustedError"):
            return self._out_of_memory()
        cls = self.errors.get(header.get("error_kind") or "", self.error)
        tail = self.log_tail()
        return self._made(
            f"{self.what} failed: {header['type']}: {header['message']}"
            + (f"\n--- last lines of its log ---\n{tail}" if tail else ""),
            cls,
            worker_type=header["type"],
            worker_traceback=header.get("traceback"),
        )

    def _died(self) -> Exception:
        assert self._proc is not None
        code = self._proc.returncode
        # Under a cap, C++ allocators abort (std::bad_alloc) or the process is killed outright.
        if self.max_memory and code in (-signal.SIGABRT, -signal.SIGKILL, -signal.SIGSEGV):
            return self._out_of_memory()
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        tail = self.log_tail()
        return self._made(
            f"{self.what} {how} before it replied"
            + (f"\n--- last lines of its log ---\n{tail}" if tail else ""),
            worker_exit_status=code,
        )


def call(
    argv: Sequence[str],
    header: Mapping | None = None,
    arrays: Mapping | None = None,
    *,
    what: str,
    error: type[Exception],
    timeout_s: float | None = None,
    on_event: Callable[[Message], None] | None = None,
    **worker_options: Any,
) -> Message:
    """Start a worker, send it one request, return its reply, and let it exit."""
    with Worker(argv, what=what, error=error, **worker_options) as worker:
        return worker.request(header, arrays, on_event=on_event, timeout_s=timeout_s)


def _load_handler(path: str) -> Any:
    here = str(WIRE.parent)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]  # onnxpipe's models/ shadows
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # the handler's siblings, as for a script
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python wire.py HANDLER.py", file=sys.stderr)
        return 2
    channel = claim_stdout()  # before the handler's imports print anything
    return serve(_load_handler(argv[1]).handle, channel)


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
