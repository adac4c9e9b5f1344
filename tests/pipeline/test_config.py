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


def test_every_key_is_checked_against_its_type_and_every_bad_one_named_at_once(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[train]\nepochs = "x"\nlr = true\n\n[convert]\nprecisions = "fp32"\n\n'
        '[validate]\nrandom = 1.5\ndevices = ["cpu", 3]\n\n[export]\nopset = "18"\n'
    )
    with pytest.raises(UsageError) as caught:
        load_config(path)
    said = str(caught.value)
    for problem in (
        '[train]: epochs: expected an integer, got "x"; lr: expected a number, got true',
        '[convert]: precisions: expected a list of strings, got "fp32"',  # not "unknown precision 'f'"
        "[validate]: random: expected an integer, got 1.5; devices: expected a list of strings (not 3)",
        '[export]: opset: expected an integer, got "18"',
    ):
        assert problem in said, said
    path.write_text("[train]\nepochs = 0\n")  # the right type, out of range
    with pytest.raises(UsageError, match=r"\[train\]: epochs: got 0, expected an integer >= 1"):
        load_config(path)
    path.write_text('[validate]\nuser = {path = "s.npz", mean = [0.5], std = [0.25]}\nlabels = "l.txt"\n')
    cfg = load_config(path)
    assert (cfg.validate.inputs.user.path, cfg.validate.inputs.user.std) == ("s.npz", (0.25,))
    path.write_text("[convert]\ncalibration = 3\n")
    with pytest.raises(UsageError, match=r"calibration: expected a path, or a table"):
        load_config(path)
