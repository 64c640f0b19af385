"""Training recipes: which steps a candidate trains with, and what extra it reports.

An `EvalRequest` names a recipe (``recipe="standard"``) and gives its options
(``recipe_options``, a JSON dict). The worker looks the recipe up here, validates the options
with the recipe's own pydantic ``Options`` model (a bad option fails the candidate with a
`ConfigError` naming it), and then:

1. ``recipe.splits(ctx_data, train)`` — the named splits the steps draw from (default:
   ``train`` and ``val``; DARTS splits the training data in two halves, ``train`` for the
   weights and ``arch`` for α);
2. ``recipe.steps(ctx)`` — the `Step` objects, built afresh for every candidate (and again on
   resume, before their ``load_state_dict``: a recipe must build them the same way each time);
3. the loop (`loop.run_epochs`) trains, validates, checkpoints every epoch;
4. ``recipe.extra(ctx, steps, report)`` — JSON-able numbers for ``Metrics.extra`` (DARTS: the
   genotype text);
5. ``recipe.artifacts(ctx, steps, report, files)`` — files written through ``files`` (an
   `ArtifactWriter`), returned as name → path relative to the run directory, for
   ``EvalResult.artifacts`` (DARTS: α per epoch as JSON).

Writing one::

    class DartsOptions(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        order: Literal[1, 2] = 1
        arch_lr: float = 3e-4

    @register
    class Darts(Recipe):
        name = "darts"
        Options = DartsOptions

        def splits(self, data, train):
            half = len(train) // 2
            return {"train": Split(train.x[:half], train.y[:half]),
                    "arch": Split(train.x[half:], train.y[half:]), "val": data.val}

        def steps(self, ctx):
            return [ArchitectureStep(ctx, self.options), WeightStep(ctx)]

        def extra(self, ctx, steps, report):
            return {"genotype": genotype_text(ctx.module)}

Register it with the `register` decorator in a module that is imported, or add its import
path to `PLUGINS` (name → ``"package.module:Class"``) so that it is imported only when a
request names it; ``recipe="package.module:Class"`` also works for a recipe of your own.
"""

from __future__ import annotations

import importlib
import io
from abc import ABC
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from genomorph.ir import ConfigError
from genomorph.search.core.files import DurableBatch, atomic_write
from genomorph.search.runtime.data import Dataset, Split
from genomorph.search.runtime.steps import Step, TrainContext
from genomorph.search.runtime.weight_step import WeightStep
from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    from genomorph.search.runtime.loop import TrainReport


class NoOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArtifactWriter:
    """Writes a candidate's artifact files atomically under ``artifacts/`` of the run directory."""

    def __init__(self, run_dir: Path, candidate: int, batch: DurableBatch | None = None) -> None:
        self.run_dir = run_dir
        self.candidate = candidate
        self.batch = batch
        """When given, files are renamed into place (durable) by ``batch.commit()``, with the weights."""

    def path(self, name: str, suffix: str) -> str:
        """Relative path of artifact ``name`` of this candidate (``artifacts/c00007.name.npz``: ``name`` and ``suffix``)."""
        return f"artifacts/c{self.candidate:05d}.{name}{suffix}"

    def write_bytes(self, name: str, suffix: str, data: bytes) -> str:
        relative = self.path(name, suffix)
        if self.batch is not None:
            self.batch.write(self.run_dir / relative, lambda handle: handle.write(data))
        else:
            atomic_write(self.run_dir / relative, lambda handle: handle.write(data))
        return relative

    def write(self, name: str, suffix: str, fill: Callable[[io.BytesIO], object]) -> str:
        """Write what ``fill(buffer)`` puts into a buffer (e.g. ``np.savez``)."""
        buffer = io.BytesIO()
        fill(buffer)
        return self.write_bytes(name, suffix, buffer.getvalue())


class Recipe(ABC):
    """How one candidate trains; see the module docstring."""

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoOptions

    def __init__(self, options: BaseModel) -> None:
        self.options = options

    def splits(self, data: Dataset, train: Split) -> dict[str, Split]:
        """The named splits the steps draw from; ``train`` is the budget's training data."""
        return {"train": train, "val": data.val}

    def steps(self, ctx: TrainContext) -> list[Step]:
        """The steps of this training, in the order their updates interleave."""
        return [WeightStep(ctx)]

    def extra(self, ctx: TrainContext, steps: list[Step], report: TrainReport) -> dict[str, Any]:
        """JSON-able measurements for ``Metrics.extra``."""
        return {}

    def artifacts(
        self, ctx: TrainContext, steps: list[Step], report: TrainReport, files: ArtifactWriter
    ) -> dict[str, str]:
        """Files written with ``files``: artifact name → path relative to the run directory."""
        return {}


RECIPES: dict[str, type[Recipe]] = {}

#: recipes imported on first use: name → ``"package.module:Class"``
PLUGINS: dict[str, str] = {
    "noisy-decay": "genomorph.search.runtime.recipes_noisy:NoisyDecay",  # paper 000's fade before pruning
    "darts": "genomorph.search.runtime.darts_recipe:DartsRecipe",  # paper 003 Algorithm 1
    "hyperdarts": "genomorph.search.runtime.darts_recipe:HyperDartsRecipe",  # paper 003 Algorithm 2
}


def register(cls: type[Recipe]) -> type[Recipe]:
    """Class decorator: make ``cls`` available as ``EvalRequest(recipe=cls.name)``."""
    RECIPES[cls.name] = cls
    return cls


@register
class Standard(Recipe):
    """The ordinary training: one `WeightStep` (SGD/Adam, schedule, mixup, cutout, aux losses),
    and the drop-path schedule when the network has stochastic depth to schedule (`drop_path`)."""

    name = "standard"

    def steps(self, ctx: TrainContext) -> list[Step]:
        from genomorph.search.runtime.drop_path import drop_path_steps

        return [WeightStep(ctx), *drop_path_steps(ctx)]


def _load(path: str) -> type[Recipe]:
    module_name, _, attribute = path.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"cannot load recipe {path}: {err}") from None
    if not (isinstance(found, type) and issubclass(found, Recipe)):
        raise ConfigError(f"{path} is not a genomorph Recipe class")
    return found


def recipe_class(name: str) -> type[Recipe]:
    if name in RECIPES:
        return RECIPES[name]
    if name in PLUGINS:
        return _load(PLUGINS[name])
    if ":" in name:
        return _load(name)
    known = ", ".join(sorted({*RECIPES, *PLUGINS}))
    raise ConfigError(f"unknown training recipe '{name}'", hint=f"choose one of: {known}")


def build_recipe(name: str, options: dict[str, Any]) -> Recipe:
    """The recipe ``name`` with validated ``options``; ConfigError naming any bad option."""
    cls = recipe_class(name)
    try:
        parsed = cls.Options.model_validate(options)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise ConfigError(
            f"invalid options for recipe '{name}': {problems}",
            hint=f"the options are: {', '.join(cls.Options.model_fields) or 'none'}",
        ) from None
    return cls(parsed)


__all__ = [
    "PLUGINS",
    "RECIPES",
    "ArtifactWriter",
    "NoOptions",
    "Recipe",
    "Standard",
    "build_recipe",
    "recipe_class",
    "register",
]
