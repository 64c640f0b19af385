"""The noisy strategy's options, its start network and the record of one iteration (see `noisy`)."""

from __future__ import annotations

from typing import Any

from genomorph.search.core.protocol import JSON, DatasetInfo, SearchSetup
from pydantic import BaseModel, ConfigDict, Field

from ._noisy_meta import LayerRule, NoisyMeta
from ._noisy_save import Derivation

#: defaults by the kind of input, not the dataset's name: vectors (toy sets, tables) get a small
#: MLP H-ResNet and many cheap iterations, images a conv stem and fewer (docs/strategies.md)
DEFAULTS: dict[str, dict[str, int]] = {
    "vectors": {"iterations": 12, "hidden": 8, "decay_steps": 200},
    "images": {"iterations": 6, "hidden": 32, "decay_steps": 100},
}
#: max_epochs on the reference data (digits), scaled to the data by `scale.DataScale`
REFERENCE_MAX_EPOCHS = 30


def kind_of(info: DatasetInfo) -> str:
    return "images" if len(info.input_shape) == 3 else "vectors"


class NoisyConfig(BaseModel):
    """Options of ``--strategy noisy``: the meta-parameters' starting values and the run's shape."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    meta: str | None = None
    """The live meta-parameter file (TOML or JSON), re-read at the start of every iteration."""
    iterations: int | None = Field(default=None, ge=1)
    """Growth-train-shrink iterations (``--budget``)."""
    hidden: int | None = Field(default=None, ge=1)
    """Hidden units of the default start network's residual layer."""
    neurons_to_add: int | None = Field(default=None, ge=0)
    add_to_remove_ratio: float | None = Field(default=None, gt=0)
    neurons_to_remove: int | None = Field(default=None, ge=0)
    lr: float | None = Field(default=None, gt=0)
    min_epochs: int | None = Field(default=None, ge=1)
    max_epochs: int | None = Field(default=None, ge=1)
    flatten_threshold: float | None = None
    decay_steps: int | None = Field(default=None, ge=1)
    layer_rule: LayerRule | None = None
    remove_layer_at: int | None = Field(default=None, ge=0)
    max_params: int | None = Field(default=None, ge=1)

    def base_meta(self, info: DatasetInfo, epochs: int | None = None) -> NoisyMeta:
        """The meta-parameters before any file: scaled defaults, then ``--epochs`` and ``--set`` values."""
        from pydantic import ValidationError

        from .scale import DataScale, resolve

        values: dict[str, Any] = {
            "max_epochs": resolve(
                "max_epochs",
                self.max_epochs,
                DataScale.of(info).epochs(REFERENCE_MAX_EPOCHS),
                epochs,
                "--epochs",
            ),
            "decay_steps": DEFAULTS[kind_of(info)]["decay_steps"],
        }
        given = self.model_dump(exclude_none=True, exclude={"meta", "iterations", "hidden"})
        try:
            return NoisyMeta.model_validate({**values, **given, "max_epochs": values["max_epochs"]})
        except ValidationError as err:
            from genomorph.ir import ConfigError

            first = err.errors()[0]
            raise ConfigError(
                f"invalid noisy option {'.'.join(map(str, first['loc']))}: {first['msg']}"
            ) from None


#: the conv layers in front of the H-ResNet of the default start network for images
IMAGE_STEM = "conv(16, 3, bias=false) bn relu\nconv(32, 3, bias=false) bn relu\nmaxpool(2)\nflatten\n"


def start_genome(setup: SearchSetup, hidden: int) -> str:
    """The user's start genome, or one H-ResNet layer from the input to the outputs (behind a conv
    stem for images)."""
    from genomorph.grammar import parse

    from .nash import start_genome as fitted

    if setup.start_genome is not None:
        return fitted(setup, True)
    info = setup.dataset
    outputs = info.num_outputs
    head = f"input {'x'.join(str(d) for d in info.input_shape)}\n"
    if len(info.input_shape) == 3:  # images: a conv stem whose channels grow and shrink too
        head += IMAGE_STEM
    text = head + f"hres(linear({outputs}), linear({hidden}), linear({outputs}, bias=false))\n"
    from genomorph.search.core.protocol import canonical

    return canonical(parse(text, source_name="<noisy start>"))[0]


class Iteration(BaseModel):
    """One finished iteration as the store and summary.json report it."""

    model_config = ConfigDict(extra="forbid")

    iteration: int
    candidate: int
    """The candidate whose measurements are this iteration's: the ``shrink`` candidate when the
    save was folded into it (``derived`` set), else the ``save`` candidate."""
    params: int
    depth: int
    units: list[int]
    layers: int
    """Residual (H-ResNet) layers."""
    objective: float
    train_accuracy: float | None = None
    val_accuracy: float | None = None
    train_r2: float | None = None
    val_r2: float | None = None
    epochs: int
    """Training epochs of this iteration (train + fine-tune)."""
    total_epochs: int
    stopped_early: bool = False
    added: int
    removed: int
    layers_added: int
    layers_removed: int
    meta: dict[str, JSON]
    genome: str
    checkpoint: str | None = None
    """The weights of ``genome`` (None for a folded save: see ``derived``)."""
    derived: Derivation | None = None
    """A folded save: how ``genome``'s weights are rebuilt from the shrink candidate's (`_noisy_save`)."""


__all__ = [
    "DEFAULTS",
    "IMAGE_STEM",
    "REFERENCE_MAX_EPOCHS",
    "Iteration",
    "NoisyConfig",
    "kind_of",
    "start_genome",
]
