"""Datasets: the embedded digits split, the generated toy sets, torchvision's on-disk layout."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from genomorph.grammar import parse
from genomorph.ir import DataError
from genomorph.search.core.config import DataConfig
from genomorph.search.runtime.data import check_fits, expected_files, load_dataset, regression_target


def test_digits_split_is_fixed_stratified_and_disjoint() -> None:
    a = load_dataset(DataConfig(name="digits", seed=0))
    b = load_dataset(DataConfig(name="digits", seed=123))  # the run seed must not move the test set
    assert a.info.input_shape == (1, 8, 8) and a.info.num_outputs == 10
    assert (a.info.train_size, a.info.val_size, a.info.test_size) == (len(a.train), len(a.val), len(a.test))
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.val.y, b.val.y)
    # stratified: every class holds the same share of each split (within rounding)
    for split in (a.val, a.test):
        counts = torch.bincount(split.y, minlength=10).float()
        share = counts / counts.sum()
        assert share.min() > 0.08 and share.max() < 0.12
    rows = {tuple(r.tolist()) for r in a.train.x.reshape(len(a.train), -1)}
    overlap = sum(tuple(r.tolist()) in rows for r in a.test.x.reshape(len(a.test), -1))
    assert overlap < 5  # the digits data holds a few duplicate images, nothing more


def test_digits_normalisation_gives_zero_mean_unit_std_on_train() -> None:
    d = load_dataset(DataConfig(name="digits"))
    x = d.normalise(d.train.x)
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3


def test_spirals_are_seeded_two_class_and_balanced() -> None:
    a = load_dataset(DataConfig(name="spirals", seed=1))
    again = load_dataset(DataConfig(name="spirals", seed=1))
    other = load_dataset(DataConfig(name="spirals", seed=2))
    assert a.info.input_shape == (2,) and a.info.num_outputs == 2 and a.info.task == "classification"
    assert torch.equal(a.train.x, again.train.x)
    assert not torch.equal(a.train.x, other.train.x)
    assert torch.bincount(a.train.y).tolist() == [len(a.train) // 2] * 2
    # the two arms are point reflections of each other: class means sit near the origin
    for label in (0, 1):
        assert float(a.train.x[a.train.y == label].mean(0).abs().max()) < 0.25


def test_regression2d_is_a_grid_with_smooth_targets() -> None:
    d = load_dataset(DataConfig(name="regression2d", seed=0))
    assert d.info.task == "regression" and d.info.num_outputs == 1 and d.info.input_shape == (2,)
    x = torch.cat([d.train.x, d.val.x, d.test.x])
    y = torch.cat([d.train.y, d.val.y, d.test.y])
    assert len(torch.unique(x[:, 0])) == 40 and len(torch.unique(x[:, 1])) == 40
    np.testing.assert_allclose(y[:, 0].numpy(), regression_target(x.numpy()), rtol=0, atol=1e-6)


def _write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's big-endian idx format: magic (0, 0, dtype 0x08, ndim), the dims, the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _fake_mnist(root: Path, folder: str = "MNIST", n_train: int = 40, n_test: int = 10) -> None:
    rng = np.random.default_rng(0)
    raw = root / folder / "raw"
    _write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28)))
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(n_train) % 10)
    _write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28)))
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10)


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_torchvision_layout_is_read_for_real(tmp_path: Path, name: str, folder: str) -> None:
    _fake_mnist(tmp_path, folder)
    d = load_dataset(DataConfig(name=name, data_dir=str(tmp_path), val_fraction=0.25))
    assert d.info.input_shape == (1, 28, 28) and d.info.num_outputs == 10
    assert (len(d.train), len(d.val), len(d.test)) == (30, 10, 10)
    assert d.train.x.dtype == torch.uint8
    # the exact bytes written come back (test split is torchvision's t10k file, in order)
    raw = (tmp_path / folder / "raw" / "t10k-images-idx3-ubyte").read_bytes()[16:]
    assert torch.equal(d.test.x.flatten(), torch.frombuffer(bytearray(raw), dtype=torch.uint8))
    assert d.test.y.tolist() == list(range(10))
    x = d.normalise(d.train.x)
    assert x.dtype == torch.float32 and abs(float(x.mean())) < 1e-3


def test_missing_data_dir_names_the_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path)))
    message = str(info.value)
    for path in expected_files("mnist", tmp_path):
        assert str(path) in message
    assert "--download" in message


def test_no_data_dir_at_all_is_a_data_error() -> None:
    with pytest.raises(DataError, match="needs a data directory"):
        load_dataset(DataConfig(name="cifar10"))


def test_malformed_files_are_a_data_error(tmp_path: Path) -> None:
    _fake_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(DataError, match="cannot be read"):
        load_dataset(DataConfig(name="mnist", data_dir=str(tmp_path)))


def test_cifar_expects_its_batches(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(name="cifar10", data_dir=str(tmp_path)))
    assert "cifar-10-batches-py/data_batch_1" in str(info.value)


def test_check_fits_names_both_shapes_and_hints() -> None:
    info = load_dataset(DataConfig(name="digits")).info
    check_fits(parse("input 1x8x8\nflatten linear(10)\n"), info)
    with pytest.raises(DataError) as wrong_input:
        check_fits(parse("input 3x32x32\nflatten linear(10)\n"), info)
    assert "3x32x32" in str(wrong_input.value) and "1x8x8" in str(wrong_input.value)
    assert "input 1x8x8" in str(wrong_input.value)  # the hint
    with pytest.raises(DataError) as wrong_output:
        check_fits(parse("input 1x8x8\nflatten linear(7)\n"), info)
    assert "10 classes" in str(wrong_output.value)


def test_digits_are_exactly_scikit_learns() -> None:
    from genomorph.search.runtime.data import digits_arrays
    from sklearn.datasets import load_digits

    pixels, labels = digits_arrays()
    bunch = load_digits()
    np.testing.assert_array_equal(pixels, bunch.data)
    np.testing.assert_array_equal(labels, bunch.target)
