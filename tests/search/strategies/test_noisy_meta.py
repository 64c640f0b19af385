"""The live meta-parameter file of the noisy strategy: parsing, positions of errors, tolerant re-reading."""

from __future__ import annotations

from pathlib import Path

import pytest
from genomorph.ir import ConfigError
from genomorph.search.strategies._noisy_meta import NoisyMeta, parse_meta, reload

EXAMPLE = Path(__file__).parents[3] / "examples" / "noisy_meta.toml"


def test_example_file_parses_and_sets_values() -> None:
    meta = parse_meta(EXAMPLE.read_text(), str(EXAMPLE))
    assert isinstance(meta, NoisyMeta)
    assert meta.neurons_to_add >= 1 and meta.layer_rule in ("paper", "authors")


def test_keys_in_either_spelling_and_json() -> None:
    assert parse_meta("neurons-to-add = 5\n").neurons_to_add == 5
    meta = parse_meta('{"add_to_remove_ratio": 0.5, "lr": 0.01}', "m.json")
    assert meta.add_to_remove_ratio == 0.5 and meta.lr == 0.01
    assert meta.removals() == round(meta.neurons_to_add / 0.5)
    assert parse_meta("neurons_to_add = 10\nneurons_to_remove = 3\n").removals() == 3


def test_absent_keys_fall_back_to_the_base() -> None:
    base = NoisyMeta(neurons_to_add=40, lr=0.2)
    meta = parse_meta("lr = 0.1\n", base=base)
    assert meta.neurons_to_add == 40 and meta.lr == 0.1


@pytest.mark.parametrize(
    ("text", "name", "where", "words"),
    [
        ("neurons_to_add = 5\nlr = -1\n", "m.toml", "m.toml:2:6", "'lr'"),  # at the value
        ("neurons_to_add = 5\n  colour = 3\n", "m.toml", "m.toml:2:3", "unknown meta-parameter 'colour'"),
        ("lr = [1,", "m.toml", "m.toml:1:", "bad TOML"),
        ('{"lr": 0.1,}', "m.json", "m.json:1:12", "bad JSON"),
        ('{\n  "layer_rule": "mine"\n}', "m.json", "m.json:2:17", "'layer_rule'"),
        ("min_epochs = 50\nmax_epochs = 10\n", "m.toml", "m.toml:1:1", "above max_epochs"),
    ],
)
def test_errors_name_file_line_and_column(text: str, name: str, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_meta(text, name)
    message = str(info.value)
    assert message.startswith(where), message
    assert words in message


def test_reload_keeps_last_good_values_on_a_broken_edit() -> None:
    base = NoisyMeta()
    good = parse_meta("neurons_to_add = 7\n", "m.toml", base)
    kept, warning = reload("neurons_to_add = seven\n", "m.toml", good, base)
    assert kept == good
    assert warning is not None and "m.toml:1:" in warning and "keeping the last good" in warning
    missing, warning = reload(None, "m.toml", good, base)
    assert missing == good and warning is not None
    fresh, warning = reload("neurons_to_add = 9\n", "m.toml", good, base)
    assert fresh.neurons_to_add == 9 and warning is None
    assert good.changes(fresh) == {"neurons_to_add": (7, 9)}
