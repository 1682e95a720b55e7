"""Reversible two-stream coupling, with a backward pass that recomputes instead of storing.

A reversible block (Gomez et al., 2017, "The Reversible Residual Network") maps two streams
(x1, x2) to

    y1 = x1 + f(x2)
    y2 = x2 + g(y1)

and can be inverted exactly: x2 = y2 - g(y1), x1 = y1 - f(x2). A stack of such blocks
therefore needs to keep only its final outputs for the backward pass: walking the blocks
in reverse, each block rebuilds its inputs from its outputs, re-runs f and g with
gradients on, and back-propagates through that one block. Activation memory is then that
of one block, not of the whole stack; the price is one extra forward pass of f and g.

:class:`ReversibleStack` runs the stack the way the reference temporal model does
(lucidrains' ``ReversibleSequence``): the input is duplicated into both streams and the
output is the mean of the two streams. f and g must be deterministic (no dropout, no
randomness), so the recomputation gives back the same values; the temporal model's blocks
are (attention, LayerNorm, convolutions).

``recompute=False`` runs the same function with plain autograd (every activation kept):
the gradients are the same (up to float rounding of the reconstruction), only the memory
differs; the tests and ``bench/temporal_memory.py`` compare the two.
"""
from __future__ import annotations

import torch
from torch import nn


class ReversibleBlock(nn.Module):
    """(x1, x2) -> (y1, y2) = (x1 + f(x2), x2 + g(y1))."""

    def __init__(self, f: nn.Module, g: nn.Module):
        super().__init__()
        self.f, self.g = f, g

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return y1, y2

    def backward_pass(self, y1: torch.Tensor, y2: torch.Tensor, dy1: torch.Tensor,
                      dy2: torch.Tensor):
        """Rebuild (x1, x2) from (y1, y2) and turn the output gradients into input and
        parameter gradients: ((x1, x2), (dx1, dx2), grads of f's and g's parameters)."""
        f_params = [p for p in self.f.parameters() if p.requires_grad]
        g_params = [p for p in self.g.parameters() if p.requires_grad]
        with torch.enable_grad():
            y1 = y1.detach().requires_grad_(True)
            gy1 = self.g(y1)
            # dL/dy1 through y2 = x2 + g(y1), plus the direct dy1
            dg = torch.autograd.grad(gy1, [y1] + g_params, dy2, allow_unused=True)
        with torch.no_grad():
            x2 = y2 - gy1
            dx1 = dy1 + dg[0]                        # y1 = x1 + f(x2): dL/dx1 = dL/dy1
        with torch.enable_grad():
            x2 = x2.detach().requires_grad_(True)
            fx2 = self.f(x2)
            df = torch.autograd.grad(fx2, [x2] + f_params, dx1, allow_unused=True)
        with torch.no_grad():
            x1 = y1.detach() - fx2
            dx2 = dy2 + df[0]                        # x2 reaches y2 directly and y1 via f
        grads = {id(p): d for p, d in zip(f_params + g_params, list(df[1:]) + list(dg[1:]))}
        return (x1, x2.detach()), (dx1, dx2), grads


class _RecomputingStack(torch.autograd.Function):
    """Forward without keeping activations; backward block by block, rebuilding inputs.

    The parameters are passed as inputs so autograd routes their gradients as it does for
    any other operation (hooks, ``torch.autograd.grad`` and optimizers see them as usual).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, blocks: nn.ModuleList, *params: torch.Tensor):
        x1 = x2 = x
        for block in blocks:                         # autograd is off inside forward
            x1, x2 = block(x1, x2)
        ctx.blocks, ctx.n_params = blocks, len(params)
        ctx.param_ids = [id(p) for p in params]
        ctx.save_for_backward(x1, x2)
        return x1, x2

    @staticmethod
    def backward(ctx, dy1: torch.Tensor, dy2: torch.Tensor):
        y1, y2 = ctx.saved_tensors
        grads: dict[int, torch.Tensor | None] = {}
        for block in reversed(ctx.blocks):
            (y1, y2), (dy1, dy2), block_grads = block.backward_pass(y1, y2, dy1, dy2)
            grads.update(block_grads)
        dx = dy1 + dy2                               # x fed both streams
        return (dx, None, *[grads.get(i) for i in ctx.param_ids])


class ReversibleStack(nn.Module):
    """x -> mean of the two streams after the blocks, started from (x, x).

    ``recompute`` (default True) uses the memory-saving backward when gradients are needed;
    without gradients (evaluation) the blocks simply run forward.
    """

    def __init__(self, blocks: list[ReversibleBlock], recompute: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.recompute = recompute

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params = [p for p in self.blocks.parameters() if p.requires_grad]
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or bool(params))
        if self.recompute and needs_grad:
            y1, y2 = _RecomputingStack.apply(x, self.blocks, *params)
        else:
            y1 = y2 = x
            for block in self.blocks:
                y1, y2 = block(y1, y2)
        return (y1 + y2) / 2


def saved_tensor_bytes(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Bytes autograd keeps for the backward pass of ``module(*inputs)``: the activation
    memory (each tensor counted once; the module's parameters excluded)."""
    params = {p.data_ptr() for p in module.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.data_ptr() not in params:
            seen[t.data_ptr()] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(*inputs)
    return sum(seen.values())
