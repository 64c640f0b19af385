"""Datasets as whole tensors: small data needs no DataLoader, and large data still fits in memory.

Every dataset is three splits of raw samples (``uint8`` images or ``float32`` features) plus
the affine map that normalises a batch (``(x / scale - mean) / std``), applied batch by batch
on the training device so CIFAR stays 150 MB of bytes instead of 600 MB of floats.

- ``digits``: scikit-learn's bundled 8×8 digits (1797 images, no network), a fixed stratified
  split 1151 / 287 / 359 that does not depend on the run seed.
- ``spirals``: the two-class 2-D spirals of paper 000 (seeded).
- ``regression2d``: a smooth function sampled on a 2-D grid (paper 000), a random seeded split.
- ``mnist``, ``fashion-mnist``, ``cifar10``, ``cifar100``: torchvision's classes read from
  ``data_dir`` in torchvision's own layout (downloaded only when asked); the training set is
  split into train/val with a seeded stratified split, the test set is torchvision's.
- ``folder`` (an ImageFolder tree) and ``csv`` (a table of numeric features): the user's own
  data, see `user_data`.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from genomorph.ir import DataError, Graph
from genomorph.search.core.config import DataConfig
from genomorph.search.core.protocol import DatasetInfo


@dataclass(frozen=True)
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Dataset:
    info: DatasetInfo
    train: Split
    val: Split
    test: Split
    scale: float
    mean: torch.Tensor
    """Broadcastable over one sample: ``(C, 1, 1)`` for images, ``(F,)`` for vectors."""
    std: torch.Tensor

    @property
    def is_image(self) -> bool:
        return len(self.info.input_shape) == 3

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Raw batch → float32 network input, on whatever device ``x`` is on."""
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        return (x.float() / self.scale - mean) / std


def _stratified(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, held_out): ``fraction`` of every class held out, in a seeded shuffle."""
    held: list[np.ndarray] = []
    rest: list[np.ndarray] = []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        k = int(round(len(idx) * fraction))
        held.append(idx[:k])
        rest.append(idx[k:])
    return np.sort(np.concatenate(rest)), np.sort(np.concatenate(held))


def _info(name: str, task: str, shape: tuple[int, ...], outputs: int, *splits: Split) -> DatasetInfo:
    train, val, test = splits
    return DatasetInfo(
        name=name,
        task=task,  # type: ignore[arg-type]
        input_shape=shape,
        num_outputs=outputs,
        train_size=len(train),
        val_size=len(val),
        test_size=len(test),
    )


def _feature_stats(x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(x.mean(0).astype(np.float32)), torch.from_numpy(
        x.std(0).astype(np.float32) + 1e-6
    )


# --------------------------------------------------------------------------- embedded sets
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as ``(pixels N×64 in 0..16, labels)``.

    Read straight from the CSV file ``load_digits`` reads, because importing scikit-learn costs
    about a second in every process (driver and each worker); ``load_digits`` when the file moved.
    """
    spec = importlib.util.find_spec("sklearn")
    roots = list(spec.submodule_search_locations or []) if spec else []
    path = Path(roots[0]) / "datasets" / "data" / "digits.csv.gz" if roots else None
    if path is not None and path.is_file():
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data, bunch.target.astype(np.int64)


def _digits(config: DataConfig) -> Dataset:
    pixels, y = digits_arrays()
    x = pixels.reshape(-1, 1, 8, 8).astype(np.float32)
    # fixed split (seed 0, not the run seed) so every run and paper comparison sees the same test set
    rng = np.random.default_rng(0)
    rest, test = _stratified(y, 0.2, rng)
    train_in_rest, val_in_rest = _stratified(y[rest], 0.2, rng)
    train, val = rest[train_in_rest], rest[val_in_rest]
    splits = [Split(torch.from_numpy(x[i]), torch.from_numpy(y[i])) for i in (train, val, test)]
    pixels = x[train] / 16.0
    mean = torch.tensor(float(pixels.mean())).reshape(1, 1, 1)
    std = torch.tensor(float(pixels.std())).reshape(1, 1, 1)
    return Dataset(_info("digits", "classification", (1, 8, 8), 10, *splits), *splits, 16.0, mean, std)


def _split_random(n: int, rng: np.random.Generator, val: float, test: float) -> list[np.ndarray]:
    order = rng.permutation(n)
    n_test, n_val = int(round(n * test)), int(round(n * val))
    return [
        np.sort(order[n_test + n_val :]),
        np.sort(order[n_test : n_test + n_val]),
        np.sort(order[:n_test]),
    ]


