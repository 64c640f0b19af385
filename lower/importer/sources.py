"""Where an imported model comes from: ``torchvision:NAME(kw=...)`` or ``file.py:factory(kw=...)``.

Keyword arguments are Python literals, read with ``ast.literal_eval`` (never executed).
torchvision models are built without pretrained weights: an import never downloads anything.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from typing import Any

from genomorph.ir.errors import ConfigError
from pydantic import BaseModel, ConfigDict
from torch import nn

TORCHVISION = "torchvision"


class ModelSource(BaseModel):
    """A parsed SOURCE argument."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: ``torchvision`` or the path of a Python file
    origin: str
    #: the torchvision model name or the factory's name
    name: str
    kwargs: dict[str, Any] = {}

    @property
    def is_torchvision(self) -> bool:
        return self.origin == TORCHVISION


def parse_source(spec: str) -> ModelSource:
    """``torchvision:resnet50``, ``torchvision:resnet18(num_classes=10)``, ``net.py:build(width=2)``."""
    origin, sep, call = spec.rpartition(":")
    if not sep or not origin or not call:
        raise ConfigError(
            f"cannot read the model source '{spec}'",
            hint="write torchvision:NAME (e.g. torchvision:resnet18) or FILE.py:FACTORY",
        )
    try:
        expr = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        raise ConfigError(f"'{call}' is not a name or a call such as resnet18(num_classes=10)") from None
    if isinstance(expr, ast.Name):
        return ModelSource(origin=origin, name=expr.id)
    if not isinstance(expr, ast.Call) or not isinstance(expr.func, ast.Name) or expr.args:
        raise ConfigError(
            f"'{call}' is not a name or a call with keyword arguments",
            hint="pass arguments by keyword: resnet18(num_classes=10)",
        )
    kwargs = {}
    for keyword in expr.keywords:
        if keyword.arg is None:
            raise ConfigError("**kwargs cannot be used in a model source")
        try:
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            raise ConfigError(
                f"the value of '{keyword.arg}' in '{call}' is not a Python literal",
                hint="use numbers, strings, booleans, None, lists or tuples",
            ) from None
    return ModelSource(origin=origin, name=expr.func.id, kwargs=kwargs)


def build_model(source: ModelSource) -> nn.Module:
    """Construct the model (random initialisation; no pretrained weights are fetched)."""
    if source.is_torchvision:
        return _torchvision_model(source)
    return _factory_model(source)


def _torchvision_model(source: ModelSource) -> nn.Module:
    from genomorph.lower.torchvision_compat import import_torchvision

    models = import_torchvision().models
    if source.kwargs.get("weights") is not None:
        raise ConfigError(
            "genomorph does not download pretrained weights",
            hint="build the model with its weights in your own FILE.py:FACTORY and import that",
        )
    names = models.list_models()
    if source.name not in names:
        import difflib

        close = difflib.get_close_matches(source.name, names, n=3)
        raise ConfigError(
            f"torchvision has no model '{source.name}'",
            hint=f"did you mean {', '.join(close)}?" if close else "see torchvision.models.list_models()",
        )
    try:
        return models.get_model(source.name, **{"weights": None, **source.kwargs})
    except TypeError as err:
        raise ConfigError(f"torchvision:{source.name} does not take these arguments: {err}") from None


def _factory_model(source: ModelSource) -> nn.Module:
    path = Path(source.origin)
    if not path.is_file():
        raise ConfigError(f"no such Python file: {path}", hint="write FILE.py:FACTORY")
    module_name = f"_genomorph_import_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise ConfigError(f"importing {path} failed: {type(err).__name__}: {err}") from None
    factory = getattr(module, source.name, None)
    if not callable(factory):
        raise ConfigError(f"{path} has no callable '{source.name}'")
    try:
        model = factory(**source.kwargs)
    except Exception as err:
        raise ConfigError(f"{path}:{source.name}(...) failed: {type(err).__name__}: {err}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{path}:{source.name} returned a {type(model).__name__}, not an nn.Module")
    return model
