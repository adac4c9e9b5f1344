"""The architecture sweep: Hugging Face architectures from tiny configs, through the planner's defaults.

For each architecture: build it from a tiny config with its weights moved far from their near-zero
defaults (so a wrong op cannot hide in near-zero outputs), save it as a ``save_pretrained`` folder,
run ``onnxpipe convert FOLDER`` with the planner's defaults (``--backend auto``) for a SavedModel and
TFLite at ``--precisions``, and read what the planner recorded: per route tried, each artifact's
outcome, the first reason, seconds and peak memory. Writes ``OUT/architectures.md`` and
``OUT/architectures.json`` and prints the table, then the counts of architectures with a validated
SavedModel and with a validated TFLite file per precision. With ``--only``, the architectures not
rerun keep their rows from the previous sweep in OUT (at the same precisions).

Usage: python bench/architectures.py [--only bert,vit] [--out DIR] [--precisions fp32,fp16,dynamic_int8]
       [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, load_line

ONNXPIPE = [sys.executable, "-m", "onnxpipe.pipeline"]

TEXT = ["--seq-len", "8"]
IMAGE = ["--image-size", "32"]


#: The sweep, in order (``_configs`` builds each; a test runs every one, ``slow``).
ARCHITECTURES = (
    *("bert", "distilbert", "roberta", "albert", "electra", "deberta-v2"),  # text encoders
    *("gpt2", "llama", "qwen2", "t5-encoder"),  # decoder LMs, an encoder-decoder's encoder
    *("vit", "deit", "dinov2"),  # ViT-style
    *("resnet", "regnet", "convnext", "mobilenetv2", "efficientnet"),  # CNNs
    *("swin", "mobilevit", "segformer"),  # hierarchical vision, segmentation
    *("wav2vec2", "whisper-encoder"),  # audio
)


def _text(t, **extra):
    return dict(
        vocab_size=96,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        **extra,
    )


def _vision(t, **extra):
    return dict(image_size=32, num_channels=3, **extra)


def _configs(t) -> dict:
    """Architecture -> (model class, config, CLI options). Built lazily: transformers is imported here."""
    vit = dict(patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    return {
        "bert": (t.BertForSequenceClassification, t.BertConfig(**_text(t, num_labels=3)), TEXT),
        "distilbert": (
            t.DistilBertForSequenceClassification,
            t.DistilBertConfig(vocab_size=96, dim=32, n_layers=2, n_heads=2, hidden_dim=64, num_labels=3),
            TEXT,
        ),
        "roberta": (t.RobertaForSequenceClassification, t.RobertaConfig(**_text(t, num_labels=3)), TEXT),
        "albert": (
            t.AlbertForSequenceClassification,
            t.AlbertConfig(**_text(t, embedding_size=16, num_labels=3)),
            TEXT,
        ),
        "electra": (
            t.ElectraForSequenceClassification,
            t.ElectraConfig(**_text(t, embedding_size=16, num_labels=3)),
            TEXT,
        ),
        "deberta-v2": (
            t.DebertaV2ForSequenceClassification,
            t.DebertaV2Config(**_text(t, num_labels=3)),
            TEXT,
        ),
        "gpt2": (
            t.GPT2LMHeadModel,
            t.GPT2Config(
                vocab_size=96, n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=0, eos_token_id=0
            ),
            TEXT,
        ),
        "llama": (
            t.LlamaForCausalLM,
            t.LlamaConfig(**_text(t, num_key_value_heads=2, max_position_embeddings=64)),
            TEXT,
        ),
        "qwen2": (
            t.Qwen2ForCausalLM,
            t.Qwen2Config(**_text(t, num_key_value_heads=2, max_position_embeddings=64)),
            TEXT,
        ),
        "t5-encoder": (
            t.T5EncoderModel,
            t.T5Config(vocab_size=96, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2),
            TEXT,
        ),
        "vit": (t.ViTForImageClassification, t.ViTConfig(**_vision(t, **vit, num_labels=5)), IMAGE),
        "deit": (t.DeiTForImageClassification, t.DeiTConfig(**_vision(t, **vit, num_labels=5)), IMAGE),
        "dinov2": (t.Dinov2Model, t.Dinov2Config(**_vision(t, **vit)), IMAGE),
        "resnet": (
            t.ResNetForImageClassification,
            t.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], num_labels=5),
            IMAGE,
        ),
        "regnet": (
            t.RegNetForImageClassification,
            t.RegNetConfig(
                embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], groups_width=8, num_labels=5
            ),
            IMAGE,
        ),
        "convnext": (
            t.ConvNextForImageClassification,
            t.ConvNextConfig(num_stages=2, hidden_sizes=[16, 32], depths=[1, 1], num_labels=5),
            IMAGE,
        ),
        "mobilenetv2": (
            t.MobileNetV2ForImageClassification,
            t.MobileNetV2Config(image_size=32, depth_multiplier=0.35, num_labels=5),
            IMAGE,
        ),
        "efficientnet": (
            t.EfficientNetForImageClassification,
            t.EfficientNetConfig(
                image_size=32, width_coefficient=0.25, depth_coefficient=0.25, hidden_dim=320, num_labels=5
            ),
            IMAGE,
        ),
        "swin": (
            t.SwinForImageClassification,
            t.SwinConfig(
                image_size=32,
                patch_size=4,
                embed_dim=16,
                depths=[1, 1],
                num_heads=[2, 2],
                window_size=4,
                num_labels=5,
            ),
            IMAGE,
        ),
        "mobilevit": (
            t.MobileViTForImageClassification,
            t.MobileViTConfig(
                image_size=32,
                hidden_sizes=[16, 24, 32],
                neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 32],
                num_labels=5,
            ),
            IMAGE,
        ),
        "segformer": (
            t.SegformerForSemanticSegmentation,
            t.SegformerConfig(
                image_size=32,
                num_encoder_blocks=2,
                depths=[1, 1],
                sr_ratios=[2, 1],
                hidden_sizes=[16, 32],
                num_attention_heads=[1, 2],
                decoder_hidden_size=32,
                num_labels=5,
            ),
            IMAGE,
        ),
        "wav2vec2": (
            t.Wav2Vec2Model,
            t.Wav2Vec2Config(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
                conv_dim=(16, 16),
                conv_stride=(5, 2),
                conv_kernel=(10, 3),
                num_conv_pos_embeddings=16,
                num_conv_pos_embedding_groups=2,
            ),
            ["--seq-len", "1600"],
        ),
        "whisper-encoder": (
            t.WhisperForAudioClassification,
            t.WhisperConfig(
                d_model=32,
                encoder_layers=2,
                encoder_attention_heads=2,
                encoder_ffn_dim=64,
                num_mel_bins=16,
                max_source_positions=16,
                decoder_layers=1,
                decoder_attention_heads=2,
                decoder_ffn_dim=64,
                num_labels=3,
            ),
            [],
        ),
    }


def _hf_options(options: list[str]):
    from onnxpipe.models.hf import HfOptions

    flags = dict(zip(options[::2], options[1::2], strict=True))
    seq_len, image_size = flags.get("--seq-len"), flags.get("--image-size")
    return HfOptions(int(seq_len) if seq_len else None, int(image_size) if image_size else None)


def _inputs(folder: Path, options: list[str], batch: int, seed: int):
    """Random inputs for the saved model, made as onnxpipe makes its own, and the wrapped model."""
    import numpy as np
    import torch

    from onnxpipe.models.hf import HuggingFaceModel, hf_user_model
    from onnxpipe.models.spec import random_values

    user, state = hf_user_model(folder, _hf_options(options))
    model = HuggingFaceModel(**user.kwargs)
    model.load_state_dict(state)
    rng = np.random.default_rng(seed)
    feeds = [
        torch.from_numpy(random_values(t, t.concrete_shape(batch), user.value_range, rng))
        for t in user.inputs()
    ]
    return model.eval(), feeds


#: Below this output spread an architecture's validation proves little (see :func:`spread`).
MIN_SPREAD = 0.01


def spread(folder: Path, options: list[str]) -> float:
    """How much the model's output depends on its input: std over 16 random inputs / mean magnitude.

    Near zero, validation proves little: every artifact that computes the constant passes, whatever
    it does to the input (measured: untouched BatchNorm statistics left a tiny EfficientNet and
    MobileViT at 1e-6).
    """
    import torch

    model, feeds = _inputs(folder, options, batch=16, seed=1)
    with torch.no_grad():
        out = model(*feeds).double()
    return float(out.std(dim=0).mean() / (out.abs().mean() + 1e-12))


def build(name: str, folder: Path, seed: int = 0) -> list[str]:
    """Save architecture ``name`` to ``folder``; its CLI options.

    The weights are moved far from their near-zero defaults, norm scales set near 1 and BatchNorm
    statistics measured on random inputs (as training would leave them), so that the output depends
    on the input (:func:`spread`).
    """
    import torch
    import transformers

    cls, config, options = _configs(transformers)[name]
    torch.manual_seed(seed)
    model = cls(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        for m in model.modules():  # norm scales near 1, as trained (some inits zero them: EfficientNet)
            weight = getattr(m, "weight", None)
            if "Norm" in type(m).__name__ and isinstance(weight, torch.nn.Parameter) and weight.dim() == 1:
                weight.copy_(1 + 0.1 * torch.randn_like(weight))
    model.save_pretrained(folder)
    wrapped, feeds = _inputs(folder, options, batch=32, seed=seed)
    norms = [m for m in wrapped.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms:  # one batch of statistics, as training on data would leave them (not 0 and 1)
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        with torch.no_grad():
            wrapped(*feeds)
        wrapped.eval().model.save_pretrained(folder)
    return options


def _attempts(run: Path) -> list[dict]:
    """Per route tried: each artifact's outcome, the first reason, seconds and peak memory."""
    path = run / "backends.json"
    if not path.is_file():
        return []
    table = json.loads(path.read_text())
    routes: dict[str, dict] = {}
    said: dict[str, list[dict]] = {}  # route -> its rows that say why not
    for r in table["rows"]:
        row = routes.setdefault(r["backend"], {"route": r["backend"], "artifacts": {}, "reason": ""})
        row["artifacts"][r["artifact"]] = ("kept " if r["kept"] else "") + r["status"]
        seconds = r.get("seconds")
        row["seconds"] = round(seconds, 1) if seconds else None
        row["peak_mb"] = (r.get("peak_memory") or 0) // 2**20 or None
        if r["status"] != "pass" and r.get("message"):
            said.setdefault(r["backend"], []).append(r)
    for name, rows in said.items():
        # the first failing artifact's reason says more than "makes no SavedModel"
        first = next((r for r in rows if r["status"] == "fail"), rows[0])
        message = re.sub(r"^\S+\.onnx: ", "", first["message"].splitlines()[0])  # the file is the run's own
        routes[name]["reason"] = message[:160]
    return list(routes.values())


