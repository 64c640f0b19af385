"""Pieces of strategy state the engine can store: the base model and a JSON-able numpy generator.

A strategy's state is a pydantic model (`StrategyState`) the driver stores as
``model_dump(mode="json")`` and restores with ``model_validate``. A field of type `Rng` holds a
live ``numpy.random.Generator`` and is stored as its bit generator's state, so a restored
strategy draws exactly the numbers the interrupted one would have drawn:

```python
class MyState(StrategyState):
    rng: Rng
    issued: int = 0


state = MyState(rng=seeded(setup.seed))
state.rng.integers(10)  # draw as from any Generator; the draw is part of the next stored state
```
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, WithJsonSchema


def _to_generator(value: Any) -> np.random.Generator:
    if isinstance(value, np.random.Generator):
        return value
    if not isinstance(value, dict) or "bit_generator" not in value:
        raise ValueError("expected a numpy Generator or a bit generator state (a dict with 'bit_generator')")
    name = value["bit_generator"]
    kind = getattr(np.random, str(name), None)
    if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
        raise ValueError(f"unknown numpy bit generator {name!r}")
    bit_generator = kind()
    bit_generator.state = value
    return np.random.Generator(bit_generator)


def _to_state(generator: np.random.Generator) -> dict[str, Any]:
    return generator.bit_generator.state  # ints and strings only: JSON as it is


#: a numpy Generator inside a pydantic model, stored as its bit generator's state
Rng = Annotated[
    np.random.Generator,
    PlainValidator(_to_generator),
    PlainSerializer(_to_state, return_type=dict),
    WithJsonSchema({"type": "object", "description": "numpy bit generator state"}),
]


def seeded(seed: int | list[int]) -> np.random.Generator:
    """The generator a strategy starts from: ``numpy.random.default_rng(seed)`` (PCG64)."""
    return np.random.default_rng(seed)


class StrategyState(BaseModel):
    """Base of every strategy's state model.

    Mutable on purpose: a strategy updates its state in ``propose``/``observe`` and the driver
    stores a JSON dump of it in the same transaction as what those calls produced. Unknown keys
    are refused, so a state written by another version of a strategy fails loudly on resume.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


__all__ = ["Rng", "StrategyState", "seeded"]
