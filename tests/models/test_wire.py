"""The worker protocol: frames, events, typed errors, deaths, timeouts, and stray output."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from onnxpipe.models import wire
from onnxpipe.models.errors import ConversionError, EnvironmentProblem

HANDLER = """
import os, sys, time

class Refused(Exception):
    kind = "refused"

state = {"calls": 0}

def handle(req, arrays, emit):
    state["calls"] += 1
    op = req["op"]
    if op == "double":
        emit({"progress": "half way"})
        return {"calls": state["calls"]}, {k: v * 2 for k, v in arrays.items()}
    if op == "noisy":
        print("python print")
        os.write(1, b"C-level write to fd 1\\n")  # what a C++ library does
        return {"ok": True}
    if op == "refuse":
        raise Refused("no kernel for Foo")
    if op == "fail":
        print("the real reason is in the log", file=sys.stderr)
        raise ValueError("bad value")
    if op == "die":
        print("dying now", file=sys.stderr, flush=True)
        os._exit(7)
    if op == "sleep":
        time.sleep(60)
    if op == "hog":
        import numpy as np
        return {"sum": float(np.ones(req["bytes"] // 8).sum())}
    raise KeyError(op)
"""


@pytest.fixture
def handler(tmp_path):
    path = tmp_path / "handler.py"
    path.write_text(textwrap.dedent(HANDLER))
    return wire.command(sys.executable, path)


def test_a_long_lived_worker_answers_requests_with_arrays_and_events(handler):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    events = []
    with wire.Worker(handler, what="toy", error=ConversionError) as worker:
        first = worker.request({"op": "double"}, {"x": x, "i": np.int64(3)}, on_event=events.append)
        second = worker.request({"op": "double"}, {"x": x})
    np.testing.assert_array_equal(first.arrays["x"], 2 * x)
    assert first.arrays["x"].dtype == np.float32 and int(first.arrays["i"]) == 6
    assert (first.header["calls"], second.header["calls"]) == (1, 2)  # one process, state kept
    assert [e.header for e in events] == [{"progress": "half way"}]


def test_whatever_the_worker_prints_never_corrupts_the_channel(handler, tmp_path):
    log = tmp_path / "toy.log"
    reply = wire.call(handler, {"op": "noisy"}, what="toy", error=ConversionError, log=log)
    assert reply.header == {"ok": True}
    assert "python print" in log.read_text() and "C-level write" in log.read_text()


def test_a_worker_exception_is_raised_as_the_named_onnxpipe_error_with_its_message(handler):
    with pytest.raises(ConversionError, match="toy failed: ValueError: bad value") as raised:
        wire.call(handler, {"op": "fail"}, what="toy", error=ConversionError)
    assert "the real reason is in the log" in str(raised.value)  # the log's tail comes along
    assert raised.value.worker_type == "ValueError"
    assert "raise ValueError" in raised.value.worker_traceback


def test_an_error_kind_maps_to_its_own_error_class(handler):
    with pytest.raises(EnvironmentProblem, match="no kernel for Foo"):
        wire.call(
            handler,
            {"op": "refuse"},
            what="toy",
            error=ConversionError,
            errors={"refused": EnvironmentProblem},
        )


def test_a_worker_that_dies_is_an_error_naming_its_exit_and_last_words(handler):
    with pytest.raises(ConversionError, match="exited with code 7 before it replied") as raised:
        wire.call(handler, {"op": "die"}, what="toy", error=ConversionError)
    assert "dying now" in str(raised.value)


def test_a_worker_past_its_timeout_is_killed_and_reported(handler):
    with pytest.raises(ConversionError, match="toy did not finish within 1 s"):
        wire.call(handler, {"op": "sleep"}, what="toy", error=ConversionError, timeout_s=1)


def test_a_worker_keeps_serving_after_a_failed_request(handler):
    with wire.Worker(handler, what="toy", error=ConversionError) as worker:
        with pytest.raises(ConversionError, match="KeyError"):
            worker.request({"op": "unknown"})
        assert worker.request({"op": "double"}).header["calls"] == 2


def test_bytes_a_launcher_prints_before_the_frames_go_to_the_log(tmp_path):
    """torchrun's ranks share its stdout: anything not framed is set aside, not misread."""
    script = tmp_path / "launcher.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(wire.WIRE.parent)!r})
            import wire
            print("launcher says hello", flush=True)
            channel = wire.claim_stdout()
            channel.send("event", {{"n": 1}})
            channel.send("reply", {{"done": True}})
            """
        )
    )
    log = tmp_path / "launcher.log"
    events = []
    with wire.Worker([sys.executable, str(script)], what="launcher", error=ConversionError, log=log) as w:
        assert w.reply(on_event=events.append).header == {"done": True}
    assert [e.header for e in events] == [{"n": 1}]
    assert "launcher says hello" in log.read_text()


def test_the_protocol_module_stands_alone():
    """Workers in other environments run it by path: stdlib and NumPy only, no onnxpipe import."""
    import ast

    tree = ast.parse(wire.WIRE.read_text())
    imported = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, ast.Import) or (isinstance(n, ast.ImportFrom) and n.level == 0)
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    assert imported <= set(sys.stdlib_module_names) | {"numpy", "__future__"}, imported


def test_a_worker_over_its_memory_cap_fails_alone_and_its_peak_is_measured(handler):
    before = len(wire.PEAKS)
    with pytest.raises(EnvironmentProblem, match=r"toy: out of memory at 1\.0 GB"):
        wire.call(
            handler, {"op": "hog", "bytes": 2 * 2**30}, what="toy", error=ConversionError,
            errors={"out-of-memory": EnvironmentProblem}, max_memory=2**30,
        )  # fmt: skip
    reply = wire.call(
        handler, {"op": "hog", "bytes": 64 * 2**20}, what="toy", error=ConversionError, max_memory=2**30
    )
    assert reply.header["sum"] == 8 * 2**20
    (_, failed), (_, fine) = wire.PEAKS[before:]
    assert failed < 2**30 and 64 * 2**20 < fine < 2**30  # the 64 MB block is in the second one's peak
