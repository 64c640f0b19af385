"""Weight checkpoint files: written atomically, read without unpickling arbitrary objects.

A checkpoint holds the IR-level weights (``Weights``: node id → tensor name → array, and
``ArchWeights``), not a module's ``state_dict``, so a strategy can load it as numpy and a
rewritten child can start from it. Writes go to a temporary file in the same folder, are
flushed to disk, then renamed over the target: a reader (or a resumed run after ``kill -9``)
sees either the old file or the complete new one, never half of one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from genomorph.ir import ArchWeights, DataError, Weights
from genomorph.search.core.files import atomic_write

FORMAT = "genomorph-weights/1"


def save_checkpoint(
    path: str | Path, weights: Weights, arch: ArchWeights | None = None, *, genome: str | None = None
) -> None:
    """Write IR weights (numpy or tensors) to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "genome": genome or "",
        "weights": {
            int(nid): {name: torch.as_tensor(np.array(a)) for name, a in per.items()}
            for nid, per in weights.items()
        },
        "arch": {group: torch.as_tensor(np.array(a)) for group, a in (arch or {}).items()},
    }
    atomic_write(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path: str | Path) -> tuple[Weights, ArchWeights, str]:
    """Read a checkpoint: ``(weights, arch, genome text)`` with numpy arrays."""
    source = Path(path)
    if not source.is_file():
        raise DataError(f"checkpoint {source} does not exist", hint="was the run directory moved or cleaned?")
    try:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file: pickle, zip and torch errors alike
        raise DataError(f"checkpoint {source} cannot be read: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(
            f"{source} is not a genomorph weight checkpoint",
            hint=f"expected a file written by genomorph (format {FORMAT})",
        )
    weights = {
        int(nid): {name: t.detach().cpu().numpy().copy() for name, t in per.items()}
        for nid, per in payload["weights"].items()
    }
    arch = {group: t.detach().cpu().numpy().copy() for group, t in payload["arch"].items()}
    return weights, arch, str(payload.get("genome", ""))


__all__ = ["FORMAT", "atomic_write", "load_checkpoint", "save_checkpoint"]
