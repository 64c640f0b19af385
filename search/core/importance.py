"""Reading the importance artifact a worker writes for ``EvalRequest(collect=("importance",))``.

Torch-free (numpy only), so strategies can load it. The file is an ``.npz`` with:

- ``layers``: int64 node ids (of ``parse(genome)``) of the measured layers, in graph order;
- ``a_<id>`` / ``b_<id>``: paper 000's A (sum over the data of |activation × gradient|) and B
  (fraction of inputs on which the unit fires) per unit of layer ``<id>``;
- ``samples``: how many inputs the sums ran over.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

FORMAT = "genomorph-importance/1"


def write_importance(stats: dict[int, tuple[np.ndarray, np.ndarray]], samples: int) -> bytes:
    """The artifact's bytes for ``{layer: (A, B)}``."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "layers": np.array(sorted(stats), dtype=np.int64),
        "samples": np.array(samples, dtype=np.int64),
    }
    for nid, (a, b) in stats.items():
        arrays[f"a_{nid}"] = np.asarray(a, dtype=np.float64)
        arrays[f"b_{nid}"] = np.asarray(b, dtype=np.float64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def read_importance(path: str | Path) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], int]:
    """``({layer id: (A, B)}, samples)`` from an importance artifact (what ``prune_neurons.select`` takes)."""
    from genomorph.ir import DataError

    try:
        with np.load(Path(path), allow_pickle=False) as npz:
            if str(npz["format"]) != FORMAT:
                raise DataError(f"{path} is not a genomorph importance file")
            stats = {int(n): (npz[f"a_{n}"].copy(), npz[f"b_{n}"].copy()) for n in npz["layers"]}
            return stats, int(npz["samples"])
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"importance file {path} cannot be read: {err}") from None


__all__ = ["FORMAT", "read_importance", "write_importance"]
