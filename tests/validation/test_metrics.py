import math

import numpy as np
import pytest

from onnxpipe.models.spec import Tolerance
from onnxpipe.validation.metrics import compare, worst


def test_identical_outputs():
    r = np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)
    m = compare(r, r.copy())
    assert (m.max_abs, m.mean_abs, m.cosine, m.snr_db, m.top1_agreement, m.nonfinite) == (
        0.0,
        0.0,
        1.0,
        None,
        1.0,
        0,
    )


def test_known_differences():
    r = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    c = r + np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 2.5]])  # second row's argmax flips
    m = compare(r, c)
    assert m.max_abs == 2.5
    assert m.mean_abs == pytest.approx(3.0 / 6)
    assert m.top1_agreement == 0.5
    assert m.max_rel == pytest.approx(2.5 / (1.0 + 3e-3))
    assert m.snr_db == pytest.approx(10 * math.log10(28 / (0.25 + 6.25)))
    assert m.cosine < 0.9


def test_nonfinite_values_are_counted_and_fail():
    r = np.ones((2, 3))
    c = r.copy()
    c[0, 1] = np.nan
    m = compare(r, c)
    assert m.nonfinite == 1
    assert any("non-finite" in v for v in m.violations(Tolerance(1, 1, 0.0), 0.0))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shape"):
        compare(np.ones((2, 3)), np.ones((3, 2)))


def test_tolerance_violation_is_the_allclose_rule():
    tol = Tolerance(atol=1e-3, rtol=1e-2, min_cosine=0.9)
    r = np.array([1.0, 100.0])
    assert tol.violation(r, r + np.array([1e-3, 1.0])) <= 0
    assert tol.violation(r, r + np.array([0.02, 0.0])) > 0  # bound at r=1 is 0.011
    assert tol.violation(r, np.ones(3)) == math.inf


def test_worst_of_several_outputs():
    a = compare(np.ones((2, 4)), np.ones((2, 4)) * 1.1)
    b = compare(np.ones((2, 4)), np.ones((2, 4)))
    w = worst([a, b])
    assert w.max_abs == a.max_abs and w.cosine == min(a.cosine, b.cosine) and w.snr_db == a.snr_db


def test_cosine_judges_only_differences_above_the_absolute_floor():
    """A probability map of an image with nothing in it is rounding noise near 0 on both sides: its
    cosine says nothing; a row whose difference is above the floor is still judged by it."""
    rng = np.random.default_rng(0)
    quiet_r = rng.uniform(0, 1e-7, (2, 100))
    quiet_c = quiet_r + rng.uniform(-1e-7, 1e-7, (2, 100))
    assert compare(quiet_r, quiet_c).cosine < 0.99  # without a floor: noise compared with noise
    assert compare(quiet_r, quiet_c, floor=1e-4).cosine == 1.0
    loud_r = rng.uniform(-1, 1, (2, 100))
    loud_c = -loud_r  # wrong everywhere, far above the floor
    assert compare(np.vstack([quiet_r, loud_r]), np.vstack([quiet_c, loud_c]), floor=1e-4).cosine == -1.0
