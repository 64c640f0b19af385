"""The search-space TOML file: the shipped example, validation errors with locations, binding."""

from __future__ import annotations

from pathlib import Path

import pytest
from genomorph.ir import ConfigError, DataError
from genomorph.search.strategies.space import SearchSpace, load_space, parse_space

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "space_ga.toml"


def test_example_is_paper_004_space() -> None:
    space = load_space(EXAMPLE)
    assert space.reductions.count == 2 and space.reductions.stride == 2
    assert set(space.layers.activations) == {"relu", "sigmoid", "tanh", "swish", "gelu"}
    assert max(space.layers.filters) <= 512 == space.layers.max_filters
    assert space.head.hidden == (64,)
    assert space.layers.batch_norm
    # shape and classes come from the dataset, so the file serves digits and MNIST alike
    assert not space.bound
    assert space.bind((1, 8, 8), 10).input.shape == (1, 8, 8)
    assert space.bind((1, 28, 28), 10).input.shape == (1, 28, 28)


def test_defaults_without_tables() -> None:
    space = parse_space('name = "tiny"')
    assert space.name == "tiny" and space.reductions.count == 2


@pytest.mark.parametrize(
    ("text", "field", "line", "words"),
    [
        ("[layers]\nmin = 2\nfilters = [16, 1024]\n", "layers.filters", 3, "max_filters"),
        ("[layers]\nkernels = [3, 4]\n", "layers.kernels", 2, "odd"),
        ('[layers]\nactivations = ["relu", "softmax"]\n', "layers.activations[1]", 2, "relu"),
        ("[layers]\nmin = 7\nmax = 4\n", "layers", 1, "must not exceed"),
        ("[reductions]\ncount = 2\nstride = 1\n", "reductions.stride", 3, "greater than or equal to 2"),
        ("[head]\nhiden = [64]\n", "head.hiden", 2, "Extra inputs"),
        ("[layers]\nfilters = []\n", "layers.filters", 2, "empty"),
    ],
)
def test_bad_fields_name_file_field_and_line(text: str, field: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_space(text, source_name="my_space.toml")
    err = info.value
    assert f"field '{field}'" in err.message
    assert words in err.message
    assert err.span is not None and err.span.file == "my_space.toml" and err.span.line == line
    assert str(err).startswith(f"my_space.toml:{line}:")


def test_unknown_key_gets_a_hint_listing_known_keys() -> None:
    with pytest.raises(ConfigError) as info:
        parse_space("[layers]\nfilter = [16]\n")
    assert info.value.hint is not None and "filters" in info.value.hint


def test_toml_syntax_error_has_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        parse_space('name = "x"\n[layers\nmin = 3\n', source_name="broken.toml")
    err = info.value
    assert "not valid TOML" in err.message
    assert err.span is not None and err.span.line == 2 and err.span.file == "broken.toml"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read search-space file"):
        load_space(tmp_path / "nope.toml")


def test_more_reductions_than_layers_is_rejected() -> None:
    with pytest.raises(ConfigError, match="reductions.count"):
        parse_space("[layers]\nmin = 1\nmax = 2\n[reductions]\ncount = 3\n")


def test_bind_refuses_a_dataset_that_contradicts_the_file() -> None:
    space = parse_space("[input]\nshape = [1, 28, 28]\nclasses = 10\n")
    assert space.bound
    assert space.bind((1, 28, 28), 10) == space
    with pytest.raises(DataError, match=r"input.shape = \[1, 28, 28\]"):
        space.bind((1, 8, 8), 10)
    with pytest.raises(DataError, match="classes"):
        space.bind((1, 28, 28), 100)
    with pytest.raises(DataError, match="vectors"):
        SearchSpace().bind((2,), 2)