def _spirals(config: DataConfig, per_class: int = 500, turns: float = 1.75, noise: float = 0.02) -> Dataset:
    """Two interleaved spirals, the second the first rotated by π (paper 000, figure 6 left)."""
    rng = np.random.default_rng(config.seed)
    # sqrt spreads points evenly along the arm instead of crowding the centre
    t = np.sqrt(rng.uniform(0.0, 1.0, per_class)) * turns * 2 * math.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (turns * 2 * math.pi)
    x = (np.concatenate([arm, -arm]) + rng.normal(0.0, noise, (2 * per_class, 2))).astype(np.float32)
    y = np.concatenate([np.zeros(per_class), np.ones(per_class)]).astype(np.int64)
    rest, held = _stratified(y, 0.4, rng)
    val_in_held, test_in_held = _stratified(y[held], 0.5, rng)
    idx = [rest, held[val_in_held], held[test_in_held]]
    splits = [Split(torch.from_numpy(x[i]), torch.from_numpy(y[i])) for i in idx]
    mean, std = _feature_stats(x[idx[0]])
    return Dataset(_info("spirals", "classification", (2,), 2, *splits), *splits, 1.0, mean, std)


def regression_target(x: np.ndarray) -> np.ndarray:
    """The smooth surface of ``regression2d``: two bumps and a ridge on [-1, 1]²."""
    a, b = x[:, 0], x[:, 1]
    return (np.sin(math.pi * a) * np.cos(0.5 * math.pi * b) + 0.5 * np.exp(-4 * (a * a + b * b))).astype(
        np.float32
    )


def _regression2d(config: DataConfig, side: int = 40) -> Dataset:
    """A smooth function on a ``side × side`` grid over [-1, 1]² (paper 000, figure 6 right)."""
    rng = np.random.default_rng(config.seed)
    axis = np.linspace(-1.0, 1.0, side, dtype=np.float32)
    x = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    y = regression_target(x).reshape(-1, 1)
    idx = _split_random(len(x), rng, val=0.15, test=0.15)
    splits = [Split(torch.from_numpy(x[i]), torch.from_numpy(y[i])) for i in idx]
    mean, std = _feature_stats(x[idx[0]])
    return Dataset(_info("regression2d", "regression", (2,), 1, *splits), *splits, 1.0, mean, std)


# --------------------------------------------------------------------------- torchvision sets
_TORCHVISION: dict[str, tuple[str, str, int, list[str]]] = {
    # name: (torchvision class, folder under data_dir, classes, files expected in that folder)
    "mnist": (
        "MNIST",
        "MNIST/raw",
        10,
        [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ],
    ),
    "fashion-mnist": (
        "FashionMNIST",
        "FashionMNIST/raw",
        10,
        [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ],
    ),
    "cifar10": (
        "CIFAR10",
        "cifar-10-batches-py",
        10,
        [
            "data_batch_1",
            "data_batch_2",
            "data_batch_3",
            "data_batch_4",
            "data_batch_5",
            "test_batch",
            "batches.meta",
        ],
    ),
    "cifar100": ("CIFAR100", "cifar-100-python", 100, ["train", "test", "meta"]),
}


def expected_files(name: str, data_dir: str | Path) -> list[Path]:
    """The files torchvision reads for ``name`` under ``data_dir``."""
    _, folder, _, files = _TORCHVISION[name]
    return [Path(data_dir) / folder / f for f in files]


def _as_images(data: object) -> torch.Tensor:
    """torchvision's ``.data`` (N×H×W tensor or N×H×W×C array) → uint8 N×C×H×W."""
    t = data if isinstance(data, torch.Tensor) else torch.from_numpy(np.asarray(data))
    t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    return t.to(torch.uint8).contiguous()


def _torchvision(config: DataConfig) -> Dataset:
    cls_name, folder, classes, _ = _TORCHVISION[config.name]
    where = "--data-dir DIR"
    if config.data_dir is None:
        raise DataError(
            f"dataset '{config.name}' needs a data directory",
            hint=f"pass {where} holding {folder}/ in torchvision's layout, or add --download to fetch it there",
        )
    root = Path(config.data_dir).expanduser()
    if not config.download:
        missing = [p for p in expected_files(config.name, root) if not p.is_file()]
        if missing:
            listing = ", ".join(str(p) for p in missing)
            raise DataError(
                f"dataset '{config.name}' not found in {root}: missing {listing}",
                hint=f"put torchvision's {folder}/ files under {root}, or add --download to fetch them",
            )
    from genomorph.lower.torchvision_compat import import_torchvision

    datasets = import_torchvision().datasets
    cls = getattr(datasets, cls_name)
    try:
        root.mkdir(parents=True, exist_ok=True)
        train_set = cls(str(root), train=True, download=config.download)
        test_set = cls(str(root), train=False, download=config.download)
    except Exception as err:  # torchvision reports corrupt files as RuntimeError, TypeError, ValueError, ...
        files = ", ".join(p.name for p in expected_files(config.name, root))
        raise DataError(
            f"dataset '{config.name}' in {root / folder} cannot be read: {err}",
            hint=f"expected torchvision's files {files} (re-download them with --download)",
        ) from None
    x_all, y_all = (
        _as_images(train_set.data),
        torch.as_tensor(np.asarray(train_set.targets), dtype=torch.int64),
    )
    x_test = _as_images(test_set.data)
    y_test = torch.as_tensor(np.asarray(test_set.targets), dtype=torch.int64)
    if len(y_all) < 2 or len(x_all) != len(y_all) or len(x_test) != len(y_test):
        raise DataError(
            f"dataset '{config.name}' in {root / folder} is malformed: images and labels disagree"
        )
    rest, held = _stratified(y_all.numpy(), config.val_fraction, np.random.default_rng(config.seed))
    train = Split(x_all[rest], y_all[rest])
    val = Split(x_all[held], y_all[held])
    test = Split(x_test, y_test)
    pixels = train.x.float() / 255.0
    mean = pixels.mean(dim=(0, 2, 3)).reshape(-1, 1, 1)
    std = pixels.std(dim=(0, 2, 3)).reshape(-1, 1, 1) + 1e-6
    shape = tuple(int(d) for d in train.x.shape[1:])
    info = _info(config.name, "classification", shape, classes, train, val, test)
    return Dataset(info, train, val, test, 255.0, mean, std)


