"""PyTorch modules -> genomes: trace with torch.fx, translate each call, carry the weights.

- :func:`import_model(model, input_shape)` -> :class:`Imported` (graph, weights by node id,
  the module's parameter count); raises :class:`ImportFailure` naming the first call the IR
  cannot express, its module path and what to do;
- :func:`check_import(imported, model)` lowers the genome with the imported weights and
  compares its logits with the module's (eval mode, random inputs): the largest difference;
- :func:`parse_source` / :func:`build_model` read ``torchvision:NAME(kw=...)`` and
  ``FILE.py:FACTORY(kw=...)`` (models are built without pretrained weights).
"""

from __future__ import annotations

import torch
from torch import nn

from ._build import Imported, build_graph, example_input
from ._trace import ImportFailure, trace
from .sources import ModelSource, build_model, parse_source


def import_model(model: nn.Module, input_shape: tuple[int, ...]) -> Imported:
    """The IR and weights of ``model`` for inputs of ``input_shape`` (no batch dimension)."""
    traced = trace(model, example_input(input_shape))
    imported = build_graph(traced, model, tuple(input_shape))
    params = imported.graph.stats().params
    if params != imported.module_params:
        raise ImportFailure(
            f"the genome has {params:,} parameters but the module has {imported.module_params:,}",
            hint="the module owns parameters its forward never uses; delete them before importing",
        )
    return imported


def check_import(imported: Imported, model: nn.Module, *, batch: int = 2, seed: int = 0) -> float:
    """Max abs difference of the logits of the lowered genome and of ``model`` (eval mode)."""
    from genomorph.lower import lower

    module = lower(imported.graph, imported.weights).eval()
    x = example_input(imported.graph.stats().input_shape, batch=batch, seed=seed)
    with torch.no_grad():
        want = model.eval()(x)
        got = module(x)
    return float((want - got).abs().max())


__all__ = [
    "ImportFailure",
    "Imported",
    "ModelSource",
    "build_model",
    "check_import",
    "import_model",
    "parse_source",
]
