"""Writing and checking each export format (see the package docstring)."""

from __future__ import annotations

import importlib.util
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from genomorph.ir.errors import ConfigError
from genomorph.ir.graph import Graph
from genomorph.ir.weights import ArchWeights, Weights
from genomorph.lower.lower import lower
from torch import Tensor, nn

from ._python import python_source

log = logging.getLogger(__name__)

ExportFormat = Literal["python", "exported", "onnx"]
FORMATS: tuple[ExportFormat, ...] = ("python", "exported", "onnx")
#: the largest max-abs difference each format may show against the lowered module
TOLERANCE: dict[ExportFormat, float] = {"python": 1e-5, "exported": 1e-5, "onnx": 1e-4}
TRACE_BATCH, CHECK_BATCH = 2, 3


class ExportMismatch(Exception):
    """The exported artefact does not compute what the lowered genome computes.

    Not a ``GenomorphError``: the input was fine, the export is wrong (the CLI exits 1).
    """


@dataclass(frozen=True)
class ExportResult:
    format: ExportFormat
    #: files written: the artefact first, then the weights beside it (python)
    files: tuple[Path, ...]
    max_abs_diff: float
    tolerance: float


def _inputs(graph: Graph, batch: int, seed: int) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((batch, *graph.stats().input_shape), generator=generator)


def _outputs(value: object) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _outputs(v)]
    raise TypeError(f"unexpected output {type(value).__name__}")


def _max_diff(want: list[Tensor], got: list[Tensor]) -> float:
    if len(want) != len(got):
        return float("inf")
    diffs = [
        float((w - torch.as_tensor(g)).abs().max()) if w.shape == torch.as_tensor(g).shape else float("inf")
        for w, g in zip(want, got, strict=True)
    ]
    return max(diffs)


def _class_name(path: Path) -> str:
    words = [w for w in "".join(c if c.isalnum() else " " for c in path.stem).split() if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    return name if name[0].isalpha() else f"Model{name}"


def _write_python(
    graph: Graph, module: nn.Module, out: Path, source: str, with_weights: bool
) -> tuple[tuple[Path, ...], nn.Module]:
    weights_path = out.with_suffix(".pt")
    text, keys = python_source(graph, _class_name(out), source=source, weights_file=weights_path.name)
    out.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"_genomorph_export_{out.stem}", out)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    exported: nn.Module = getattr(loaded, _class_name(out))()
    state = {keys[k]: v.detach().clone() for k, v in module.state_dict().items()}
    exported.load_state_dict(state)
    files: tuple[Path, ...] = (out,)
    if with_weights:
        torch.save(exported.state_dict(), weights_path)
        files = (out, weights_path)
    return files, exported


def _batch_dim() -> dict[str, dict[int, object]]:
    return {"x": {0: torch.export.Dim("batch", min=1, max=1 << 16)}}


def _write_exported(module: nn.Module, x: Tensor, out: Path) -> nn.Module:
    try:
        program = torch.export.export(module, (x,), dynamic_shapes=_batch_dim())
    except Exception as err:
        raise ExportMismatch(f"torch.export failed: {type(err).__name__}: {err}") from None
    torch.export.save(program, out)
    return torch.export.load(out).module()


def _onnx_runner(module: nn.Module, x: Tensor, out: Path) -> object:
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "ONNX export needs onnx, onnxscript and onnxruntime",
            hint="pip install 'genomorph[onnx]'",
        ) from None
    try:
        with warnings.catch_warnings():  # torch's own deprecation notices, not the user's concern
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                module,
                (x,),
                dynamo=True,
                dynamic_shapes=_batch_dim(),
                input_names=["x"],
                external_data=False,
                verbose=False,
            )
    except Exception as err:
        raise ExportMismatch(f"torch.onnx.export failed: {type(err).__name__}: {err}") from None
    assert program is not None
    program.save(str(out))
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return session


def export_genome(
    graph: Graph,
    fmt: ExportFormat,
    out: Path,
    weights: Weights | None = None,
    arch: ArchWeights | None = None,
    *,
    source: str = "a genome",
    seed: int = 0,
) -> ExportResult:
    """Write ``graph`` (with ``weights`` / ``arch`` when given) as ``fmt`` to ``out``, checked.

    Without weights the lowered module's random initialisation is exported (and the Python
    format writes no ``.pt``). Raises :class:`ExportMismatch` when the check fails.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}'", hint=f"use one of {', '.join(FORMATS)}")
    if fmt == "python" and out.suffix != ".py":
        raise ConfigError(f"the python export is a .py file, not '{out.name}'", hint="write -o NAME.py")
    module = lower(graph, weights, arch, inplace=False).eval()
    if graph.aux_outputs() and fmt != "python":
        log.info("the auxiliary heads are exported too: the artefact returns (main, *aux)")
    out.parent.mkdir(parents=True, exist_ok=True)
    x = _inputs(graph, CHECK_BATCH, seed)
    with torch.no_grad():
        want = _outputs(module(x))
    files: tuple[Path, ...] = (out,)
    if fmt == "python":
        files, exported = _write_python(graph, module, out, source, weights is not None)
        with torch.no_grad():
            got = _outputs(exported.eval()(x))
    elif fmt == "exported":
        runnable = _write_exported(module, _inputs(graph, TRACE_BATCH, seed + 1), out)
        with torch.no_grad():
            got = _outputs(runnable(x))
    else:
        session = _onnx_runner(module, _inputs(graph, TRACE_BATCH, seed + 1), out)
        name = session.get_inputs()[0].name  # type: ignore[attr-defined]
        got = [torch.from_numpy(a) for a in session.run(None, {name: x.numpy()})]  # type: ignore[attr-defined]
    diff = _max_diff(want, got)
    result = ExportResult(fmt, files, diff, TOLERANCE[fmt])
    if not diff <= TOLERANCE[fmt]:
        raise ExportMismatch(
            f"the {fmt} export of {source} differs from the lowered genome by {diff:.3g} "
            f"(max abs difference, tolerance {TOLERANCE[fmt]:g}); {out} was written but is wrong"
        )
    sys.modules.pop(f"_genomorph_export_{out.stem}", None)
    return result
