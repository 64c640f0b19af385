"""Checkpoints: exact round trip, atomic replacement, refusal of foreign or broken files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from genomorph.ir import DataError
from genomorph.search.core.files import atomic_write
from genomorph.search.runtime.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_keeps_values_shapes_and_dtypes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    weights = {
        3: {"weight": rng.normal(size=(4, 2, 3, 3)).astype(np.float32), "num_batches_tracked": np.array(7)},
        5: {"bias": rng.normal(size=(4,)).astype(np.float32)},
    }
    arch = {"normal": rng.normal(size=(14, 8)).astype(np.float32)}
    save_checkpoint(tmp_path / "c.pt", weights, arch, genome="input 2\nlinear(1)\n")
    got, got_arch, genome = load_checkpoint(tmp_path / "c.pt")
    assert genome == "input 2\nlinear(1)\n"
    assert got.keys() == weights.keys()
    for nid, per in weights.items():
        for name, array in per.items():
            assert got[nid][name].shape == array.shape and got[nid][name].dtype == array.dtype
            np.testing.assert_array_equal(got[nid][name], array)
    np.testing.assert_array_equal(got_arch["normal"], arch["normal"])


def test_a_failed_write_leaves_the_old_file_and_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "c.pt"
    save_checkpoint(target, {1: {"w": np.ones(3, np.float32)}})

    def crash(handle) -> None:
        handle.write(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, crash)
    np.testing.assert_array_equal(load_checkpoint(target)[0][1]["w"], np.ones(3, np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


def test_truncated_and_foreign_files_are_data_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    save_checkpoint(good, {1: {"w": np.ones(100, np.float32)}})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match="cannot be read"):
        load_checkpoint(truncated)
    other = tmp_path / "state_dict.pt"
    torch.save({"n1.weight": torch.ones(2)}, other)
    with pytest.raises(DataError, match="not a genomorph weight checkpoint"):
        load_checkpoint(other)
    with pytest.raises(DataError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


class _Payload:
    def __reduce__(self):  # what a malicious pickle does: run code while loading
        return (print, ("pwned",))


def test_loading_never_unpickles_arbitrary_objects(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    with evil.open("wb") as handle:
        pickle.dump({"format": "genomorph-weights/1", "weights": _Payload(), "arch": {}}, handle)
    with pytest.raises(DataError, match="cannot be read"):
        load_checkpoint(evil)


def _from_disk(path: Path) -> tuple:
    """``load_checkpoint`` from the file itself, not from the process's copy of what it wrote."""
    from genomorph.search.runtime import checkpoint

    checkpoint._RECENT._entries.clear()
    return load_checkpoint(path)


def test_the_packed_file_round_trips_every_dtype_and_shape(tmp_path: Path) -> None:
    seed = 20261202
    rng = np.random.default_rng(seed)
    weights = {
        0: {"weight": rng.normal(size=(3, 5)).astype(np.float32), "scalar": np.array(2.5, np.float32)},
        4: {"running_mean": rng.normal(size=(6,)), "num_batches_tracked": np.array(11, np.int64)},
        9: {
            "empty": np.zeros((0, 4), np.float32),
            "strided": rng.normal(size=(4, 6)).astype(np.float32)[:, ::2],
        },
    }
    arch = {
        "normal": rng.normal(size=(14, 8)).astype(np.float32),
        "reduce": rng.normal(size=(14, 8)).astype(np.float32),
    }
    save_checkpoint(tmp_path / "c.pt", weights, arch, genome="g")
    got, got_arch, genome = _from_disk(tmp_path / "c.pt")
    assert genome == "g" and got.keys() == weights.keys() and got_arch.keys() == arch.keys()
    for nid, per in weights.items():
        assert got[nid].keys() == per.keys()
        for name, array in per.items():
            assert got[nid][name].shape == array.shape and got[nid][name].dtype == array.dtype, (
                seed,
                nid,
                name,
            )
            np.testing.assert_array_equal(got[nid][name], array)
    for group, array in arch.items():
        np.testing.assert_array_equal(got_arch[group], array)
    got[0]["weight"][:] = 0  # the caller's arrays: a change touches no other array
    np.testing.assert_array_equal(got[4]["running_mean"], weights[4]["running_mean"])


def test_files_of_the_first_format_still_load(tmp_path: Path) -> None:
    path = tmp_path / "old.pt"
    weights = {2: {"weight": np.arange(6, dtype=np.float32).reshape(2, 3)}}
    torch.save(
        {
            "format": "genomorph-weights/1",
            "genome": "old",
            "weights": {2: {"weight": torch.as_tensor(weights[2]["weight"])}},
            "arch": {"normal": torch.ones(2, 3)},
        },
        path,
    )
    got, arch, genome = _from_disk(path)
    assert genome == "old"
    np.testing.assert_array_equal(got[2]["weight"], weights[2]["weight"])
    np.testing.assert_array_equal(arch["normal"], np.ones((2, 3), np.float32))


def test_what_was_saved_does_not_follow_the_callers_arrays(tmp_path: Path) -> None:
    weights = {1: {"w": np.arange(4, dtype=np.float32)}}
    save_checkpoint(tmp_path / "c.pt", weights)
    weights[1]["w"][:] = -1  # the caller reuses its array after saving
    cached = load_checkpoint(tmp_path / "c.pt")[0][1]["w"]
    np.testing.assert_array_equal(cached, np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(_from_disk(tmp_path / "c.pt")[0][1]["w"], np.arange(4, dtype=np.float32))
