"""Fusion of a lowered supernet's mixed ops: the same function with fewer and cheaper kernels.

``fuse_mixed(module)`` is a lowering pass: it reads the fx graph of a lowered `GenomeModule` and
returns a new `GenomeModule` that computes the same function (forward and gradients, up to the
order of float additions) and **shares the input's submodules**: the same parameter and buffer
tensors under the same ``state_dict`` names, in the same order. A step built on the fused module
trains the plain one; checkpoints, α (``arch_parameters()``), hyperDARTS' ``functional_call``
(it substitutes parameters by name, and the fused code reads every weight through its module)
and discretisation see no difference. The input module is not changed.

It lives in ``lower/`` rather than in ``ir/`` because what it decides is about kernels, not
architecture: the IR keeps one node per candidate op (what a search, a printer and
discretisation need), and the rewrites below only pay off once tensors have a memory format.

Rewrites, each applied where its pattern is found and skipped elsewhere (graphs it does not
recognise, e.g. PC-DARTS' partial channels, keep the plain lowering node for node):

- **pure ops computed once**: relu, max/avg pooling and DARTS' ``zero`` applied to the same
  value with the same arguments become one node (the IR pass ``share_pure_ops`` does this on
  the genome; this catches graphs lowered without it);
- **``none`` skipped**: a candidate that is ``zero(x)`` contributes ``w * 0`` to its mixed sum
  and nothing to any gradient, so it is left out of the sum and never computed (its α still
  enters the softmax, so the other weights are unchanged);
- **the weighted sum as one op**: ``mixed_sum`` allocates one output and accumulates the
  remaining candidates into it with ``addcmul_`` instead of a multiply and an add per term;
- **dilated convolutions with stride = dilation** (the stride-2 ``dil_conv`` edges of DARTS'
  reduction cells): a convolution with stride ``d``, dilation ``d`` and "same" padding
  ``d(k-1)/2`` reads only every ``d``-th row and column, so it equals an undilated stride-1
  convolution of ``x[:, :, ::d, ::d]`` with padding ``(k-1)/2``, which CPU kernels run several
  times faster (measured in ``bench/bench_darts.py``); the subsampled input is taken once per
  value and shared by every such convolution reading it.

Measured and not done (bench/README.md): batching the depthwise convolutions of the candidates
that read the same value into one grouped convolution (a channel multiplier, or the input
repeated) is slower on CPU than separate calls except for dilated kernels, and its output order
(by input channel) would need a transpose before the pointwise convolutions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from . import functional
from .lower import GenomeModule
from .modules import SepConv

# ---------------------------------------------------------------------------------------------
# Functions the fused forward calls (module level, so fx names them in its generated code).


def mixed_sum(weights: Tensor, row: int, picks: tuple[int, ...], *candidates: Tensor) -> Tensor:
    """``sum_j weights[row, picks[j]] * candidates[j]``: the mixed op without its ``none`` terms.

    One output tensor, the other terms accumulated in place (``addcmul_``), which autograd
    differentiates like the separate multiplies and adds it replaces.
    """
    w = weights[row].unbind(0)
    out = candidates[0] * w[picks[0]]
    for j in range(1, len(candidates)):
        out = out.addcmul_(candidates[j], w[picks[j]])
    return out


def subsample(x: Tensor, step: int) -> Tensor:
    """Every ``step``-th row and column of ``x``, in ``x``'s memory format (a conv reads it next)."""
    part = x[:, :, ::step, ::step]
    fmt = (
        torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    )
    return part.contiguous(memory_format=fmt)


def conv_undilated(
    x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, int], groups: int
) -> Tensor:
    """A stride-1, undilated convolution: the stride = dilation one on the subsampled input."""
    return F.conv2d(x, weight, bias, 1, padding, 1, groups)


# ---------------------------------------------------------------------------------------------
# Pattern tests

#: call_function targets that are pure in their tensor argument: same args, same value
_PURE: frozenset[Callable[..., Any]] = frozenset(
    {torch.relu, torch.max_pool2d, F.avg_pool2d, torch._C._nn.avg_pool2d, functional.zero}
)
#: the lowering's in-place ops: they overwrite their first argument
_INPLACE: frozenset[Callable[..., Any]] = frozenset({torch.relu_, operator.iadd})


def _overwritten(node: fx.Node) -> bool:
    """Whether an in-place op writes into ``node``'s value (then it must not be shared)."""
    return any(u.op == "call_function" and u.target in _INPLACE and u.args[0] is node for u in node.users)


def _hashable(args: Iterable[object]) -> tuple[object, ...] | None:
    out: list[object] = []
    for a in args:
        if isinstance(a, fx.Node | int | float | bool | str) or a is None:
            out.append(a)
        elif isinstance(a, tuple | list) and all(isinstance(v, int | float | bool) for v in a):
            out.append(tuple(a))
        else:
            return None
    return tuple(out)


