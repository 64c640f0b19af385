"""Paper 000's live meta-parameters: a TOML or JSON file the user edits while the search runs.

The file is re-read at the start of every iteration. A value that changed takes effect in that
iteration and is logged; a broken edit (bad syntax, an unknown key, a value out of range) keeps
the last good values and warns with the position of the problem; the run never stops for it.
Keys may be written with ``-`` or ``_`` (``neurons-to-add`` = ``neurons_to_add``).

```toml
neurons_to_add = 16          # P, spread over the hidden layers every growth phase
add_to_remove_ratio = 1.3    # P / M: above 1 the network grows, below 1 it shrinks
```
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any, Literal

from genomorph.ir import ConfigError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

LayerRule = Literal["paper", "authors"]


class NoisyMeta(BaseModel):
    """The meta-parameters of one iteration (paper 000 §2 and appendix C)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    neurons_to_add: int = Field(default=16, ge=0)
    """P: units added over the hidden layers in every growth phase (channels for conv layers)."""
    add_to_remove_ratio: float = Field(default=1.3, gt=0)
    """P / M: the shrink phase removes M = round(P / ratio) units; below 1 the network shrinks."""
    neurons_to_remove: int | None = Field(default=None, ge=0)
    """M directly; overrides ``add_to_remove_ratio`` when set."""
    guided_fraction: float = Field(default=0.7, ge=0, le=1)
    """Share of new units placed with probability ∝ the moving average of each layer's ΔN (paper: 70 %)."""
    average_window: int = Field(default=3, ge=1)
    """Iterations in the moving average of ΔN = P_i − M_i."""
    lr: float = Field(default=0.05, gt=0)
    """Learning rate of the training and fine-tuning phases (constant within an iteration)."""
    min_epochs: int = Field(default=3, ge=1)
    """Training epochs before the flattening test may stop the training."""
    max_epochs: int = Field(default=40, ge=1)
    """Training stops here if the loss curve has not flattened (appendix A)."""
    flatten_threshold: float = -5.0
    """Stop when the fitted a of y = exp(a x)(1 − x) falls below this (paper: −5)."""
    decay_steps: int = Field(default=60, ge=1)
    """Optimizer steps over which the outgoing weights of the units to prune fall to zero, while
    every other weight fine-tunes."""
    layer_rule: LayerRule = "paper"
    """When a residual layer nests: ``paper`` H > (I·O²)^(1/3); ``authors`` H > (max(I,O)·min(I,O)²)^(1/3)."""
    remove_layer_at: int = Field(default=1, ge=0)
    """A residual layer whose hidden units fall to this many or fewer is removed (paper: ~1)."""
    max_params: int | None = Field(default=None, ge=1)
    """Growth stops adding units once the network has this many parameters (None: no cap)."""

    @model_validator(mode="after")
    def _epochs(self) -> NoisyMeta:
        if self.min_epochs > self.max_epochs:
            raise ValueError(f"min_epochs ({self.min_epochs}) is above max_epochs ({self.max_epochs})")
        return self

    def removals(self) -> int:
        """M, the units the shrink phase removes."""
        if self.neurons_to_remove is not None:
            return self.neurons_to_remove
        return int(round(self.neurons_to_add / self.add_to_remove_ratio))

    def changes(self, other: NoisyMeta) -> dict[str, tuple[Any, Any]]:
        """Field -> (old, new) for every value ``other`` sets differently."""
        mine, theirs = self.model_dump(), other.model_dump()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


def _where(text: str, key: str, value: bool = False) -> tuple[int, int] | None:
    """Line and column (1-based) of ``key`` in a TOML or JSON text, either spelling; with
    ``value``, of the value written after it (when it is on the same line)."""
    spellings = {key, key.replace("_", "-")}
    for number, line in enumerate(text.splitlines(), start=1):
        for spelling in spellings:
            found = re.search(rf'(^\s*|"){re.escape(spelling)}"?\s*[=:]\s*', line)
            if found:
                if value and found.end() < len(line.rstrip()):
                    return number, found.end() + 1
                return number, found.start() + len(found.group(1)) - (1 if found.group(1) == '"' else 0) + 1
    return None


def _fail(name: str, text: str, message: str, line: int | None, column: int | None) -> ConfigError:
    from genomorph.ir.errors import Span

    lines = text.splitlines()
    span = None
    if line is not None and 1 <= line <= max(len(lines), 1):
        source = lines[line - 1] if lines else ""
        span = Span(line=line, column=column or 1, file=name, source_line=source)
    return ConfigError(message if span else f"{name}: {message}", span=span)


def _decode(text: str, name: str) -> dict[str, Any]:
    if name.endswith(".json") or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise _fail(name, text, f"bad JSON: {err.msg}", err.lineno, err.colno) from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            found = re.search(r"\(at line (\d+), column (\d+)\)", str(err))
            message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(err))
            line, column = (int(found.group(1)), int(found.group(2))) if found else (None, None)
            if found is None and "end of document" in str(err):
                lines = text.splitlines() or [""]
                line, column = len(lines), len(lines[-1]) + 1
            raise _fail(name, text, f"bad TOML: {message}", line, column) from None
    if not isinstance(data, dict):
        raise _fail(name, text, "the meta-parameter file must hold a table of key = value", 1, 1)
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def parse_meta(text: str, name: str = "<meta>", base: NoisyMeta | None = None) -> NoisyMeta:
    """The meta-parameters a file sets, over ``base`` (default: the defaults).

    Raises `ConfigError` naming the file, line and column of the first problem."""
    data = _decode(text, name)
    merged = {**(base or NoisyMeta()).model_dump(), **data}
    try:
        return NoisyMeta.model_validate(merged)
    except ValidationError as err:
        first = err.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        if not key:  # a rule across fields: point at the first field the message names
            key = next((k for k in data if k in first["msg"]), "")
        # a bad value is pointed at where it is written; an unknown key or a rule across fields at the key
        position = (
            _where(text, key, value=bool(first["loc"]) and first["type"] != "extra_forbidden")
            if key
            else None
        )
        if first["type"] == "extra_forbidden":
            message = f"unknown meta-parameter '{key}'; known: {', '.join(NoisyMeta.model_fields)}"
        else:
            message = f"meta-parameter '{key}': {first['msg']}" if first["loc"] else first["msg"]
        line, column = position if position else (None, None)
        raise _fail(name, text, message, line, column) from None


def reload(
    text: str | None, name: str, last_good: NoisyMeta, base: NoisyMeta
) -> tuple[NoisyMeta, str | None]:
    """Re-read the file: the new values, or ``last_good`` and the warning when the edit is broken.

    ``base`` is what keys absent from the file fall back to (the run's ``--set`` values)."""
    if text is None:
        return last_good, f"{name}: the meta-parameter file cannot be read; keeping the last good values"
    try:
        return parse_meta(text, name, base), None
    except ConfigError as err:
        # FILE:LINE:COL: what is wrong, then the line with a caret under the spot
        head = f"{err.span.location()}: " if err.span else ""
        caret = f"\n{err.span.caret()}" if err.span and err.span.caret() else ""
        return last_good, f"{head}{err.message}; keeping the last good meta-parameters{caret}"


__all__ = ["LayerRule", "NoisyMeta", "parse_meta", "reload"]
