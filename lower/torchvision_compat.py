"""Import torchvision even where its compiled ops cannot load.

PyPI's torchvision wheels are built against CUDA torch. Next to a CPU-only torch of the same
version their C extension fails to load, and torchvision then dies at import time registering
fake kernels for ``torchvision::nms``/``qnms``, ops it never defined. genomorph uses only
torchvision's models and datasets, which do not need those ops, so when (and only when) the
extension is missing we declare the two op schemas first and import again.
"""

from __future__ import annotations

import sys
from types import ModuleType

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library = None  # kept alive: dropping the Library object would unregister the schemas


def import_torchvision() -> ModuleType:
    global _library
    try:
        import torchvision

        return torchvision
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS.values():
        _library.define(schema)
    import torchvision

    return torchvision
