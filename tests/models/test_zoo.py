import numpy as np
import pytest
import torch

from onnxpipe.models.data import load_dataset, model_arrays
from onnxpipe.models.errors import UnknownNameError
from onnxpipe.models.registry import ZOO, get_architecture
from onnxpipe.models.spec import ModelSpec

# Every registered architecture must be exercised end to end somewhere in the suite.
END_TO_END_TESTED = {"cnn", "mlp", "mobilenet", "gru", "lstm", "transformer"}


def test_every_registered_model_has_an_end_to_end_test():
    assert set(ZOO) <= END_TO_END_TESTED, f"untested models: {set(ZOO) - END_TO_END_TESTED}"


@pytest.mark.parametrize("name", sorted(ZOO))
def test_architecture_matches_its_spec(name):
    arch = get_architecture(name)
    assert arch.name == name == arch.spec.name
    model = arch.build().eval()
    x, _ = model_arrays(arch.spec, "validation")
    with torch.no_grad():
        out = model(torch.from_numpy(x[:3]))
    assert list(out.shape) == [3 if isinstance(d, str) else d for d in arch.spec.outputs[0].shape]
    assert ModelSpec.from_dict(arch.spec.to_dict()) == arch.spec


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match=r"unknown model 'resnet'; valid: cnn, gru, lstm, mlp"):
        get_architecture("resnet")


def test_digits_split_is_fixed_stratified_and_bundled():
    train, val = load_dataset("digits", "train"), load_dataset("digits", "validation")
    assert (len(train), len(val)) == (1437, 360)
    assert train.x.shape[1:] == (1, 8, 8) and train.x.dtype == np.float32
    assert min(train.x.min(), val.x.min()) == 0.0 and max(train.x.max(), val.x.max()) == 1.0
    assert np.bincount(val.y).min() >= 35  # stratified: every digit present in validation
    again = load_dataset("digits", "validation")
    np.testing.assert_array_equal(again.y, val.y)
    # No validation image is also a training image.
    train_rows = {r.tobytes() for r in train.x.reshape(len(train), -1)}
    overlap = sum(r.tobytes() in train_rows for r in val.x.reshape(len(val), -1))
    assert overlap <= 2  # the UCI set holds a couple of duplicate images; the split itself is disjoint


def test_rgb96_digits_are_the_digits_upsampled():
    small, big = load_dataset("digits", "validation"), load_dataset("digits-rgb96", "validation")
    assert big.x.shape == (360, 3, 96, 96)
    np.testing.assert_array_equal(big.y, small.y)
    np.testing.assert_array_equal(big.x[:, 1, ::12, ::12], small.x[:, 0])


def test_token_digits_are_the_raw_intensities():
    pixels, tokens = load_dataset("digits", "train"), load_dataset("digits-tokens", "train")
    assert tokens.x.shape == (1437, 64) and tokens.x.dtype == np.int64
    assert tokens.x.min() == 0 and tokens.x.max() == 16
    np.testing.assert_array_equal(tokens.x, np.rint(pixels.x.reshape(-1, 64) * 16))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_unrolled_recurrent_nets_compute_what_the_looped_ones_do(cell):
    looped = get_architecture(cell).build(unrolled=False).eval()
    unrolled = get_architecture(cell).build().eval()
    unrolled.load_state_dict(looped.state_dict())  # same parameters, the same names
    x, _ = model_arrays(get_architecture(cell).spec, "validation")
    with torch.no_grad():
        np.testing.assert_allclose(unrolled(torch.from_numpy(x)), looped(torch.from_numpy(x)), atol=1e-6)


def test_unknown_dataset_and_split():
    with pytest.raises(UnknownNameError, match="dataset"):
        load_dataset("mnist", "train")
    with pytest.raises(UnknownNameError, match="split"):
        load_dataset("digits", "test")