def _max_abs(run: Path) -> dict[str, float]:
    """Per kept artifact: its largest absolute difference from PyTorch over every runtime."""
    path = run / "backends.json"
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text())["rows"]
    return {r["artifact"]: r["max_abs"] for r in rows if r["kept"] and r.get("max_abs") is not None}


def sweep(names: list[str], out: Path, precisions: str, timeout_s: float) -> list[dict]:
    """Build, convert and read back each architecture; one record each."""
    records = []
    for name in names:
        folder, run = out / "models" / name, out / "runs" / name
        record = {"architecture": name, "kept": {}, "attempts": [], "error": None}
        t0 = time.perf_counter()
        try:
            options = build(name, folder)
        except Exception as e:  # a config this transformers refuses: recorded, the sweep goes on
            record["error"] = f"build failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
            records.append(record)
            print(f"{name}: {record['error']}", flush=True)
            continue
        cmd = [*ONNXPIPE, "convert", str(folder), "--out", str(run), "--precision", precisions, *options]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, check=False
            )
            if proc.returncode not in (0, 1):
                record["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1][:200]
        except subprocess.TimeoutExpired:
            record["error"] = f"timed out after {timeout_s:g} s"
        record["seconds"] = round(time.perf_counter() - t0, 1)
        record["spread"] = spread(folder, options)
        record["attempts"] = _attempts(run)
        record["max_abs"] = _max_abs(run)
        manifest = run / "manifest.json"
        if manifest.is_file():
            artifacts = json.loads(manifest.read_text()).get("artifacts", {})
            record["kept"] = {
                k: v.get("extra", {}).get("kept")
                for k, v in artifacts.items()
                if v.get("extra", {}).get("kept")
            }
        records.append(record)
        kept = ", ".join(f"{k} ({v})" for k, v in record["kept"].items()) or "nothing"
        print(
            f"{name}: kept {kept} in {record['seconds']} s"
            + (f"; {record['error']}" if record["error"] else ""),
            flush=True,
        )
    return records


def _summary(records: list[dict], wanted: list[str]) -> list[str]:
    """One row per architecture: each artifact's max abs (kept) or "–", the route kept, the cost."""
    head = ["architecture", "output spread", *wanted, "kept from", "routes run", "seconds", "peak MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rec in records:
        cells = [f"{rec.get('max_abs', {}).get(w, 0):.1e}" if w in rec["kept"] else "–" for w in wanted]
        kept = ", ".join(dict.fromkeys(rec["kept"].values())) or "–"
        tried = sum(1 for a in rec["attempts"] if a.get("seconds"))
        peak = max((a.get("peak_mb") or 0 for a in rec["attempts"]), default=0) or "–"
        lines.append(
            f"| {rec['architecture']} | {rec.get('spread', 0):.2f} | " + " | ".join(cells)
            + f" | {kept} | {tried} | {rec.get('seconds', '–')} | {peak} |"
        )  # fmt: skip
    return lines


def render(records: list[dict], precisions: list[str]) -> str:
    """The summary (max abs of each kept artifact), the detail (each route tried), the counts."""
    wanted = ["saved_model", *(f"model_{p}.tflite" for p in precisions)]
    head = ["architecture", "route", *wanted, "seconds", "peak MB", "first reason"]
    lines = [*_summary(records, wanted), "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rec in records:
        if rec["error"] and not rec["attempts"]:
            lines.append(
                f"| {rec['architecture']} | – |" + " – |" * len(wanted) + f" – | – | {rec['error']} |"
            )
        for a in rec["attempts"]:
            cells = [a["artifacts"].get(w, "–") for w in wanted]
            lines.append(
                f"| {rec['architecture']} | {a['route']} | " + " | ".join(cells)
                + f" | {a.get('seconds') or '–'} | {a.get('peak_mb') or '–'} | {a['reason'].replace('|', '/')} |"
            )  # fmt: skip
    lines.append("")
    n = len(records)
    total = sum(rec.get("seconds") or 0 for rec in records)
    lines.append(f"- {n} architectures in {total / 60:.1f} min of conversion and validation")
    weak = [
        rec["architecture"] for rec in records if rec.get("spread") is not None and rec["spread"] < MIN_SPREAD
    ]
    lines.append(
        f"- output spread below {MIN_SPREAD} (the output hardly depends on the input; validation proves little): "
        + (", ".join(weak) or "none")
    )
    for w in wanted:
        count = sum(1 for rec in records if w in rec["kept"])
        lines.append(f"- validated {w}: {count} of {n} architectures")
    return "\n".join(lines) + "\n"


def _merged(path: Path, records: list[dict], names: list[str], precisions: str) -> list[dict]:
    """This run's records, with those of a previous sweep at the same precisions for the others.

    So ``--only wav2vec2`` reruns one architecture and the table still covers the whole sweep.
    """
    try:
        previous = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return records
    if not isinstance(previous, dict) or previous.get("precisions") != precisions:
        return records
    by_name = {r["architecture"]: r for r in previous.get("records", [])}
    by_name.update({r["architecture"]: r for r in records})
    return [by_name[n] for n in names if n in by_name]


def main() -> None:
    """Run the sweep and print and write its table."""
    import transformers

    names = list(_configs(transformers))
    assert tuple(names) == ARCHITECTURES, "ARCHITECTURES and _configs name the same architectures"
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(names), help="comma-separated architectures")
    parser.add_argument("--out", default=str(ROOT / "runs" / "architectures"))
    parser.add_argument("--precisions", default="fp32,fp16,dynamic_int8")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per architecture")
    args = parser.parse_args()
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise SystemExit(f"unknown architecture(s) {', '.join(unknown)}; known: {', '.join(names)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(load_line(), f"transformers {transformers.__version__}", flush=True)
    t0 = time.perf_counter()
    records = sweep(chosen, out, args.precisions, args.timeout)
    print(f"swept {len(records)} architectures in {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    records = _merged(out / "architectures.json", records, names, args.precisions)
    table = render(records, args.precisions.split(","))
    (out / "architectures.md").write_text(table)
    document = {"precisions": args.precisions, "transformers": transformers.__version__, "records": records}
    (out / "architectures.json").write_text(json.dumps(document, indent=2) + "\n")
    print(table)
    print(f"table: {out / 'architectures.md'}, {out / 'architectures.json'}")


if __name__ == "__main__":
    main()
