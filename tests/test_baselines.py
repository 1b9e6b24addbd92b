"""Classical baselines on known answers: linear is exact on linear change, Horn-Schunck finds a shift."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from hdl_monai.baselines import flow_estimate, hermite_timing, horn_schunck, interpolate_flow, interpolate_linear, warp


def blob_image(size=64, centre=(32.0, 30.0), seed=0):
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.standard_normal((size, size)), 3.0)
    x, y = np.indices((size, size))
    img += 2.0 * np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / 60.0)
    return img


def shifted_disc(shift=4.0):
    """A blob image and a disc mask centred at (32, 30), and both moved by ``shift`` pixels along x."""
    frame0 = blob_image()
    frame1 = ndimage.shift(frame0, (shift, 0.0), order=3, mode="nearest")
    x, y = np.indices(frame0.shape)
    mask0 = (((x - 32) ** 2 + (y - 30) ** 2) < 36).astype(np.uint8)
    return frame0, frame1, mask0, ndimage.shift(mask0, (shift, 0.0), order=0)


def test_linear_is_exact_on_linearly_changing_images():
    a, b = np.random.default_rng(0).random((2, 8, 8))
    K = 3
    for k in range(1, K + 1):
        truth = a + (b - a) * k / (K + 1)
        image, _ = interpolate_linear(a, b, k / (K + 1))
        np.testing.assert_allclose(image, truth, atol=1e-12)
    np.testing.assert_allclose(interpolate_linear(a, b, 0.0)[0], a)


def test_linear_masks_switch_at_half_way():
    m0 = np.zeros((4, 4), np.uint8)
    m1 = np.ones((4, 4), np.uint8)
    assert interpolate_linear(m0, m1, 0.25, masks=(m0, m1))[1].sum() == 0
    assert interpolate_linear(m0, m1, 0.75, masks=(m0, m1))[1].sum() == 16
    labels0, labels1 = np.full((2, 2), 2, np.uint8), np.full((2, 2), 1, np.uint8)
    assert set(np.unique(interpolate_linear(labels0, labels1, 0.4, masks=(labels0, labels1))[1])) == {2}
    with pytest.raises(ValueError, match="alpha_t"):
        interpolate_linear(m0, m1, 1.5)


@pytest.mark.parametrize("shift", [(1.0, -0.5), (3.0, 2.0)])
def test_horn_schunck_recovers_a_known_shift(shift):
    frame0 = blob_image()
    frame1 = ndimage.shift(frame0, shift, order=3, mode="nearest")  # content moves by +shift
    flow = horn_schunck(frame0, frame1, alpha=0.05, iterations=200, levels=3)
    centre = flow[:, 16:48, 16:48].reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(centre, shift, atol=0.25)


def test_flow_interpolation_moves_masks_with_the_image():
    frame0, frame1, mask0, mask1 = shifted_disc()
    image, mask = interpolate_flow(frame0, frame1, 0.5, masks=(mask0, mask1), alpha=0.05, iterations=200)
    truth = ndimage.shift(frame0, (2.0, 0.0), order=3, mode="nearest")
    inner = (slice(12, 52), slice(12, 52))
    linear, _ = interpolate_linear(frame0, frame1, 0.5)
    assert np.abs(image - truth)[inner].mean() < 0.5 * np.abs(linear - truth)[inner].mean()
    com = ndimage.center_of_mass(mask)
    assert com[0] == pytest.approx(34.0, abs=0.6) and com[1] == pytest.approx(30.0, abs=0.6)


def test_warp_identity_and_shape_errors():
    img = blob_image(16)
    np.testing.assert_allclose(warp(img, np.zeros((2, 16, 16))), img)
    with pytest.raises(ValueError, match="two 2-D arrays"):
        horn_schunck(img, img[:8])


def test_flow_estimate_is_the_flow_image_and_a_soft_mask_moved_half_way():
    frame0, frame1, mask0, mask1 = shifted_disc()
    flow = horn_schunck(frame0, frame1, alpha=0.05, iterations=200)
    guess = flow_estimate(frame0, frame1, 0.5, masks=(mask0, mask1), flow=flow)
    assert guess.shape == (2, 64, 64) and guess.dtype == np.float32
    image, _ = interpolate_flow(frame0, frame1, 0.5, flow=flow)
    np.testing.assert_allclose(guess[0], image, atol=1e-5)
    assert 0.0 <= guess[1].min() and guess[1].max() <= 1.0 and 0.0 < guess[1].mean() < 1.0
    com = ndimage.center_of_mass(guess[1])  # the disc moved by half the 4-pixel shift
    assert com[0] == pytest.approx(34.0, abs=0.6) and com[1] == pytest.approx(30.0, abs=0.6)
    assert not flow_estimate(frame0, frame1, 0.5, flow=flow)[1].any()  # no masks: a zero plane


def test_hermite_timing_is_linear_at_constant_speed_and_an_s_curve_between_still_gaps():
    flow = np.zeros((2, 4, 4))
    flow[0] = 4.0  # 4 px over a 4-frame gap, 1 px per frame
    flow[:, 0, 0] = 0.1  # a pixel that hardly moves
    for t in (0.25, 0.5, 0.75):
        # the same speed before and after (a 2-frame gap moving 2 px): constant speed, the linear fraction
        np.testing.assert_allclose(hermite_timing(flow, 4, (flow / 2, 2), (flow, 4), t), t, atol=1e-12)
        # still neighbours: end speeds are half the gap's mean, so the frame lags early and leads late
        still = hermite_timing(flow, 4, (np.zeros_like(flow), 4), (np.zeros_like(flow), 4), t)
        expected = {0.25: 0.203125, 0.5: 0.5, 0.75: 0.796875}[t]  # h10/2 + h01 + h11/2
        np.testing.assert_allclose(still[1:, 1:], expected, atol=1e-12)
        assert still[0, 0] == t  # below min_motion_px: linear
    # mid-gap speed 1.25 x the gap's mean (ends at 0.5 x): a peak between kept frames is not flattened
    d = hermite_timing(flow, 4, (0 * flow, 4), (0 * flow, 4), 0.51) - hermite_timing(flow, 4, (0 * flow, 4), (0 * flow, 4), 0.49)
    assert d[2, 2] / 0.02 == pytest.approx(1.25, rel=1e-3)
    # a neighbour moving backwards gives a zero (clipped) end slope, never a negative one
    back = hermite_timing(flow, 4, (-flow, 4), (flow, 4), 0.1)
    assert (back[1:, 1:] >= 0).all()


def test_flow_interpolation_takes_a_per_pixel_fraction():
    frame0, frame1, mask0, mask1 = shifted_disc()
    flow = horn_schunck(frame0, frame1, alpha=0.05, iterations=200)
    uniform, m_uniform = interpolate_flow(frame0, frame1, 0.3, flow=flow, masks=(mask0, mask1))
    mapped, m_mapped = interpolate_flow(frame0, frame1, np.full(frame0.shape, 0.3), flow=flow, masks=(mask0, mask1))
    np.testing.assert_allclose(mapped, uniform, atol=1e-12)
    np.testing.assert_array_equal(m_mapped, m_uniform)
