"""Subprocess worker: litert-torch 0.10 turns a PyTorch program into TFLite, in ``.venv-litert``.

Standalone on purpose (stdlib at import; torch, litert_torch, ai_edge_litert and
ai_edge_quantizer inside; no onnxpipe imports): litert-torch's dependencies cannot share the main
environment. Served with the worker protocol (:mod:`onnxpipe.models.wire`: ``python wire.py
litert_torch_worker.py``).

A ``versions`` request answers the versions of the packages that shape its files. A ``convert``
request holds ``program`` (a ``torch.export`` program saved by the main environment, with its
example inputs at the batch to convert) and ``tflite`` (precision -> path). ``fp32`` is
litert-torch's own file; ``fp16`` (float16 weights), ``dynamic_int8`` (int8 weights, float
activations), ``int8`` (int8 weights and activations) and ``int16x8`` (int8 weights, int16
activations) come from ai-edge-quantizer on that file, the last two calibrated on the request's
arrays (``"0"``, ``"1"``...: samples of each input, in the model's input order, batch first; the
file's inputs and outputs stay float). The reply holds each written file's
signature tensors, in signature order (``args_0``..., ``output_0``...), and ``failed`` (precision
-> reason) for a precision the quantizer could not make.
"""

import os
import re


def _versions(names=("litert-torch", "torch", "ai-edge-litert", "ai-edge-quantizer")):
    from package_versions import package_versions  # a sibling file

    return package_versions(names)


def _natural(key):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def _describe(path):
    """The file's serving signature: tensor name, signature key, shape and dtype of each input and output."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner()

    def spec(key, d):
        return {
            "key": key,
            "name": d["name"],
            "shape": [int(x) for x in d["shape"]],
            "dtype": d["dtype"].__name__,
        }

    ins, outs = runner.get_input_details(), runner.get_output_details()
    return {
        "inputs": [spec(k, ins[k]) for k in sorted(ins, key=_natural)],
        "outputs": [spec(k, outs[k]) for k in sorted(outs, key=_natural)],
    }


def _recipe(precision):
    from ai_edge_quantizer import recipe

    if precision == "dynamic_int8":
        return recipe.dynamic_wi8_afp32()
    if precision == "int8":
        return recipe.static_wi8_ai8()
    if precision == "int16x8":
        return recipe.static_wi8_ai16()
    if precision == "fp16":  # float16 weights, dequantized to float32 for compute
        from ai_edge_quantizer.algorithm_manager import AlgorithmName
        from ai_edge_quantizer.recipe_manager import RecipeManager

        manager = RecipeManager()
        manager.add_weight_only_config(
            regex=".*", operation_name="*", num_bits=16, algorithm_key=AlgorithmName.FLOAT_CASTING
        )
        return manager.get_quantization_recipe()
    raise ValueError(f"litert-torch route: no recipe for precision {precision!r}")


def _calibration_data(path, arrays):
    """The samples as ai-edge-quantizer takes them: signature key -> one feed per sample, batch 1."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    (key,) = interpreter.get_signature_list()  # litert-torch writes one signature
    details = interpreter.get_signature_runner(key).get_input_details()
    names = sorted(details, key=_natural)
    if len(arrays) != len(names):
        raise ValueError(f"calibration: {len(arrays)} inputs given, the file has {len(names)}")
    columns = [arrays[str(i)].astype(details[name]["dtype"]) for i, name in enumerate(names)]
    count = min(len(c) for c in columns)
    return {key: [{n: c[j : j + 1] for n, c in zip(names, columns, strict=True)} for j in range(count)]}


def _quantize(fp32, dest, precision, arrays):
    from ai_edge_quantizer import quantizer

    q = quantizer.Quantizer(fp32)
    q.load_quantization_recipe(_recipe(precision))
    if q.need_calibration:
        if not arrays:
            raise ValueError(f"{precision} needs calibration samples, and none were given")
        q.quantize(q.calibrate(_calibration_data(fp32, arrays))).export_model(dest, overwrite=True)
    else:
        q.quantize().export_model(dest, overwrite=True)


def _convert(req, arrays):
    import litert_torch
    import torch

    program = torch.export.load(req["program"])
    args, kwargs = program.example_inputs
    edge = litert_torch.convert(program.module(), tuple(args), kwargs or None)
    fp32 = req["tflite"].get("fp32") or os.path.join(os.path.dirname(req["program"]), "fp32.tflite")
    edge.export(fp32)
    files, failed = {"fp32": fp32}, {}
    for precision, dest in req["tflite"].items():
        if precision == "fp32":
            continue
        try:
            _quantize(fp32, dest, precision, arrays)
        except Exception as e:  # the quantizer names the op or tensor it could not handle
            failed[precision] = (
                f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300] if str(e).strip() else ''}"
            )
        else:
            files[precision] = dest
    return {
        "tflite": {p: _describe(path) for p, path in files.items() if p in req["tflite"]},
        "failed": failed,
        "versions": _versions(),
    }


def handle(header, arrays, emit):
    """Serve one request (see the module docstring)."""
    if header.get("mode") == "versions":
        names = header.get("names")
        return {"versions": _versions(tuple(names)) if names else _versions()}, {}
    return _convert(header, arrays), {}
