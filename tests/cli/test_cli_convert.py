"""`genomorph convert`: published architectures to genomes (and back) with reference sizes.

Reference parameter counts, computed from the official code:
- DARTS_V2, ``NetworkCIFAR(36, 10, 20, auxiliary=True, genotype)`` of quark0/darts
  ``cnn/model.py``: 3,825,768 (3,349,342 without the auxiliary head);
- ``Network(16, 10, 8)`` of quark0/darts ``cnn/model_search.py``: 1,930,618 weights and
  2 x 14 x 8 = 224 architecture parameters;
- xautodl ``TinyNetwork(C=16, N=5, arch, num_classes=10)`` (AutoDL-Projects, NAS-Bench-201)
  for the best arch below: 1,288,506.
"""

from __future__ import annotations

import json

import pytest
from cli_helpers import invoke

DARTS_V2 = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
    "reduce_concat=[2, 3, 4, 5])"
)
NB201_BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _convert(*args: str, input: str | None = None) -> str:
    result = invoke("convert", *args, input=input)
    assert result.exit_code == 0, result.output
    return result.stdout


def _info(genome: str) -> dict:
    result = invoke("info", "-", "--json", input=genome)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_nb201_defaults_give_the_reference_network() -> None:
    genome = _convert("--from", "nb201", NB201_BEST)
    data = _info(genome)
    assert data["params"] == 1_288_506
    assert data["input_shape"] == [3, 32, 32] and data["output_shape"] == [10]
    # the output is already canonical
    assert invoke("fmt", "-", input=genome).stdout == genome


def test_nb201_text_from_stdin_and_sizes() -> None:
    from_stdin = _convert("--from", "nb201", "-", input=NB201_BEST + "\n")
    assert from_stdin == _convert("--from", "nb201", NB201_BEST)
    small = _info(_convert("--from", "nb201", NB201_BEST, "-C", "8", "-N", "1", "--classes", "3"))
    assert small["output_shape"] == [3] and small["params"] < 1_288_506


def test_nb201_round_trip_to_the_arch_string(tmp_path) -> None:
    path = tmp_path / "nb201.genome"
    path.write_text(_convert("--from", "nb201", NB201_BEST))
    assert _convert("--to", "nb201", str(path)) == NB201_BEST + "\n"


@pytest.mark.parametrize(("auxiliary", "params"), [(True, 3_825_768), (False, 3_349_342)])
def test_darts_v2_reference_sizes(auxiliary: bool, params: int) -> None:
    flags = ["--auxiliary"] if auxiliary else []
    data = _info(_convert("--from", "darts", DARTS_V2, *flags))
    assert data["params"] == params
    assert bool(data["aux_outputs"]) is auxiliary


def test_darts_search_supernet() -> None:
    data = _info(_convert("--from", "darts-search"))
    assert data["params"] == 1_930_618
    assert data["arch_params"] == 224
    assert data["histogram"]["mixed"] == 14 * 8


@pytest.mark.parametrize(
    "args",
    [
        ["--from", "darts"],  # no text
        ["--from", "darts-search", "x"],  # text where none is read
        ["--from", "nb201", NB201_BEST, "--auxiliary"],
        ["--from", "nb201", NB201_BEST, "--to", "nb201"],
        [NB201_BEST],  # neither --from nor --to
        ["--from", "nb201", NB201_BEST, "--channels", "0"],
    ],
)
def test_usage_errors(args: list[str]) -> None:
    result = invoke("convert", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("source", "text"),
    [("nb201", "|nor_conv_3x3~0|+|bogus_op~0|"), ("darts", "Genotype(normal=[('sep_conv_3x3', 0)")],
)
def test_bad_published_text_is_bad_input(source: str, text: str) -> None:
    result = invoke("convert", "--from", source, text)
    assert result.exit_code == 2
    assert "error:" in result.stderr and "Traceback" not in result.output


def test_darts_round_trip_to_the_genotype_text(tmp_path) -> None:
    path = tmp_path / "darts_v2.genome"
    path.write_text(_convert("--from", "darts", DARTS_V2, "--cells", "5", "--channels", "8"))
    assert _convert("--to", "darts", str(path)) == DARTS_V2 + "\n"
