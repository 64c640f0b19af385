"""Exporting a genome: a standalone Python module, a torch.export program, or an ONNX file.

Every export is checked before it is reported done: the artefact and the lowered module get the
same random inputs in eval mode and must agree (max abs difference ``<= 1e-5``, ONNX Runtime
``<= 1e-4``); :class:`ExportMismatch` says by how much they do not. The batch dimension of
``exported`` and ``onnx`` artefacts is dynamic, and the check runs at a batch size other
than the one the export was traced with.
"""

from __future__ import annotations

from ._artefacts import (
    FORMATS,
    ExportFormat,
    ExportMismatch,
    ExportResult,
    export_genome,
)
from ._discretise import discretise

__all__ = ["FORMATS", "ExportFormat", "ExportMismatch", "ExportResult", "discretise", "export_genome"]
