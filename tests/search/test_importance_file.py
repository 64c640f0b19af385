"""The importance artifact: exact round trip, the earlier formats still read, damage reported."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from genomorph.ir import DataError
from genomorph.search.core.importance import read_importance, write_importance

SEED = 20261202


def test_round_trip_keeps_every_layer_in_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    stats = {
        7: (rng.random(5), rng.random(5)),
        2: (rng.random(1), rng.random(1)),
        40: (rng.random(12), rng.random(12)),
    }
    path = tmp_path / "importance.npy"
    path.write_bytes(write_importance(stats, samples=600))
    got, samples = read_importance(path)
    assert samples == 600 and sorted(got) == [2, 7, 40]
    for nid, (a, b) in stats.items():
        np.testing.assert_array_equal(got[nid][0], a, err_msg=f"seed {SEED}")
        np.testing.assert_array_equal(got[nid][1], b, err_msg=f"seed {SEED}")


def test_no_layers_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "importance.npy"
    path.write_bytes(write_importance({}, samples=3))
    assert read_importance(path) == ({}, 3)


def test_files_of_the_first_format_still_load(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array("genomorph-importance/1"), layers=np.array([3]), samples=np.array(9),
             a_3=np.array([0.5, 1.5]), b_3=np.array([1.0, 0.0]))  # fmt: skip
    path = tmp_path / "old.npz"
    path.write_bytes(buffer.getvalue())
    got, samples = read_importance(path)
    assert samples == 9
    np.testing.assert_array_equal(got[3][0], [0.5, 1.5])
    np.testing.assert_array_equal(got[3][1], [1.0, 0.0])


def test_files_of_the_second_format_still_load(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array("genomorph-importance/2"), layers=np.array([3, 8]), samples=np.array(9),
             units=np.array([2, 1]), a=np.array([0.5, 1.5, 2.5]), b=np.array([1.0, 0.0, 0.25]))  # fmt: skip
    path = tmp_path / "old2.npz"
    path.write_bytes(buffer.getvalue())
    got, samples = read_importance(path)
    assert samples == 9 and sorted(got) == [3, 8]
    np.testing.assert_array_equal(got[3][0], [0.5, 1.5])
    np.testing.assert_array_equal(got[8][1], [0.25])


def test_a_vector_that_is_not_an_importance_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "other.npy"
    np.save(path, np.arange(10.0))
    with pytest.raises(DataError, match="not a genomorph importance file"):
        read_importance(path)
    good = write_importance({3: (np.ones(4), np.zeros(4))}, samples=5)
    (tmp_path / "cut.npy").write_bytes(good[: len(good) - 8])  # the last value missing
    with pytest.raises(DataError, match="cannot be read"):
        read_importance(tmp_path / "cut.npy")


def test_counts_that_do_not_match_the_values_are_a_data_error(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array("genomorph-importance/2"), layers=np.array([3, 4]), samples=np.array(9),
             units=np.array([2, 2]), a=np.zeros(3), b=np.zeros(3))  # fmt: skip
    path = tmp_path / "bad.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="cannot be read"):
        read_importance(path)
