"""The conversion workers' protocol: ``python WORKER.py REQUEST.json RESULT.json``.

Shared by the onnx2tf worker (main environment) and the onnx-tf worker (legacy environment), which
import it by path: standard library only. The worker runs in the request's folder; every failure
becomes ``{"ok": false, "error": ..., "traceback": ...}`` in the result, for the parent to raise as
a proper error; the exit status is 0 only for an ``ok`` result.
"""

import json
import os
import traceback

__all__ = ["serve"]


def serve(request_path, result_path, handle):
    """Run ``handle(request)`` and write its result (or the failure) to ``result_path``; the exit status."""
    with open(request_path) as f:
        req = json.load(f)
    try:
        os.chdir(os.path.dirname(os.path.abspath(request_path)))
        result = handle(req)
    except BaseException as e:  # report every failure to the parent, which raises a proper error
        result = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    with open(result_path, "w") as f:
        json.dump(result, f, indent=2)
    return 0 if result["ok"] else 1