def _user_data(config: DataConfig) -> Dataset:
    """An ImageFolder tree (``folder``) or a CSV table (``csv``): see `user_data`."""
    from genomorph.search.runtime import user_data

    load = user_data.load_folder if config.name == "folder" else user_data.load_csv
    task, shape, outputs, (x, y), classes = load(config)
    rng = np.random.default_rng(config.seed)
    idx = user_data.split_indices(classes, len(x), config.val_fraction, config.test_fraction, rng)
    if min(len(i) for i in idx) == 0:
        raise DataError(
            f"dataset '{config.name}' has {len(x)} samples: too few for a train, validation and test split",
            hint="add samples, or change --val-fraction / the test fraction",
        )
    splits = [Split(*user_data.to_tensors([x[i], y[i]])) for i in idx]
    if config.name == "folder":
        pixels = splits[0].x.float() / 255.0
        mean = pixels.mean(dim=(0, 2, 3)).reshape(-1, 1, 1)
        std = pixels.std(dim=(0, 2, 3)).reshape(-1, 1, 1) + 1e-6
        scale = 255.0
    else:
        mean, std = _feature_stats(x[idx[0]])
        scale = 1.0
    return Dataset(_info(config.name, task, shape, outputs, *splits), *splits, scale, mean, std)


def fit_to_genome(config: DataConfig, graph: Graph) -> DataConfig:
    """``folder`` images take the genome's input shape unless one was given; other data is as it is."""
    if config.name != "folder" or config.input_shape is not None:
        return config
    return config.model_copy(update={"input_shape": tuple(graph.stats().input_shape)})


_LOADERS = {
    "digits": _digits,
    "spirals": _spirals,
    "regression2d": _regression2d,
    "folder": _user_data,
    "csv": _user_data,
}


def load_dataset(config: DataConfig) -> Dataset:
    """Load (or generate) a dataset; DataError when it cannot be found or read."""
    if config.name in _LOADERS:
        return _LOADERS[config.name](config)
    return _torchvision(config)


@lru_cache(maxsize=2)
def cached_dataset(config: DataConfig) -> Dataset:
    """``load_dataset`` once per process: workers evaluate many candidates on the same data."""
    return load_dataset(config)


def check_fits(graph: Graph, info: DatasetInfo) -> None:
    """Raise DataError unless the genome's input and output shapes match the dataset."""
    stats = graph.stats()
    want_in = tuple(info.input_shape)
    have_in = tuple(stats.input_shape)
    example = "x".join(str(d) for d in want_in)
    if have_in != want_in:
        raise DataError(
            f"the genome's input shape {_shape(have_in)} does not match dataset '{info.name}' ({_shape(want_in)})",
            span=graph.node(graph.input_node()).span,
            hint=f"declare the input as `input {example}`",
        )
    outputs = [graph.output_node(), *graph.aux_outputs()]
    shapes = graph.shapes()
    for nid in outputs:
        if tuple(shapes[nid]) != (info.num_outputs,):
            what = "auxiliary output" if graph.kind(nid) == "aux" else "output"
            raise DataError(
                f"the genome's {what} {graph.node(nid).describe()} has shape {_shape(shapes[nid])}, but dataset "
                f"'{info.name}' needs {info.num_outputs} {'classes' if info.task == 'classification' else 'targets'}",
                span=graph.node(nid).span,
                hint=f"end the network with `gap linear({info.num_outputs})` (images) or `linear({info.num_outputs})`",
            )


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


__all__ = [
    "Dataset",
    "Split",
    "cached_dataset",
    "check_fits",
    "digits_arrays",
    "expected_files",
    "fit_to_genome",
    "load_dataset",
    "regression_target",
]
