"""R2U-Net and the multi-head multi-tail R2U-Net: shapes, parameter counts, the recurrence, the skip."""

from __future__ import annotations

import pytest
import torch

from hdl_monai.networks import MultiHeadMultiTailR2UNet, R2UNet, RecurrentBlock, RRCNNBlock


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv_unit(cin: int, cout: int, k: int = 3) -> int:
    """Parameters of conv(k x k, bias) + batch norm (weight, bias)."""
    return k * k * cin * cout + cout + 2 * cout


def rrcnn(cin: int, cout: int) -> int:
    return (cin * cout + cout) + 2 * conv_unit(cout, cout)


def test_r2unet_shape_and_parameter_count():
    net = R2UNet(spatial_dims=2, in_channels=3, out_channels=3, channels=(4, 8, 16), recurrence=2)
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 3, 32, 32)
    expected = (
        rrcnn(3, 4) + rrcnn(4, 8) + rrcnn(8, 16)  # encoder
        + conv_unit(16, 8) + rrcnn(16, 8) + conv_unit(8, 4) + rrcnn(8, 4)  # decoder
        + (4 * 3 + 3)  # 1x1 head
    )
    assert n_params(net) == expected


def test_paper_width_parameter_count_is_stable():
    # 64..1024 as in the paper: pinned so an accidental architecture change shows up.
    net = R2UNet(spatial_dims=2, in_channels=3, out_channels=3)
    widths = (64, 128, 256, 512, 1024)
    expected = sum(rrcnn(a, b) for a, b in zip((3,) + widths[:-1], widths))
    expected += sum(conv_unit(widths[i + 1], widths[i]) + rrcnn(2 * widths[i], widths[i]) for i in range(4))
    expected += 64 * 3 + 3
    assert n_params(net) == expected


def test_recurrence_adds_block_input_to_running_state():
    torch.manual_seed(0)
    block = RecurrentBlock(2, 4, recurrence=2, norm=None).eval()
    x = torch.randn(1, 4, 8, 8)
    f = block.conv
    h = f(x)
    h = f(x + h)
    h = f(x + h)
    torch.testing.assert_close(block(x), h)
    # not the released code's x + x: that would ignore the state entirely
    assert not torch.allclose(block(x), f(x + x))


def test_rrcnn_is_residual_over_projection():
    block = RRCNNBlock(2, 3, 5, recurrence=1).eval()
    x = torch.randn(1, 3, 8, 8)
    p = block.project(x)
    torch.testing.assert_close(block(x), p + block.recurrent(p))


def test_size_not_divisible_is_a_clear_error():
    net = R2UNet(channels=(4, 8, 16))
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, 3, 30, 32))


def test_multihead_shapes_and_separate_heads():
    net = MultiHeadMultiTailR2UNet(channels=(4, 8, 16), segmentation_channels=1)
    x = torch.randn(2, 7, 32, 32)
    y = net(x)
    assert y.shape == (2, 2, 32, 32)
    head_m = n_params(net.magnitude_head)
    head_s = n_params(net.mask_head)
    assert head_m == head_s == rrcnn(2, 4) + rrcnn(4, 8) + rrcnn(8, 16)
    fusion = sum((2 * c + 3) * c + c + 2 * c for c in (4, 8, 16))
    tail = conv_unit(16, 8) + rrcnn(16, 8) + conv_unit(8, 4) + rrcnn(8, 4) + (4 + 1)
    assert n_params(net) == head_m + head_s + fusion + 2 * tail
    with pytest.raises(ValueError, match="expected 7 input channels"):
        net(torch.randn(1, 6, 32, 32))


def test_input_to_output_skip_is_linear_interpolation():
    net = MultiHeadMultiTailR2UNet(channels=(4, 8), segmentation_channels=1).eval()
    for tail in (net.magnitude_tail,):
        for p in tail.parameters():
            torch.nn.init.zeros_(p)
    m0, m1 = torch.full((1, 1, 16, 16), -0.5), torch.full((1, 1, 16, 16), 0.5)
    alpha = 0.25  # k / (K + 1) for k = 1, K = 3
    cond = torch.stack([torch.full((16, 16), v) for v in (0.1, alpha, 0.5)])[None]
    x = torch.cat([m0, m1, torch.zeros(1, 2, 16, 16), cond], dim=1)
    out = net(x)
    torch.testing.assert_close(out[:, :1], (1 - alpha) * m0 + alpha * m1)


