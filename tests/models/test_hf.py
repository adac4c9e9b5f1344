"""Hugging Face models by folder: imported offline, named as transformers names them, refused with the reason."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import onnxpipe

transformers = pytest.importorskip("transformers")


def _moved(model, folder):
    """Save ``model`` with its weights moved far from their near-zero defaults."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.save_pretrained(folder)
    return folder


def _tiny_bert(folder, seed: int = 0):
    """A BERT classifier from a tiny config, its weights moved far from their near-zero defaults."""
    import torch

    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    return _moved(transformers.BertForSequenceClassification(config), folder)


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    return _tiny_bert(tmp_path_factory.mktemp("hf") / "bert")


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_a_hugging_face_folder_converts_offline_with_its_own_names(bert_folder, tmp_path):
    before = _hashes(bert_folder)
    run = tmp_path / "run"
    proc = onnxpipe(
        "convert", str(bert_folder), "--seq-len", "8", "--precision", "fp32", "--out", str(run),
        env={"HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _hashes(bert_folder) == before  # nothing written into the user's folder
    manifest = json.loads((run / "manifest.json").read_text())
    for name in ("saved_model", "model_fp32.tflite"):
        record = manifest["artifacts"][name]
        assert [b["name"] for b in record["inputs"]] == ["input_ids"]
        assert [b["name"] for b in record["outputs"]] == ["logits"]
    spec = manifest["artifacts"]["saved_model"]["spec"]
    assert spec["inputs"][0]["shape"] == ["batch", 8] and spec["inputs"][0]["dtype"] == "int64"
    assert spec["name"] == "HuggingFaceModel" and spec["value_range"] == [0.0, 64.0]
    assert manifest["stages"]["import"]["options"]["hf_folder"] == str(bert_folder.resolve())
    rows = json.loads((run / "backends.json").read_text())["rows"]
    kept = [r for r in rows if r["kept"]]
    assert {r["artifact"] for r in kept} == {"saved_model", "model_fp32.tflite"}
    assert all(r["status"] == "pass" and r["max_abs"] < 1e-4 for r in kept), kept
    tried = {r["backend"]: r["seconds"] or 0.0 for r in rows}  # each route: export, convert, validate
    assert manifest["stages"]["convert"]["seconds"] >= sum(tried.values()) > 1.0  # the stage as waited for

    # `onnxpipe validate` agrees: the run's own reference, then the folder itself as the reference.
    proc = onnxpipe("validate", str(run), "--force", "--devices", "cpu")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # What the user should know, said once: the fixed batch of the static route's artifacts.
    assert proc.stdout.count("note: model_fp32.tflite: its batch is fixed to 1") == 1
    assert proc.stdout.count("note: tf.lite: TensorFlow deprecates tf.lite.Interpreter") == 1
    report = json.loads((run / "parity.json").read_text())
    ran = {r["artifact"] for r in report["results"] if r["status"] == "pass"}
    assert {"model.onnx", "saved_model", "model_fp32.tflite"} <= ran
    assert not [r for r in report["results"] if r["status"] not in ("pass", "unavailable")]
    tflite = str(run / "model_fp32.tflite")
    proc = onnxpipe(
        "validate", "--reference", str(bert_folder), "--seq-len", "8", "--candidate", tflite,
        "--devices", "cpu", "--out", str(tmp_path / "by-folder"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _hashes(bert_folder) == before
    # ...and a folder holding other weights (the same architecture, another seed) is told apart.
    other = _tiny_bert(tmp_path / "other-bert", seed=1)
    proc = onnxpipe(
        "validate", "--reference", str(other), "--seq-len", "8", "--candidate", tflite,
        "--devices", "cpu", "--out", str(tmp_path / "other"),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = json.loads((tmp_path / "other" / "parity.json").read_text())["results"]
    assert {r["status"] for r in failed if r["artifact"] == "model_fp32.tflite"} == {"fail"}


@pytest.mark.slow  # heavy end-to-end case of an older feature: the default suite stays near its time
def test_a_vision_folder_runs_end_to_end_and_validates(tmp_path):
    import torch

    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=5,
    )  # fmt: skip
    folder = _moved(transformers.ViTForImageClassification(config), tmp_path / "vit")
    run = tmp_path / "run"
    proc = onnxpipe("run", "--model", str(folder), "--precision", "fp32", "--out", str(run))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stage times: import" in proc.stdout
    config = json.loads((run / "config.json").read_text())
    assert "train" not in config and config["import"]["hf_folder"] == str(folder.resolve())
    report = json.loads((run / "parity.json").read_text())
    ran = [r for r in report["results"] if r["status"] != "unavailable"]
    assert {r["artifact"] for r in ran} == {"model.onnx", "saved_model", "model_fp32.tflite"}
    assert all(r["status"] == "pass" for r in ran), [(r["artifact"], r["runtime"], r["message"]) for r in ran]
    manifest = json.loads((run / "manifest.json").read_text())
    (pixels,) = manifest["artifacts"]["model.onnx"]["spec"]["inputs"]
    assert pixels["name"] == "pixel_values" and pixels["shape"] == ["batch", 3, 32, 32]
    assert [b["name"] for b in manifest["artifacts"]["model_fp32.tflite"]["outputs"]] == ["logits"]
    proc = onnxpipe("validate", str(run), "--force", "--devices", "cpu")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = onnxpipe("run", "--model", str(folder), "--epochs", "3", "--out", str(run))
    assert proc.returncode == 2 and "imported, not trained" in proc.stderr
    proc = onnxpipe("export", str(folder), "--attention-mask", "--out", str(tmp_path / "m" / "model.onnx"))
    assert proc.returncode == 2 and "takes no attention_mask beside pixel_values" in proc.stderr


@pytest.mark.slow  # 53 s: the padding-mask inputs themselves are checked in tests/validation/test_parity.py
def test_an_attention_mask_is_an_input_of_its_own_range(bert_folder, tmp_path):
    import numpy as np
    import onnxruntime as ort

    run = tmp_path / "run"
    proc = onnxpipe(
        "convert",
        str(bert_folder),
        "--seq-len",
        "8",
        "--attention-mask",
        "--precision",
        "fp32",
        "--out",
        str(run),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Loading weights" not in proc.stderr  # transformers' progress bars are not ours to show
    assert "onnxscript" not in proc.stderr  # nor its optimizer's skipped folds
    # Validated on right-padding masks (a row that attends to nothing has no defined output)
    rows = json.loads((run / "backends.json").read_text())["rows"]
    kept = [r for r in rows if r["kept"]]
    assert {r["artifact"] for r in kept} == {"saved_model", "model_fp32.tflite"}
    assert all(r["status"] == "pass" for r in kept), kept
    out = run / "model.onnx"
    spec = json.loads((run / "manifest.json").read_text())["artifacts"]["model.onnx"]["spec"]
    ids, mask = spec["inputs"]
    assert (ids["name"], mask["name"]) == ("input_ids", "attention_mask")
    assert mask["dtype"] == "int64" and mask["kind"] == "attention_mask" and "kind" not in ids
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    tokens = np.arange(16, dtype=np.int64).reshape(2, 8) % 64
    full = session.run(None, {"input_ids": tokens, "attention_mask": np.ones_like(tokens)})[0]
    half = session.run(
        None, {"input_ids": tokens, "attention_mask": (np.arange(8) < 4)[None].repeat(2, 0).astype(np.int64)}
    )[0]
    assert np.abs(full - half).max() > 1e-3  # the mask is used, not constant-folded away
    proc = onnxpipe("run", "--model", "cnn", "--attention-mask", "--out", str(tmp_path / "cnn"))
    assert proc.returncode == 2 and "--attention-mask: only with a Hugging Face folder" in proc.stderr


def test_a_chosen_output_field_is_converted_and_an_unknown_one_refused(bert_folder, tmp_path):
    proc = onnxpipe(
        "export", str(bert_folder), "--output", "hidden", "--out", str(tmp_path / "a" / "model.onnx")
    )
    assert proc.returncode == 2 and "returns logits" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "a" / "model.onnx").exists()


def _refusal(tmp_path, config: dict, weights: bool = True):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    if weights:
        (folder / "model.safetensors").write_bytes(b"")
    proc = onnxpipe("export", str(folder), "--out", str(tmp_path / "out" / "model.onnx"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"] + ["model.safetensors"] * weights
    return proc.stderr


@pytest.mark.parametrize(
    ("config", "weights", "reason"),
    [
        ({"architectures": ["BertModel"], "auto_map": {"AutoModel": "x.Y"}}, True, "asks for remote code"),
        (
            {"architectures": ["NoSuchModelForAnything"]},
            True,
            "unknown architecture 'NoSuchModelForAnything'",
        ),
        ({"model_type": "bert"}, True, "names no architectures"),
        ({"architectures": ["BertModel"], "vocab_size": 64}, False, "holds no weights"),
    ],
    ids=["remote-code", "unknown-architecture", "no-architectures", "no-weights"],
)
def test_a_folder_onnxpipe_cannot_load_offline_is_refused_with_the_reason(tmp_path, config, weights, reason):
    assert reason in _refusal(tmp_path, config, weights)


def test_model_options_that_do_not_apply_are_refused(bert_folder, tmp_path):
    proc = onnxpipe("convert", str(bert_folder), "--model-class", "x.py:Y", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "not with a Hugging Face folder" in proc.stderr
    proc = onnxpipe("export", str(tmp_path / "nothing.pt"), "--seq-len", "8")
    assert proc.returncode == 2 and "--seq-len: only with a Hugging Face folder" in proc.stderr


def test_a_folder_whose_weights_lack_the_head_is_refused_not_filled_at_random(bert_folder, tmp_path):
    import shutil

    folder = tmp_path / "headless"
    shutil.copytree(bert_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    base = transformers.BertModel.from_pretrained(bert_folder)  # the encoder alone, no classifier
    base.save_pretrained(folder)
    (folder / "config.json").write_text(json.dumps(config))  # still says BertForSequenceClassification
    proc = onnxpipe("export", str(folder), "--out", str(tmp_path / "out" / "model.onnx"))
    assert proc.returncode != 0 and "lack tensors BertForSequenceClassification needs" in proc.stderr
    assert "classifier.weight" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "model.onnx").exists()


def _folder_with_tokenizer(bert_folder, tmp_path):
    """The tiny BERT with a WordPiece tokenizer saved beside it, and a text file of lines."""
    import shutil

    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *["the", "a", "cat", "dog", "sat", "on", "mat", "ran", "fast", "red"],
    ]
    folder = tmp_path / "bert_tok"
    shutil.copytree(bert_folder, folder)
    transformers.BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(folder)
    lines = tmp_path / "lines.txt"
    lines.write_text("the cat sat on the mat\n\na dog ran fast\nthe red cat ran\n")  # blank lines skipped
    return folder, lines


def test_text_lines_are_tokenized_with_the_folder_s_own_tokenizer_and_refused_without_one(
    bert_folder, tmp_path
):
    from onnxpipe.models.errors import InputFileError
    from onnxpipe.models.spec import ModelSpec, TensorSpec
    from onnxpipe.models.user_data import UserData, load_user_inputs

    folder, lines = _folder_with_tokenizer(bert_folder, tmp_path)
    ids, mask = TensorSpec("input_ids", ("N", 8), "int64"), TensorSpec("attention_mask", ("N", 8), "int64")
    arrays = load_user_inputs(UserData(str(lines), tokenizer=str(folder)), ModelSpec("bert", (ids, mask), ()))
    assert arrays["input_ids"].shape == (3, 8)
    assert arrays["input_ids"][1].tolist() == [2, 6, 8, 12, 13, 3, 0, 0]  # [CLS] a dog ran fast [SEP], padded
    assert arrays["attention_mask"][1].tolist() == [1] * 6 + [0, 0]
    only_ids = load_user_inputs(UserData(str(lines), tokenizer=str(folder)), ModelSpec("bert", (ids,), ()))
    assert set(only_ids) == {"input_ids"}  # what the model does not take is not fed
    with pytest.raises(InputFileError, match="was not imported from one"):  # no folder, no tokenizer
        load_user_inputs(str(lines), ModelSpec("bert", (ids,), ()))
    proc = onnxpipe(  # the fixture folder has no tokenizer: refused, not tokenized by a made-up one
        "convert", str(bert_folder), "--seq-len", "8", "--precision", "fp32", "--out", str(tmp_path / "r2"),
        "--inputs", str(lines),
    )  # fmt: skip
    assert proc.returncode == 2 and "has no tokenizer (none of tokenizer.json" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_a_folder_is_converted_and_validated_on_text_lines(bert_folder, tmp_path):
    folder, lines = _folder_with_tokenizer(bert_folder, tmp_path)
    run = tmp_path / "run"
    proc = onnxpipe(
        "convert", str(folder), "--seq-len", "8", "--attention-mask", "--precision", "fp32", "--out", str(run),
        "--inputs", str(lines),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(next(run.glob("backends/*/parity.json")).read_text())
    assert report["inputs"]["source"] == "--inputs lines.txt" and report["inputs"]["groups"]["inputs"] == 3
