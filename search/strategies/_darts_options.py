"""Options of the ``darts`` / ``hyperdarts`` recipes: what the strategy sends, what the worker runs.

Torch-free so the strategy can build and validate them; the worker (``search/runtime/darts_recipe.py``)
validates ``EvalRequest.recipe_options`` with the same model. Defaults are paper 003 §4.8.1 (DARTS'
own settings) unless a dataset table in ``darts.py`` overrides them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GenotypeLayout(BaseModel):
    """How the worker reads the genotype α gives now, for the op counts of the epoch progress
    (`_darts_progress.py`): the candidates' labels of every α row per group and, in DARTS cells,
    the rows into each intermediate node (the top-2 of those are kept); a group without ``nodes``
    keeps the strongest candidate of every row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    labels: dict[str, tuple[tuple[str, ...], ...]] = Field(default_factory=dict)
    nodes: dict[str, tuple[tuple[int, ...], ...]] = Field(default_factory=dict)


class DartsRecipeOptions(BaseModel):
    """One supernet search: bilevel optimisation of weights (or hypernetworks) and α."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["darts", "hyperdarts"] = "darts"
    order: Literal[1, 2] = 1
    """DARTS: 1 = first-order (α descends ∇α L_val(w, α)); 2 = the unrolled step of eq. (17)."""
    hypernet: Literal["linear", "mlp"] = "linear"
    """hyperDARTS: ``linear`` (hyperDARTS-1) or ``mlp`` (hyperDARTS-2: one sigmoid hidden layer of #λ/2)."""
    batch_size: int = Field(default=64, ge=2)
    lr: float = Field(default=0.025, gt=0)
    """Weight (or hypernetwork) SGD learning rate, cosine-annealed per epoch to ``min_lr``."""
    min_lr: float = Field(default=0.001, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=3e-4, ge=0)
    grad_clip: float = Field(default=5.0, gt=0)
    arch_lr: float = Field(default=3e-4, gt=0)
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = Field(default=1e-3, ge=0)
    train_portion: float = Field(default=0.5, gt=0, lt=1)
    """Share of the training split that trains the weights; the rest is α's validation data."""
    partial_channels: int = Field(default=1, ge=1)
    """PC-DARTS' K the genome was built with (1 = plain DARTS): the strategy applies
    ``ir.partial_channels`` to the space, so the genome itself holds the partial channels and
    the edge parameters β (architecture tensors beside α, trained by the same Adam step); the
    recipe trains the genome it is given and reports K in the metrics."""
    layout: GenotypeLayout | None = None
    """Where the op counts of the current genotype come from (``None``: no counts in the records)."""
    fuse: bool = True
    """Step through ``lower.fuse.fuse_mixed`` of the supernet: the same function and tensors,
    fewer kernels (``search/runtime/darts_fusion.py``)."""
    channels_last: bool = True
    """On CPU, store the supernet's 4-D tensors NHWC (faster depthwise convolutions); same values."""


__all__ = ["DartsRecipeOptions", "GenotypeLayout"]
