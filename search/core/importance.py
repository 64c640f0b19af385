"""Reading the importance artifact a worker writes for ``EvalRequest(collect=("importance",))``.

Torch-free (numpy only), so strategies can load it. The file (format 3) is one ``.npy`` float64
vector, every number exact (ids and counts are far below 2**53):

    [TAG, 3, samples, L, layer ids (L), units (L), A (all units), B (all units)]

- ``TAG`` marks a genomorph importance file, ``3`` is the format;
- ``samples``: how many inputs the sums ran over; ``L``: how many layers were measured;
- layer ids (of ``parse(genome)``) in graph order, and how many units each has;
- paper 000's A (sum over the data of |activation × gradient|) and B (fraction of inputs on
  which the unit fires) per unit, the layers' units one after the other.

One array, not an ``.npz`` of several: numpy parses a header per member, and reading six
members cost more than the strategy's whole shrink phase on a small network. The ``.npz``
files of formats 1 and 2 (earlier versions) are still read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: the first entry of a format-3 file ("gmpi" as a number)
TAG = float(int.from_bytes(b"gmpi", "big"))
FORMAT_VERSION = 3
#: the ``.npz`` formats of earlier versions, still read
FORMAT_2 = "genomorph-importance/2"
FORMAT_1 = "genomorph-importance/1"


def write_importance(stats: dict[int, tuple[np.ndarray, np.ndarray]], samples: int) -> bytes:
    """The artifact's bytes (an ``.npy`` file) for ``{layer: (A, B)}``."""
    import io

    layers = sorted(stats)
    a = [np.asarray(stats[n][0], dtype=np.float64).reshape(-1) for n in layers]
    b = [np.asarray(stats[n][1], dtype=np.float64).reshape(-1) for n in layers]
    head = [TAG, FORMAT_VERSION, samples, len(layers), *layers, *(len(x) for x in a)]
    vector = np.concatenate([np.asarray(head, dtype=np.float64), *a, *b])
    buffer = io.BytesIO()
    np.save(buffer, vector, allow_pickle=False)
    return buffer.getvalue()


def read_importance(path: str | Path) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], int]:
    """``({layer id: (A, B)}, samples)`` from an importance artifact (what ``prune_neurons.select`` takes)."""
    from genomorph.ir import DataError

    try:
        loaded = np.load(Path(path), allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return _from_vector(loaded)
        with loaded as npz:
            return _from_npz(npz)
    except (OSError, KeyError, ValueError, IndexError) as err:
        raise DataError(f"importance file {path} cannot be read: {err}") from None


def _from_vector(vector: np.ndarray) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], int]:
    if vector.ndim != 1 or len(vector) < 4 or vector[0] != TAG or vector[1] != FORMAT_VERSION:
        raise ValueError("not a genomorph importance file (format 3)")
    samples, count = int(vector[2]), int(vector[3])
    layers = vector[4 : 4 + count].astype(np.int64)
    units = vector[4 + count : 4 + 2 * count].astype(np.int64)
    values = vector[4 + 2 * count :]
    total = int(units.sum())
    if len(layers) != count or len(units) != count or len(values) != 2 * total:
        raise ValueError("the layers' unit counts do not match the values")
    return _per_layer(layers, units, values[:total], values[total:]), samples


def _from_npz(npz: np.lib.npyio.NpzFile) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], int]:
    """Formats 1 and 2: an ``.npz`` of named arrays."""
    version = str(npz["format"])
    if version == FORMAT_1:
        stats = {int(n): (npz[f"a_{n}"].copy(), npz[f"b_{n}"].copy()) for n in npz["layers"]}
        return stats, int(npz["samples"])
    if version != FORMAT_2:
        raise ValueError("not a genomorph importance file")
    layers, units, a, b = npz["layers"], npz["units"], npz["a"], npz["b"]
    if len(units) != len(layers) or int(units.sum()) != len(a) or len(a) != len(b):
        raise ValueError("the layers' unit counts do not match the values")
    return _per_layer(layers, units, a, b), int(npz["samples"])


def _per_layer(
    layers: np.ndarray, units: np.ndarray, a: np.ndarray, b: np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Every layer's own copies of its slices of A and B (units one layer after the other)."""
    ends = np.cumsum(units)
    return {
        int(n): (a[end - k : end].copy(), b[end - k : end].copy())
        for n, k, end in zip(layers, units, ends, strict=True)
    }


__all__ = ["FORMAT_VERSION", "TAG", "read_importance", "write_importance"]