def _undilatable(conv: nn.Module) -> int | None:
    """``d`` when ``conv`` is a 2-D convolution with stride = dilation = d > 1 and "same" padding."""
    if not isinstance(conv, nn.Conv2d) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return None
    (sh, sw), (dh, dw), (kh, kw) = conv.stride, conv.dilation, conv.kernel_size
    if not (sh == sw == dh == dw) or sh < 2 or kh % 2 == 0 or kw % 2 == 0:
        return None
    if tuple(conv.padding) != (dh * (kh - 1) // 2, dw * (kw - 1) // 2):
        return None
    return sh


# ---------------------------------------------------------------------------------------------
# The pass


class _Fuser:
    def __init__(self, module: GenomeModule) -> None:
        self.module = module
        self.graph = fx.Graph()
        self.env: dict[fx.Node, fx.Node] = {}
        #: pure values by (function, arguments); only values no in-place op overwrites
        self.pure: dict[tuple[object, ...], fx.Node] = {}
        self.subsampled: dict[tuple[fx.Node, int], fx.Node] = {}
        #: get_attr / call_module targets the new graph references (GraphModule copies them)
        self.targets: dict[str, Any] = {}
        self.rewrites: dict[str, int] = {"shared": 0, "none_skipped": 0, "mixed_sum": 0, "undilated": 0}

    def run(self) -> GenomeModule:
        for node in self.module.graph.nodes:
            self.env[node] = self.copy(node)
        self.drop_unused()
        root: dict[str, Any] = dict(self.module.named_children())
        root.update(self.targets)
        fused = GenomeModule(root, self.graph, self.module.aux_weights)
        # every submodule of the plain module, the same objects in the same order: parameters(),
        # state_dict() and named_parameters() are the plain module's
        fused._modules.clear()
        for name, child in self.module.named_children():
            fused._modules[name] = child
        fused.train(self.module.training)
        fused.fusion_rewrites = dict(self.rewrites)  # type: ignore[attr-defined]
        return fused

    def drop_unused(self) -> None:
        """Remove the pure values nothing reads any more (the skipped ``none`` candidates)."""
        for node in reversed(list(self.graph.nodes)):
            if node.op == "call_function" and node.target in _PURE | {subsample} and not node.users:
                self.graph.erase_node(node)

    def arg(self, a: Any) -> Any:
        return fx.node.map_arg(a, lambda n: self.env[n])

    def copy(self, node: fx.Node) -> fx.Node:
        if node.op == "call_function" and node.target in _PURE and not _overwritten(node):
            args = _hashable(self.arg(node.args))
            key = None if args is None or node.kwargs else (node.target, *args)
            if key is not None:
                if key in self.pure:
                    self.rewrites["shared"] += 1
                    return self.pure[key]
                self.pure[key] = out = self.graph.node_copy(node, lambda n: self.env[n])
                return out
        if node.op == "call_function" and node.target is functional.mixed:
            return self.mixed(node)
        if node.op == "call_module" and not node.kwargs and len(node.args) == 1:
            target = str(node.target)
            sub = self.module.get_submodule(target)
            conv = sub.depthwise if isinstance(sub, SepConv) else sub
            step = _undilatable(conv)
            if step is not None:
                return self.undilated(node, target, sub, step)
        return self.graph.node_copy(node, lambda n: self.env[n])

    def mixed(self, node: fx.Node) -> fx.Node:
        weights, row, *cands = node.args
        keep = [(i, c) for i, c in enumerate(cands) if not self.is_zero(c)]
        if not keep or len(node.args) < 3 or node.kwargs:
            return self.graph.node_copy(node, lambda n: self.env[n])
        self.rewrites["none_skipped"] += len(cands) - len(keep)
        self.rewrites["mixed_sum"] += 1
        picks = tuple(i for i, _ in keep)
        args = (self.env[weights], row, picks, *(self.arg(c) for _, c in keep))  # type: ignore[index]
        return self.graph.create_node("call_function", mixed_sum, args, {}, name=node.name)

    @staticmethod
    def is_zero(value: object) -> bool:
        return isinstance(value, fx.Node) and value.op == "call_function" and value.target is functional.zero

    def attr(self, target: str) -> fx.Node:
        self.targets[target] = self.module.get_parameter(target)
        return self.graph.get_attr(target)

    def undilated(self, node: fx.Node, target: str, sub: nn.Module, step: int) -> fx.Node:
        x = self.env[node.args[0]]  # type: ignore[index]
        key = (x, step)
        if key not in self.subsampled:
            self.subsampled[key] = self.graph.call_function(subsample, (x, step))
        xs = self.subsampled[key]
        sep = isinstance(sub, SepConv)
        conv: nn.Conv2d = sub.depthwise if sep else sub  # type: ignore[assignment]
        prefix = f"{target}.depthwise" if sep else target
        weight = self.attr(f"{prefix}.weight")
        bias = self.attr(f"{prefix}.bias") if conv.bias is not None else None
        padding = ((conv.kernel_size[0] - 1) // 2, (conv.kernel_size[1] - 1) // 2)
        name = f"{node.name}_dw" if sep else node.name
        out = self.graph.create_node(
            "call_function", conv_undilated, (xs, weight, bias, padding, conv.groups), {}, name=name
        )
        self.rewrites["undilated"] += 1
        if not sep:
            return out
        pointwise = f"{target}.pointwise"
        self.targets[pointwise] = sub.pointwise
        return self.graph.create_node("call_module", pointwise, (out,), {}, name=node.name)


def fuse_mixed(module: GenomeModule) -> GenomeModule:
    """A module computing ``module``'s function with its mixed ops fused (see the module docstring).

    The result shares every submodule (so every parameter and buffer) with ``module``: train
    either and both change, and ``.to(device)`` / ``.to(memory_format=...)`` on either moves
    the tensors both read. ``result.fusion_rewrites`` counts what was rewritten.
    """
    return _Fuser(module).run()


__all__ = ["conv_undilated", "fuse_mixed", "mixed_sum", "subsample"]
