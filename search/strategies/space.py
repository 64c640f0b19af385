"""The declarative search space of paper 004, read from a TOML file and validated with pydantic.

A space describes *sequential* convolutional genomes::

    input -> [conv (bn) act] x n -> gap -> [linear(h) act] ... -> linear(classes)

where every conv is a *normal* layer (stride 1) except exactly ``reductions.count`` *reduction*
layers (stride ``reductions.stride``) placed anywhere. Filters, kernels and activations are
drawn from lists. The input shape and the class count may be fixed in the file or, when left
out, are taken from the dataset at run time, so one file serves digits (1x8x8) and MNIST
(1x28x28) alike. An example with every key: ``examples/space_ga.toml``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from genomorph.ir.errors import ConfigError, DataError, Span
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

Activation = Literal["relu", "sigmoid", "tanh", "swish", "gelu"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputSection(_Section):
    shape: tuple[int, ...] | None = None
    """C x H x W of the images; left out = the dataset's shape."""
    classes: int | None = Field(default=None, ge=1)
    """Width of the last linear layer; left out = the dataset's class count."""

    @field_validator("shape")
    @classmethod
    def _image(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is not None and (len(v) != 3 or min(v) < 1):
            raise ValueError("the input must be an image shape [C, H, W] with positive sizes")
        return v


class LayersSection(_Section):
    min: int = Field(default=3, ge=1)
    """Fewest conv layers in a genome, the reduction layers included."""
    max: int = Field(default=8, ge=1)
    """Most conv layers in a genome, the reduction layers included."""
    max_filters: int = Field(default=512, ge=1)
    """Upper bound on every entry of ``filters`` (paper 004 keeps filter counts <= 512)."""
    filters: tuple[int, ...] = (16, 32, 64, 128)
    """Output channel counts a conv may take."""
    kernels: tuple[int, ...] = (3, 5)
    """Odd kernel sizes a conv may take (padding keeps the size at stride 1)."""
    activations: tuple[Activation, ...] = ("relu", "sigmoid", "tanh", "swish", "gelu")
    """Activations that may follow a conv."""
    batch_norm: bool = True
    """Whether every conv is followed by batch norm (convs then have no bias)."""

    @field_validator("filters", "kernels", "activations")
    @classmethod
    def _non_empty(cls, v: tuple) -> tuple:
        if not v:
            raise ValueError("the list must not be empty")
        if len(set(v)) != len(v):
            raise ValueError("the list has repeated entries")
        return v

    @field_validator("kernels")
    @classmethod
    def _odd(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(k < 1 or k % 2 == 0 for k in v):
            raise ValueError("kernel sizes must be odd positive integers (3, 5, 7, ...)")
        return v

    @field_validator("filters")
    @classmethod
    def _at_most_max(cls, v: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        limit = info.data.get("max_filters", 512)
        too_big = [f for f in v if f < 1 or f > limit]
        if too_big:
            raise ValueError(f"filter counts {too_big} are outside 1..max_filters ({limit})")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> LayersSection:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class ReductionsSection(_Section):
    count: int = Field(default=2, ge=0)
    """Exact number of reduction convs in every genome (paper 004: two)."""
    stride: int = Field(default=2, ge=2)
    """Stride of a reduction conv; normal convs always have stride 1."""


class HeadSection(_Section):
    hidden: tuple[int, ...] = (64,)
    """Widths of the linear layers between global average pooling and the classifier."""
    activation: Activation = "relu"
    """Activation after each hidden linear layer."""

    @field_validator("hidden")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(h < 1 for h in v):
            raise ValueError("hidden widths must be positive")
        return v


class SearchSpace(_Section):
    """A paper-004 style sequential conv search space."""

    name: str = "space"
    input: InputSection = InputSection()
    layers: LayersSection = LayersSection()
    reductions: ReductionsSection = ReductionsSection()
    head: HeadSection = HeadSection()
    max_params: int | None = Field(default=None, ge=1)
    """Genomes with more trainable parameters are outside the space (resampled/rejected)."""

    @model_validator(mode="after")
    def _room_for_reductions(self) -> SearchSpace:
        if self.reductions.count > self.layers.max:
            raise ValueError(
                f"reductions.count ({self.reductions.count}) exceeds layers.max ({self.layers.max})"
            )
        return self

    @property
    def bound(self) -> bool:
        """Whether input shape and class count are known (fixed in the file or bound to data)."""
        return self.input.shape is not None and self.input.classes is not None

    def bind(self, input_shape: tuple[int, ...], classes: int) -> SearchSpace:
        """This space with the dataset's input shape and classes filled in.

        Values fixed in the file must agree with the dataset; otherwise a DataError says which.
        """
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise DataError(
                f"search space '{self.name}' builds conv nets on images, but the dataset gives "
                f"vectors of {'x'.join(map(str, shape))}",
                hint="use an image dataset (digits, mnist, fashion-mnist, cifar10, ...)",
            )
        fixed = self.input
        if fixed.shape is not None and tuple(fixed.shape) != shape:
            raise DataError(
                f"search space '{self.name}' fixes input.shape = {list(fixed.shape)} but the dataset "
                f"has {list(shape)}",
                hint="remove [input] shape from the space file to take it from the dataset",
            )
        if fixed.classes is not None and fixed.classes != classes:
            raise DataError(
                f"search space '{self.name}' fixes input.classes = {fixed.classes} but the dataset "
                f"has {classes} classes",
                hint="remove [input] classes from the space file to take it from the dataset",
            )
        return self.model_copy(update={"input": InputSection(shape=shape, classes=classes)})


# ---------------------------------------------------------------------------------- loading


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a search-space TOML file; every problem is a ConfigError with a location."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"cannot read search-space file {path}: {err.strerror or err}",
            hint="pass an existing TOML file, e.g. --space examples/space_ga.toml",
        ) from None
    return parse_space(text, source_name=str(path))


def parse_space(text: str, source_name: str = "<space>") -> SearchSpace:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(
            f"{source_name} is not valid TOML: {_toml_message(err)}",
            span=_toml_span(err, text, source_name),
            hint="check quotes, brackets and `key = value` syntax",
        ) from None
    try:
        return SearchSpace.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = [str(p) for p in first["loc"]]
        field = _field_path(first["loc"])
        more = f" (and {err.error_count() - 1} more problem(s))" if err.error_count() > 1 else ""
        raise ConfigError(
            f"{source_name}: field '{field}': {_pydantic_message(first)}{more}",
            span=_key_span(text, loc, source_name),
            hint=_hint(first),
        ) from None


def _field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<file>"


def _pydantic_message(error: dict) -> str:
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def _hint(error: dict) -> str | None:
    if error["type"] == "extra_forbidden":
        return (
            "known tables and keys: name, max_params, [input] shape/classes, [layers] min/max/filters/"
            "max_filters/kernels/activations/batch_norm, [reductions] count/stride, [head] hidden/activation"
        )
    if error["type"] == "literal_error":
        return "activations are relu, sigmoid, tanh, swish, gelu"
    return None


def _toml_message(err: tomllib.TOMLDecodeError) -> str:
    return re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)$", "", str(err))


def _toml_span(err: tomllib.TOMLDecodeError, text: str, source_name: str) -> Span | None:
    found = re.search(r"at line (\d+), column (\d+)", str(err))
    if not found:
        return None
    line, column = int(found.group(1)), int(found.group(2))
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else None
    return Span(line, column, file=source_name, source_line=source)


def _key_span(text: str, loc: list[str], source_name: str) -> Span | None:
    """Best-effort line of the offending key: the `[table]` header, then `key =` inside it."""
    names = [p for p in loc if not p.isdigit()]
    if not names:
        return None
    table, key = (names[0], names[1]) if len(names) > 1 else (None, names[0])
    lines = text.splitlines()
    current: str | None = None
    header_line: int | None = None
    for number, line in enumerate(lines, start=1):
        header = re.match(r"^\s*\[([^\]]+)\]", line)
        if header:
            current = header.group(1).strip()
            if current == (table or key) and header_line is None:
                header_line = number
            continue
        match = re.match(rf"^(\s*){re.escape(key)}\s*=", line)
        if match and current == table:
            return Span(number, len(match.group(1)) + 1, file=source_name, source_line=line)
    if header_line is not None:
        # the key is missing, or the whole table is wrong: point at the table header
        return Span(header_line, 1, file=source_name, source_line=lines[header_line - 1])
    return None