def test_heads_keep_separate_weights():
    net = MultiHeadMultiTailR2UNet(channels=(4, 8))
    assert not set(map(id, net.magnitude_head.parameters())) & set(map(id, net.mask_head.parameters()))


def test_mask_skip_reproduces_the_blended_mask_when_the_tail_is_zero():
    net = MultiHeadMultiTailR2UNet(channels=(4, 8), mask_skip=True).eval()
    for p in net.mask_tail.parameters():
        torch.nn.init.zeros_(p)
    s0 = torch.zeros(1, 1, 16, 16)
    s1 = torch.zeros(1, 1, 16, 16)
    s0[..., :8, :] = 1.0  # left half in the first mask
    s1[..., :, :8] = 1.0  # top half in the second
    alpha = 0.25
    cond = torch.stack([torch.full((16, 16), v) for v in (0.1, alpha, 0.5)])[None]
    x = torch.cat([torch.zeros(1, 2, 16, 16), s0, s1, cond], dim=1)
    probability = torch.sigmoid(net(x)[:, 1:])
    blend = (1 - alpha) * s0 + alpha * s1
    torch.testing.assert_close(probability, blend.clamp(0.01, 0.99))
    assert ((probability > 0.5) == (blend > 0.5)).all()
    with pytest.raises(ValueError, match="mask_skip needs"):
        MultiHeadMultiTailR2UNet(channels=(4, 8), mask_skip=True, segmentation_channels=2)


def test_zero_init_residual_starts_at_the_linear_estimates_and_can_leave_them():
    torch.manual_seed(0)
    net = MultiHeadMultiTailR2UNet(channels=(4, 8), mask_skip=True)
    m0, m1 = torch.rand(2, 1, 1, 16, 16) * 2 - 1
    s0 = (torch.rand(1, 1, 16, 16) > 0.5).float()
    s1 = (torch.rand(1, 1, 16, 16) > 0.5).float()
    alpha = 2 / 3
    cond = torch.stack([torch.full((16, 16), v) for v in (0.2, alpha, 2 / 6)])[None]
    x = torch.cat([m0, m1, s0, s1, cond], dim=1)
    out = net.eval()(x)
    torch.testing.assert_close(out[:, :1], (1 - alpha) * m0 + alpha * m1)
    torch.testing.assert_close(torch.sigmoid(out[:, 1:]), ((1 - alpha) * s0 + alpha * s1).clamp(0.01, 0.99))
    # one optimiser step on a target away from the linear estimate moves the output
    optimiser = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    loss = (net(x)[:, :1] - 1.0).abs().mean()
    loss.backward()
    optimiser.step()
    assert not torch.allclose(net.eval()(x)[:, :1], out[:, :1])
    # switched off, the tail's last layer is random and the output differs from the estimate
    plain = MultiHeadMultiTailR2UNet(channels=(4, 8), zero_init_residual=False).eval()
    assert not torch.allclose(plain(x)[:, :1], (1 - alpha) * m0 + alpha * m1)


def test_hybrid_estimate_channels_feed_the_heads_and_replace_the_linear_skips():
    torch.manual_seed(0)
    net = MultiHeadMultiTailR2UNet(channels=(4, 8), mask_skip=True, estimate_channels=2)
    assert net.in_channels == 9 and net.magnitude_head.blocks[0].project.conv.in_channels == 3
    m0, m1, guess_m = torch.rand(3, 1, 1, 16, 16) * 2 - 1
    s0, s1 = (torch.rand(2, 1, 1, 16, 16) > 0.5).float()
    guess_s = torch.rand(1, 1, 16, 16)
    cond = torch.stack([torch.full((16, 16), v) for v in (0.2, 0.5, 1 / 6)])[None]
    x = torch.cat([m0, m1, s0, s1, cond, guess_m, guess_s], dim=1)
    out = net.eval()(x)
    # untrained (zero last layers): exactly the guess, not the linear blend
    torch.testing.assert_close(out[:, :1], guess_m)
    torch.testing.assert_close(torch.sigmoid(out[:, 1:]), guess_s.clamp(0.01, 0.99))
    with pytest.raises(ValueError, match="expected 9 input channels"):
        net(x[:, :7])
    with pytest.raises(ValueError, match="estimate_channels must be 0 or 2"):
        MultiHeadMultiTailR2UNet(channels=(4, 8), estimate_channels=1)
