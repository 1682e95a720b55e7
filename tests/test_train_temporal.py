"""The reference's temporal model: parameter count, reversible coupling by hand, the
recomputing backward against plain autograd."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from train.model.reversible import ReversibleBlock, ReversibleStack, saved_tensor_bytes
from train.model.temporal import ChannelNorm, TemporalModel


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_count_equals_the_reference_formula():
    """AxialImageTransformer(dim=E, depth, heads=8, reversible=True,
    axial_pos_emb_shape=(N, L)) between Linear(D -> E) and LayerNorm -> Linear(E -> 1):

    input       D*E + E
    positions   N*E + L*E
    per layer   2 attentions: LayerNorm 2E + q E*E + kv 2E*E + out E*E + E  = 4E^2 + 3E each
                2 conv feed-forwards: norm 2E + conv 9*E*4E + 4E + conv 9*4E*E + E
                                                                           = 72E^2 + 7E each
                                                                  together 152E^2 + 20E
    head        2E + E + 1
    """
    d, e, n, l, depth = 512, 256, 32, 16, 1
    formula = (d * e + e) + (n + l) * e + depth * (152 * e * e + 20 * e) + (3 * e + 1)
    model = TemporalModel(d, e, depth, heads=8, num_segments=n, seg_length=l)
    assert n_params(model) == formula == 10_110_977
    sht = TemporalModel(d + 17, e, 2, heads=8, num_segments=n, seg_length=l)   # [S, x - m]
    assert n_params(sht) == formula + 17 * e + 152 * e * e + 20 * e


def test_position_embedding_starts_at_unit_normal():
    torch.manual_seed(0)
    model = TemporalModel(16, 256, 1, heads=8, num_segments=32, seg_length=16)
    for p in (model.pos_segment, model.pos_frame):
        assert p.std().item() == pytest.approx(1.0, abs=0.05)
        assert p.mean().abs().item() < 0.05


class Scale(nn.Module):
    def __init__(self, a: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x):
        return self.a * x


class Square(nn.Module):
    def forward(self, x):
        return x * x


def test_reversible_coupling_by_hand():
    # f(x) = 2x, g(y) = y^2, one block from (x, x):
    #   y1 = x + 2x = 3x            -> [3, 6]
    #   y2 = x + (3x)^2             -> [1 + 9, 2 + 36] = [10, 38]
    #   out = (y1 + y2) / 2         -> [6.5, 22]
    x = torch.tensor([1.0, 2.0])
    one = ReversibleStack([ReversibleBlock(Scale(2.0), Square())])
    torch.testing.assert_close(one(x), torch.tensor([6.5, 22.0]))
    # a second block (f(x) = -x, g(y) = y^2) continues from (y1, y2) = ([3, 6], [10, 38]):
    #   z1 = y1 - y2 = [-7, -32];   z2 = y2 + z1^2 = [59, 1062];   out = [26, 515]
    two = ReversibleStack([ReversibleBlock(Scale(2.0), Square()),
                           ReversibleBlock(Scale(-1.0), Square())])
    torch.testing.assert_close(two(x), torch.tensor([26.0, 515.0]))
    # inverting a block gives the inputs back
    (x1, x2), _, _ = two.blocks[1].backward_pass(torch.tensor([-7.0, -32.0]),
                                                 torch.tensor([59.0, 1062.0]),
                                                 torch.zeros(2), torch.zeros(2))
    torch.testing.assert_close((x1, x2), (torch.tensor([3.0, 6.0]), torch.tensor([10.0, 38.0])))


def test_a_layer_of_the_temporal_model_is_the_two_block_coupling():
    torch.manual_seed(0)
    model = TemporalModel(12, 32, 1, heads=4, num_segments=8, seg_length=4)
    attn, ffs = model.layers.blocks
    h = torch.randn(3, 8, 4, 32)
    with torch.no_grad():
        y1 = h + attn.f(h)                  # f: attention along the segments
        y2 = h + attn.g(y1)                 # g: attention along the frames
        z1 = y1 + ffs.f(y2)                 # then the two conv feed-forwards
        z2 = y2 + ffs.g(z1)
        torch.testing.assert_close(model.layers(h), (z1 + z2) / 2)
    assert attn.f.axis == 1 and attn.g.axis == 2 and ffs.f is not ffs.g
    # attention: q and kv without bias, out with bias; feed-forward norm as the reference's
    assert attn.f.q.bias is None and attn.f.kv.bias is None and attn.f.out.bias is not None
    x = torch.randn(5, 32) * 3 + 1
    norm = ChannelNorm(32)
    mean, std = x.mean(-1, keepdim=True), x.std(-1, unbiased=False, keepdim=True)
    torch.testing.assert_close(norm(x), (x - mean) / (std + 1e-5))


def _grads(model, x, weights, recompute: bool):
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    model.layers.recompute = recompute
    (model(x) * weights).sum().backward()
    return x.grad, {n: p.grad.clone() for n, p in model.named_parameters()}


def test_recomputing_backward_equals_plain_autograd():
    torch.manual_seed(0)
    model = TemporalModel(24, 32, 2, heads=4, num_segments=8, seg_length=4)
    x, weights = torch.randn(4, 8, 4, 24), torch.randn(4, 8, 4)
    dx, grads = _grads(model, x, weights, recompute=True)
    dx_ref, grads_ref = _grads(model, x, weights, recompute=False)
    torch.testing.assert_close(dx, dx_ref, rtol=1e-5, atol=1e-5)
    assert set(grads) == set(grads_ref) and len(grads) == len(list(model.parameters()))
    for name in grads:
        scale = grads_ref[name].abs().max().clamp(min=1e-12)
        torch.testing.assert_close(grads[name] / scale, grads_ref[name] / scale,
                                   rtol=1e-5, atol=1e-5, msg=name)
    assert all(g.abs().sum() > 0 for g in grads.values())


def _saved_bytes(model, x, recompute: bool) -> int:
    model.layers.recompute = recompute
    return saved_tensor_bytes(model, x)


def test_recomputing_backward_keeps_less_for_the_backward_pass():
    torch.manual_seed(0)
    model = TemporalModel(24, 32, 2, heads=4, num_segments=8, seg_length=4)
    x = torch.randn(4, 8, 4, 24, requires_grad=True)
    kept, plain = _saved_bytes(model, x, True), _saved_bytes(model, x, False)
    assert kept * 5 < plain, (kept, plain)
