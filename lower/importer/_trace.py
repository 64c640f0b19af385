"""Tracing a PyTorch module with torch.fx, with the shapes of every value recorded.

The tracer keeps a few modules whole that fx would otherwise trace into (torchvision's
``StochasticDepth`` reads ``self.training`` and draws random numbers, which fx cannot record
as data); everything in ``torch.nn`` is a leaf already.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import torch
from genomorph.ir.errors import GenomorphError
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.utils.stateless import _reparametrize_module

log = logging.getLogger(__name__)


class ImportFailure(GenomorphError):
    """A module cannot be brought into the IR: it does not trace, or it uses an op the IR lacks."""


def stochastic_depth_ops() -> tuple[type[nn.Module] | None, Callable[..., torch.Tensor] | None]:
    """torchvision's ``StochasticDepth`` module and ``stochastic_depth`` function."""
    try:  # torchvision is a dependency, but a module.py factory may not need it
        from genomorph.lower.torchvision_compat import import_torchvision

        import_torchvision()
        from torchvision.ops.stochastic_depth import StochasticDepth, stochastic_depth
    except ImportError:  # pragma: no cover - torchvision is installed with genomorph
        return None, None
    return StochasticDepth, stochastic_depth


def _extra_leaves() -> tuple[type[nn.Module], ...]:
    leaf, _ = stochastic_depth_ops()
    return (leaf,) if leaf is not None else ()


class _Tracer(fx.Tracer):
    def __init__(self) -> None:
        super().__init__()
        self.leaves = _extra_leaves()

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, self.leaves) or super().is_leaf_module(m, module_qualified_name)


def _propagate_shapes(traced: fx.GraphModule, example: torch.Tensor) -> None:
    """Record every node's output shape in its ``meta``, on the meta device where it works.

    A real forward at 224x224 costs seconds on a CPU; the meta device computes shapes only.
    Code that reads tensor values (``.item()``, data-dependent shapes) cannot run there, and
    then the shapes come from a real forward.
    """
    with torch.no_grad():
        try:
            # the traced module shares its submodules with ``model``: swap their tensors for meta
            # ones for the duration (what torch.func.functional_call does), copying nothing
            state = {
                name: torch.empty_like(t, device="meta")
                for name, t in itertools.chain(traced.named_parameters(), traced.named_buffers())
            }
            with _reparametrize_module(traced, state):
                ShapeProp(traced).propagate(example.to("meta"))
            return
        except Exception as err:  # a meta kernel missing, or a value read: compute for real
            log.debug("shape propagation on the meta device failed (%s); running the model", err)
        ShapeProp(traced).propagate(example)


def trace(model: nn.Module, example: torch.Tensor) -> fx.GraphModule:
    """``model`` as an fx GraphModule in eval mode, every node's output shape in ``meta``."""
    model = model.eval()
    try:
        graph = _Tracer().trace(model)
    except Exception as err:  # fx raises TraceError, TypeError, ... for untraceable Python
        raise ImportFailure(
            f"torch.fx cannot trace {type(model).__name__}: {type(err).__name__}: {err}",
            hint="the forward must not branch on tensor values; wrap such code in a module that "
            "returns a traceable equivalent, or import the traceable part of the network",
        ) from None
    traced = fx.GraphModule(model, graph, class_name=type(model).__name__)
    try:
        _propagate_shapes(traced, example)
    except Exception as err:
        raise ImportFailure(
            f"{type(model).__name__} does not run on an input of shape {tuple(example.shape)}: {err}",
            hint="give the input shape the model expects with --input-shape CxHxW",
        ) from None
    return traced
