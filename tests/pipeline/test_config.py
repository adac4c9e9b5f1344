import pytest

from onnxpipe.models.errors import InputFileError, UsageError
from onnxpipe.pipeline.config import PipelineConfig, load_config


def test_defaults_file_and_flag_precedence(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[train]\nepochs = 3\nseed = 7\n\n[convert]\nprecisions = ["fp16"]\n')
    cfg = load_config(path)
    assert (cfg.train.epochs, cfg.train.seed, cfg.convert.precisions) == (3, 7, ("fp16",))
    assert cfg.export == PipelineConfig().export
    cfg = cfg.override("train", epochs=9, seed=None)
    assert (cfg.train.epochs, cfg.train.seed) == (9, 7)


def test_unknown_keys_and_sections_are_refused(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[train]\nepoch = 3\n")
    with pytest.raises(
        UsageError, match=r"\[train\]: unknown keys \['epoch'\]; valid: \['batch_size', 'epochs'"
    ):
        load_config(path)
    path.write_text("[deploy]\nx = 1\n")
    with pytest.raises(UsageError, match=r"unknown sections \['deploy'\]"):
        load_config(path)
    path.write_text('[convert]\nprecisions = ["int4"]\n')
    with pytest.raises(UsageError, match="precision 'int4'"):
        load_config(path)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(InputFileError, match="no such config file"):
        load_config(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("[train\n")
    with pytest.raises(InputFileError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")
