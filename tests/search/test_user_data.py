"""The user's own data: ImageFolder trees and CSV tables, through the loader and the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from genomorph.cli.main import main as cli
from genomorph.grammar import parse
from genomorph.ir import DataError
from genomorph.search.core.config import DataConfig
from genomorph.search.runtime.data import check_fits, fit_to_genome, load_dataset
from PIL import Image

SEED = 20261201


def _tree(root: Path, classes: int = 3, per_class: int = 10, size: tuple[int, int] = (12, 9)) -> Path:
    """Classes of solid-colour RGB images of one size: class k is bright in channel k."""
    rng = np.random.default_rng(SEED)
    for k in range(classes):
        folder = root / f"class_{k}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 40, (size[1], size[0], 3), dtype=np.uint8)
            pixels[..., k % 3] = 200 + k
            Image.fromarray(pixels, "RGB").save(folder / f"{i}.png")
    return root


def _table(path: Path, rows: list[list[object]], header: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_folder_images_take_the_genomes_channels_and_size(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    rgb = load_dataset(DataConfig(name="folder", data_dir=str(root), input_shape=(3, 8, 8)))
    gray = load_dataset(DataConfig(name="folder", data_dir=str(root), input_shape=(1, 5, 7)))
    assert rgb.info.input_shape == (3, 8, 8) and rgb.info.num_outputs == 3
    assert gray.info.input_shape == (1, 5, 7) and tuple(gray.train.x.shape[1:]) == (1, 5, 7)
    assert rgb.train.x.dtype == torch.uint8 and rgb.info.task == "classification"
    assert rgb.info.train_size + rgb.info.val_size + rgb.info.test_size == 30
    # class k is bright in channel k: the labels follow the sorted folder names
    for x, y in zip(rgb.train.x, rgb.train.y, strict=True):
        assert int(x.float().mean(dim=(1, 2)).argmax()) == int(y)
    # stratified: each class is in the test split
    assert set(rgb.test.y.tolist()) == {0, 1, 2}


def test_folder_split_is_seeded(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    config = DataConfig(name="folder", data_dir=str(root), input_shape=(1, 4, 4))
    a, b = load_dataset(config), load_dataset(config)
    c = load_dataset(config.model_copy(update={"seed": 1}))
    assert torch.equal(a.test.x, b.test.x)
    assert not torch.equal(a.test.x, c.test.x)


def test_fit_to_genome_sets_the_image_shape_only_for_folders(tmp_path: Path) -> None:
    graph = parse("input 3x10x10\nconv(4, 3) relu gap linear(3)\n")
    folder = fit_to_genome(DataConfig(name="folder", data_dir=str(tmp_path)), graph)
    assert folder.input_shape == (3, 10, 10)
    given = DataConfig(name="folder", data_dir=str(tmp_path), input_shape=(1, 4, 4))
    assert fit_to_genome(given, graph).input_shape == (1, 4, 4)
    assert fit_to_genome(DataConfig(name="digits"), graph).input_shape is None


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: root.mkdir(), "holds no class sub-folders"),
        (lambda root: (root / "a").mkdir(parents=True), "no images"),
        (lambda root: None, "is not a folder"),
    ],
    ids=["empty", "class-without-images", "missing"],
)
def test_folder_errors_say_what_is_wrong(tmp_path: Path, setup, message: str) -> None:
    root = tmp_path / "tree"
    setup(root)
    with pytest.raises(DataError, match=message):
        load_dataset(DataConfig(name="folder", data_dir=str(root), input_shape=(1, 4, 4)))


def test_csv_string_target_is_classes_and_features_are_standardised(tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    rows = [
        [float(rng.normal(5, 3)), float(rng.normal(-2, 0.5)), "yes" if i % 2 else "no"] for i in range(60)
    ]
    data = load_dataset(
        DataConfig(
            name="csv", data_file=str(_table(tmp_path / "t.csv", rows, ["a", "b", "label"])), target="label"
        )
    )
    assert data.info.task == "classification" and data.info.num_outputs == 2 and data.info.input_shape == (2,)
    x = data.normalise(data.train.x)
    assert torch.allclose(x.mean(0), torch.zeros(2), atol=1e-4)
    assert torch.allclose(x.std(0), torch.ones(2), atol=0.05)


def test_csv_real_valued_target_is_regression(tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    rows = [[i, float(rng.normal())] for i in range(40)]
    path = _table(tmp_path / "r.csv", rows, ["x", "y"])
    data = load_dataset(DataConfig(name="csv", data_file=str(path), target="y"))
    assert data.info.task == "regression" and data.info.num_outputs == 1
    assert data.train.y.dtype == torch.float32 and tuple(data.train.y.shape[1:]) == (1,)
    # few distinct integers are classes unless the user says otherwise
    ints = _table(tmp_path / "i.csv", [[i, i % 3] for i in range(30)], ["x", "y"])
    assert load_dataset(DataConfig(name="csv", data_file=str(ints), target="y")).info.task == "classification"
    forced = DataConfig(name="csv", data_file=str(ints), target="y", task="regression")
    assert load_dataset(forced).info.task == "regression"


def test_csv_errors_name_the_row_and_column(tmp_path: Path) -> None:
    path = _table(tmp_path / "bad.csv", [[1, 2, "a"], [3, "n/a", "b"], [5, 6, "a"]], ["f1", "f2", "t"])
    with pytest.raises(DataError, match=r"bad\.csv:3: column 'f2' holds 'n/a', which is not a number"):
        load_dataset(DataConfig(name="csv", data_file=str(path), target="t"))
    with pytest.raises(DataError, match="no column 'nope'"):
        load_dataset(DataConfig(name="csv", data_file=str(path), target="nope"))
    with pytest.raises(DataError, match="needs --data-file"):
        load_dataset(DataConfig(name="csv"))


def test_a_genome_that_does_not_fit_the_table_is_refused(tmp_path: Path) -> None:
    rows = [[i, i * 2, "a" if i % 2 else "b"] for i in range(20)]
    path = _table(tmp_path / "t.csv", rows, ["u", "v", "t"])
    data = load_dataset(DataConfig(name="csv", data_file=str(path), target="t"))
    with pytest.raises(DataError, match="input shape 5 does not match"):
        check_fits(parse("input 5\nlinear(2)\n"), data.info)


def test_cli_trains_on_a_folder_and_a_table_and_fails_cleanly(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree", classes=2, per_class=12)
    genome = tmp_path / "g.genome"
    genome.write_text("input 1x8x8\nconv(4, 3) relu gap linear(2)\n")
    runner = CliRunner()
    ok = runner.invoke(
        cli, ["train", str(genome), "--dataset", "folder", "--data-dir", str(root), "--epochs", "1",
              "--out", str(tmp_path / "run")],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "test_accuracy" in ok.output
    bad = runner.invoke(
        cli, ["train", str(genome), "--dataset", "csv", "--data-file", str(tmp_path / "missing.csv"),
              "--target", "t", "--epochs", "1"],
    )  # fmt: skip
    assert bad.exit_code == 2 and "does not exist" in bad.output and "Traceback" not in bad.output
