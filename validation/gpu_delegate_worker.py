"""Worker: TensorFlow Lite's model analyzer with GPU delegate checks, in ``.venv-legacy`` (TF 2.15).

Standalone (stdlib + TensorFlow; no onnxpipe imports). TensorFlow 2.15's analyzer checks every op
against the GPU delegate's rules (op support, and the cases it takes: a Cast from INT64, say);
the analyzer of the main environment's TensorFlow 2.21 no longer flags anything (tensorflow#77042),
so the check runs here. Static: it reads the flatbuffer on the CPU, no GPU needed.

Served with the worker protocol (:mod:`onnxpipe.models.wire`). A request holds ``models`` (paths);
the reply holds, per path, ``ops`` (every op: subgraph, index, name) and ``rejected`` (those the
delegate would not take, with the analyzer's reason), and ``tensorflow`` (its version).
"""

import re

_OP = re.compile(r"^\s+Op#(\d+) (\w+)\((.*?)\) -> \[(.*?)\]")
_TENSOR = re.compile(r"^\s+T#(\d+)\(.*\) shape(?:_signature)?:\[[^\]]*\], type:(\w+)( RO)?")
_SUBGRAPH = re.compile(r"^Subgraph#(\d+) ")
_REF = re.compile(r"T#(\d+)")
_WARNING = "GPU COMPATIBILITY WARNING: "


def _allowed_inputs(reason):
    """How many runtime inputs a "runtime inputs" rejection allows (``None``: another kind of reason)."""
    m = re.search(r"Expected ([\d or]+) input tensor\(s\), but node has \d+ runtime inputs", reason)
    if m:
        return max(int(n) for n in re.findall(r"\d+", m.group(1)))
    m = re.search(r"doesn't support more than (\d+) runtime inputs", reason)
    return int(m.group(1)) if m else None


def _fold_fp16_weights(ops, tensors, rejected):
    """Accept again the ops rejected only for runtime inputs that are fp16 weights' DEQUANTIZE outputs.

    The analyzer checks ops one at a time. TensorFlow Lite's GPU delegate partitions the graph with
    FP16GraphPartitionHelper, which folds each DEQUANTIZE of a constant float16 tensor into the ops
    that consume it: those inputs are constants to the delegate, as in the float32 file.
    """
    folded = {}
    for op in ops:
        if op["op"] == "DEQUANTIZE" and len(op["inputs"]) == 1:
            t = tensors.get((op["subgraph"], op["inputs"][0]))
            if t == ("FLOAT16", True):
                folded[(op["subgraph"], op["outputs"][0])] = op
    kept = []
    for entry in rejected:
        limits = [_allowed_inputs(r) for r in entry["reasons"]]
        runtime = [
            i
            for i in entry["inputs"]
            if i >= 0
            and not (tensors.get((entry["subgraph"], i)) or ("", False))[1]
            and (entry["subgraph"], i) not in folded
        ]
        if limits and None not in limits and len(runtime) <= min(limits):
            continue  # takes only its data input once the fp16 weights are folded
        kept.append(entry)
    return kept, len(folded)


def _analyzer():
    """TensorFlow Lite's analyzer extension, loaded by path: 20 ms, where importing TensorFlow takes 2 s.

    It is self-contained (TensorFlow's own ``analyzer.py`` only calls it); where loading it alone
    fails, TensorFlow is imported and its module used.
    """
    import importlib.machinery
    import importlib.util
    import os

    try:
        spec = importlib.util.find_spec("tensorflow")  # found, not imported
        folder = os.path.join(os.path.dirname(spec.origin), "lite", "python", "analyzer_wrapper")
        name = next(
            f for f in os.listdir(folder) if f.startswith("_pywrap_analyzer_wrapper") and f.endswith(".so")
        )
        loader = importlib.machinery.ExtensionFileLoader(
            "_pywrap_analyzer_wrapper", os.path.join(folder, name)
        )
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
        loader.exec_module(module)
        return module.ModelAnalyzer
    except Exception:  # another layout of the package: the documented way
        from tensorflow.lite.python.analyzer_wrapper import _pywrap_analyzer_wrapper

        return _pywrap_analyzer_wrapper.ModelAnalyzer


def analyze(path):
    """The ops of one .tflite file and those the GPU delegate rejects, from the analyzer's report."""
    report = _analyzer()(path, True, True)  # (model, input is a path, check GPU compatibility)
    ops, tensors, rejected, subgraph, current = [], {}, {}, 0, None
    for line in report.splitlines():
        m = _SUBGRAPH.match(line)
        if m:
            subgraph, current = int(m.group(1)), None
            continue
        m = re.match(r"^Tensors of Subgraph#(\d+)", line)
        if m:
            subgraph, current = int(m.group(1)), None
            continue
        m = _OP.match(line)
        if m:
            current = {
                "subgraph": subgraph,
                "index": int(m.group(1)),
                "op": m.group(2),
                "inputs": [int(t) for t in _REF.findall(m.group(3))],
                "outputs": [int(t) for t in _REF.findall(m.group(4))],
            }
            ops.append(current)
            continue
        m = _TENSOR.match(line)
        if m:
            tensors[(subgraph, int(m.group(1)))] = (m.group(2), bool(m.group(3)))
            continue
        if line.startswith(_WARNING) and current is not None and "compatibility issues at nodes" not in line:
            key = (current["subgraph"], current["index"])
            entry = rejected.setdefault(key, {**current, "reasons": []})
            entry["reasons"].append(line[len(_WARNING) :].strip())
    kept, folded = _fold_fp16_weights(ops, tensors, list(rejected.values()))
    strip = ("inputs", "outputs")
    return {
        "ops": [{k: v for k, v in op.items() if k not in strip} for op in ops],
        "rejected": [{k: v for k, v in r.items() if k not in strip} for r in kept],
        "folded_fp16_dequantize": folded,
    }


def handle(header, arrays, emit):
    """One request of the worker protocol."""
    from importlib.metadata import version

    return {"tensorflow": version("tensorflow"), "models": {p: analyze(p) for p in header["models"]}}
