"""The user's own data: an ImageFolder tree of images, or a CSV table of numeric features.

- ``folder``: torchvision's ``ImageFolder`` layout, one sub-folder of images per class (the
  sub-folder names, sorted, are the classes). Every image is converted to grayscale or RGB by
  the genome's channel count and resized to its input size (bilinear), so one tree serves
  networks of any input. A seeded stratified split holds out ``test_fraction`` for testing and
  ``val_fraction`` of the rest for validation.
- ``csv``: a table with a header row; ``target`` names the column to predict and every other
  column must be numeric (standardised by the training split's mean and std, as every dataset
  is). The target is a class when ``task`` says so or, with ``task = auto``, when a value is not
  a number or all values are integers with at most ``MAX_AUTO_CLASSES`` distinct values;
  otherwise it is a regression target. A seeded split (stratified for classes).

Both raise `DataError` with the file (and row/column) at fault and what to do.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch
from genomorph.ir import DataError
from genomorph.search.core.config import DataConfig

#: a CSV target of integers with at most this many distinct values counts as classes (task auto)
MAX_AUTO_CLASSES = 20
#: image files ImageFolder accepts (torchvision's list)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def split_indices(
    y: np.ndarray | None, n: int, val: float, test: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Indices of (train, val, test): per class when ``y`` holds classes, else over all rows."""
    groups = [np.flatnonzero(y == label) for label in np.unique(y)] if y is not None else [np.arange(n)]
    parts: list[list[np.ndarray]] = [[], [], []]
    for idx in groups:
        idx = rng.permutation(idx)
        n_test = int(round(len(idx) * test))
        n_val = int(round((len(idx) - n_test) * val))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    return [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]


# --------------------------------------------------------------------------- folder
def image_tree(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """Classes (sorted sub-folder names) and (image file, class index) pairs of an ImageFolder tree."""
    if not root.is_dir():
        raise DataError(
            f"--data-dir {root} is not a folder",
            hint="give a folder holding one sub-folder of images per class (torchvision's ImageFolder layout)",
        )
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(
            f"image folder {root} holds no class sub-folders",
            hint="put the images of each class into its own sub-folder, e.g. DIR/cat/1.png, DIR/dog/2.png",
        )
    samples = []
    for label, name in enumerate(classes):
        files = sorted(
            p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        samples.extend((f, label) for f in files)
    empty = [name for label, name in enumerate(classes) if not any(s[1] == label for s in samples)]
    if not samples or empty:
        what = f"class folders {', '.join(empty)} hold" if samples else f"{root} holds"
        raise DataError(
            f"{what} no images ({', '.join(IMAGE_SUFFIXES)})",
            hint="every class sub-folder needs at least one image; remove empty ones",
        )
    return classes, samples


def _read_image(path: Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(f"image {path} cannot be read: {err}", hint="remove or replace the file") from None
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def load_folder(config: DataConfig) -> tuple[str, tuple[int, ...], int, list, np.ndarray]:
    """(task, shape, classes, [x, y] arrays, ...) of an ImageFolder tree; see the module docstring."""
    if config.data_dir is None:
        raise DataError("dataset 'folder' needs --data-dir DIR", hint="give the root of an ImageFolder tree")
    if config.input_shape is None or len(config.input_shape) != 3 or config.input_shape[0] not in (1, 3):
        raise DataError(
            f"dataset 'folder' needs an image input shape C x H x W with 1 or 3 channels, got {config.input_shape}",
            hint="declare the genome's input as e.g. `input 1x28x28` (grayscale) or `input 3x32x32` (RGB)",
        )
    root = Path(config.data_dir).expanduser()
    classes, samples = image_tree(root)
    if len(classes) < 2:
        raise DataError(
            f"image folder {root} has a single class ({classes[0]})", hint="classification needs two or more"
        )
    channels, height, width = config.input_shape
    x = np.stack([_read_image(path, channels, (height, width)) for path, _ in samples])
    y = np.array([label for _, label in samples], dtype=np.int64)
    return "classification", tuple(config.input_shape), len(classes), [x, y], y


# --------------------------------------------------------------------------- csv
def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_table(path: Path, target: str) -> tuple[list[str], np.ndarray, list[str]]:
    """Feature names, the float32 feature matrix and the raw target strings of a CSV file."""
    if not path.is_file():
        raise DataError(f"--data-file {path} does not exist", hint="give a CSV file with a header row")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DataError(f"{path} is empty", hint="the first row must name the columns")
    header = [cell.strip() for cell in rows[0]]
    if target not in header:
        raise DataError(
            f"{path}:1: no column '{target}' to predict",
            hint=f"--target must be one of: {', '.join(header)}",
        )
    t = header.index(target)
    features = [name for i, name in enumerate(header) if i != t]
    if not features:
        raise DataError(f"{path}: the table has no feature columns besides '{target}'")
    x, y = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line (e.g. at the end of the file)
        if len(row) != len(header):
            raise DataError(
                f"{path}:{line}: {len(row)} values but the header names {len(header)} columns",
                hint="every row needs one value per column",
            )
        values = []
        for i, cell in enumerate(row):
            if i == t:
                continue
            value = _number(cell.strip())
            if value is None:
                raise DataError(
                    f"{path}:{line}: column '{header[i]}' holds '{cell}', which is not a number",
                    hint="features must be numeric: encode categories as numbers, fill or drop missing values",
                )
            values.append(value)
        x.append(values)
        y.append(row[t].strip())
    if len(x) < 3:
        raise DataError(f"{path}: {len(x)} data rows are too few to split into train, validation and test")
    return features, np.asarray(x, dtype=np.float32), y


def target_task(values: list[str], task: str) -> str:
    if task != "auto":
        return task
    numbers = [_number(v) for v in values]
    if any(v is None for v in numbers):
        return "classification"
    integral = all(float(v).is_integer() for v in numbers)  # type: ignore[arg-type]
    return "classification" if integral and len(set(numbers)) <= MAX_AUTO_CLASSES else "regression"


def load_csv(config: DataConfig) -> tuple[str, tuple[int, ...], int, list, np.ndarray | None]:
    if config.data_file is None or config.target is None:
        raise DataError(
            "dataset 'csv' needs --data-file FILE and --target COLUMN",
            hint="e.g. --data-file wine.csv --target cultivar",
        )
    path = Path(config.data_file).expanduser()
    features, x, raw = read_table(path, config.target)
    task = target_task(raw, config.task)
    if task == "classification":
        classes = sorted(set(raw), key=lambda v: (_number(v) is None, _number(v) or 0.0, v))
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[v] for v in raw], dtype=np.int64)
        if len(classes) < 2:
            raise DataError(
                f"{path}: target '{config.target}' has a single value",
                hint="classification needs two or more",
            )
        return task, (len(features),), len(classes), [x, y], y
    numbers = [_number(v) for v in raw]
    bad = [i for i, v in enumerate(numbers) if v is None]
    if bad:
        raise DataError(
            f"{path}:{bad[0] + 2}: regression target '{config.target}' holds '{raw[bad[0]]}', which is not a number",
            hint="use --task classification for a categorical target",
        )
    y_reg = np.asarray(numbers, dtype=np.float32).reshape(-1, 1)
    return task, (len(features),), 1, [x, y_reg], None


def to_tensors(arrays: list[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


__all__ = [
    "MAX_AUTO_CLASSES",
    "image_tree",
    "load_csv",
    "load_folder",
    "read_table",
    "split_indices",
    "target_task",
]
