"""Reading the importance artifact a worker writes for ``EvalRequest(collect=("importance",))``.

Torch-free (numpy only), so strategies can load it. The file is an ``.npz`` with:

- ``layers``: int64 node ids (of ``parse(genome)``) of the measured layers, in graph order;
- ``units``: how many units each of those layers has;
- ``a`` / ``b``: paper 000's A (sum over the data of |activation × gradient|) and B (fraction
  of inputs on which the unit fires) per unit, the layers' units one after the other;
- ``samples``: how many inputs the sums ran over.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

FORMAT = "genomorph-importance/2"
#: the first format (two arrays per layer, ``a_<id>`` / ``b_<id>``), still read
FORMAT_1 = "genomorph-importance/1"


def write_importance(stats: dict[int, tuple[np.ndarray, np.ndarray]], samples: int) -> bytes:
    """The artifact's bytes for ``{layer: (A, B)}``."""
    layers = sorted(stats)
    a = [np.asarray(stats[n][0], dtype=np.float64).reshape(-1) for n in layers]
    b = [np.asarray(stats[n][1], dtype=np.float64).reshape(-1) for n in layers]
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "layers": np.array(layers, dtype=np.int64),
        "samples": np.array(samples, dtype=np.int64),
        # every layer's units in one array each (an npz member costs more than its few values)
        "units": np.array([len(x) for x in a], dtype=np.int64),
        "a": np.concatenate(a) if a else np.zeros(0),
        "b": np.concatenate(b) if b else np.zeros(0),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def read_importance(path: str | Path) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], int]:
    """``({layer id: (A, B)}, samples)`` from an importance artifact (what ``prune_neurons.select`` takes)."""
    from genomorph.ir import DataError

    try:
        with np.load(Path(path), allow_pickle=False) as npz:
            version = str(npz["format"])
            if version == FORMAT_1:
                stats = {int(n): (npz[f"a_{n}"].copy(), npz[f"b_{n}"].copy()) for n in npz["layers"]}
                return stats, int(npz["samples"])
            if version != FORMAT:
                raise DataError(f"{path} is not a genomorph importance file")
            layers, units, a, b = npz["layers"], npz["units"], npz["a"], npz["b"]
            if len(units) != len(layers) or int(units.sum()) != len(a) or len(a) != len(b):
                raise ValueError("the layers' unit counts do not match the values")
            ends = np.cumsum(units)
            stats = {
                int(n): (a[end - k : end].copy(), b[end - k : end].copy())
                for n, k, end in zip(layers, units, ends, strict=True)
            }
            return stats, int(npz["samples"])
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"importance file {path} cannot be read: {err}") from None


__all__ = ["FORMAT", "read_importance", "write_importance"]
