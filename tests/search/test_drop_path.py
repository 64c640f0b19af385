"""Drop-path of DARTS evaluation networks (paper 003 §4.8.2): the converter's stochastic_depth ops,
the linear rate schedule of the standard recipe, ``--drop-path``, and exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result
from genomorph.cli.main import main
from genomorph.grammar.darts import genotype_to_graph, graph_to_genotype
from genomorph.ir.printer import print_genome
from genomorph.lower import lower
from genomorph.lower.modules import StochasticDepth
from genomorph.search.core.config import DataConfig, Job, TrainConfig, WorkerSpec
from genomorph.search.core.protocol import Budget, EvalRequest
from genomorph.search.runtime import loop
from genomorph.search.runtime.data import cached_dataset
from genomorph.search.runtime.evaluate import evaluate_job
from genomorph.search.runtime.trainer import train

GENOTYPE = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('max_pool_3x3', 0), ('dil_conv_3x3', 1), "
    "('skip_connect', 0), ('sep_conv_3x3', 2), ('avg_pool_3x3', 1), ('sep_conv_5x5', 3)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('skip_connect', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('dil_conv_5x5', 0), ('skip_connect', 2), ('skip_connect', 2), "
    "('avg_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _genome(drop_path: float) -> str:
    graph = genotype_to_graph(GENOTYPE, 4, 3, 10, input_shape=(1, 8, 8), drop_path=drop_path)
    return print_genome(graph)


def test_the_converter_puts_drop_path_on_every_edge_but_the_identity() -> None:
    plain = genotype_to_graph(GENOTYPE, 4, 3, 10, input_shape=(1, 8, 8))
    dropped = genotype_to_graph(GENOTYPE, 4, 3, 10, input_shape=(1, 8, 8), drop_path=0.2)
    found = [dropped.op(n) for n in dropped.order() if dropped.kind(n) == "stochastic_depth"]
    # 3 cells: cell 0 normal, 8 edges of which 2 stride-1 skips (identities, never dropped); cells
    # 1 and 2 reduce: the skip from state 1 is a FactorizedReduce (dropped, as in DARTS), the 3
    # from state 2 are identities
    assert len(found) == 6 + 2 * 5
    assert all(op.p == 0.2 and op.schedule == "linear" and op.mode == "row" for op in found)
    assert not any(plain.kind(n) == "stochastic_depth" for n in plain.order())
    assert dropped.stats().params == plain.stats().params
    # the genome still reads back as the genotype, and the text round-trips
    assert graph_to_genotype(dropped) == GENOTYPE
    assert "stochastic_depth(0.2, schedule=linear)" in print_genome(dropped)


def test_a_linear_stochastic_depth_drops_samples_at_its_epochs_rate() -> None:
    module = StochasticDepth(0.4, "row", "linear")
    module.train()
    x = torch.ones(20_000, 1)
    torch.manual_seed(0)
    module.progress = 0.0
    assert torch.equal(module(x), x)  # epoch 0: rate 0, nothing drawn
    module.progress = 0.5  # rate 0.2: about a fifth of the rows zeroed, the rest scaled by 1/0.8
    out = module(x)
    dropped = float((out == 0).float().mean())
    assert 0.18 < dropped < 0.22
    assert torch.allclose(out[out != 0], torch.tensor(1 / 0.8))
    module.eval()
    assert torch.equal(module(x), x)


def _digits_subset() -> tuple:
    data = cached_dataset(DataConfig(name="digits"))
    return data, data.train.__class__(data.train.x[:256], data.train.y[:256])


def test_the_standard_training_raises_the_rate_linearly_from_zero() -> None:
    from genomorph.grammar import parse

    data, subset = _digits_subset()
    torch.manual_seed(0)
    module = lower(parse(_genome(0.3)))
    report = train(module, data, TrainConfig(epochs=3), seed=0, train_split=subset)
    assert [round(r["drop_path"], 6) for r in report.history] == [0.0, 0.1, 0.2]  # P * e / E, e = 0..2
    rates = {m.rate for m in module.modules() if isinstance(m, StochasticDepth)}
    assert rates == {0.3}  # after training: the full rate (identity in eval mode anyway)


def test_drop_path_zero_trains_exactly_as_the_network_without_it() -> None:
    from genomorph.grammar import parse

    data, subset = _digits_subset()
    runs = []
    for text, config in (
        (_genome(0.2), TrainConfig(epochs=2, drop_path=0.0)),
        (_genome(0.0), TrainConfig(epochs=2)),
    ):
        torch.manual_seed(1)
        module = lower(parse(text))
        runs.append(
            [r["train_loss"] for r in train(module, data, config, seed=1, train_split=subset).history]
        )
    assert runs[0] == runs[1]
    torch.manual_seed(1)
    module = lower(parse(_genome(0.2)))
    dropped = [r["train_loss"] for r in train(module, data, TrainConfig(epochs=2, drop_path=0.5), seed=1,
                                              train_split=subset).history]  # fmt: skip
    assert dropped[0] == runs[0][0]  # epoch 0 drops nothing
    assert dropped[1] != runs[0][1]  # epoch 1 drops at 0.25: another loss


class _Stop(BaseException):
    """Stands in for a kill: nothing after it runs."""


def test_a_killed_training_with_drop_path_resumes_to_the_same_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loop, "CHECKPOINT_INTERVAL_S", 0.0)  # a checkpoint after every epoch, however short
    spec = WorkerSpec(run_dir=str(tmp_path), data=DataConfig(name="digits"), train=TrainConfig(), threads=1)
    request = EvalRequest(genome=_genome(0.3), budget=Budget(epochs=3, test=True))
    whole = evaluate_job(spec, Job(id=0, request=request, seed=3, checkpoint="checkpoints/c00000.pt"))

    def stop_after_two(epoch: int, epochs: int, record: dict[str, float]) -> None:
        if epoch == 2:
            raise _Stop

    job = Job(id=1, request=request, seed=3, checkpoint="checkpoints/c00001.pt")
    with pytest.raises(_Stop):
        evaluate_job(spec, job, stop_after_two)
    assert (tmp_path / "checkpoints/c00001.epoch.pt").is_file()
    resumed = evaluate_job(spec, job)
    assert whole.ok and resumed.ok, (whole.reason, resumed.reason)
    assert [r["drop_path"] for r in whole.metrics.history] == pytest.approx([0.0, 0.1, 0.2])
    assert resumed.metrics == whole.metrics


def test_train_drop_path_flag(tmp_path: Path) -> None:
    genome = tmp_path / "found.genome"
    genome.write_text(_genome(0.2))
    result = invoke("train", str(genome), "--epochs", "1", "--drop-path", "0.1", "--out", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["test_accuracy"] is not None
    plain = tmp_path / "plain.genome"
    plain.write_text("input 1x8x8\nflatten linear(10)\n")
    refused = invoke("train", str(plain), "--epochs", "1", "--drop-path", "0.1")
    assert refused.exit_code == 2
    assert "stochastic_depth" in refused.stderr and "Traceback" not in refused.output


def test_convert_puts_drop_path_on_by_default() -> None:
    def convert(*args: str) -> str:
        result = invoke("convert", "--from", "darts", GENOTYPE, "-C", "4", "-N", "3", *args)
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "stochastic_depth(0.2, schedule=linear)" in convert()  # 3x32x32: DARTS' 0.2
    assert "stochastic_depth(0.2, schedule=linear)" in convert("--input-shape", "1x8x8")  # small: the same
    assert "stochastic_depth" not in convert("--input-shape", "1x8x8", "--drop-path", "0")
    assert "stochastic_depth(0.3, schedule=linear)" in convert("--input-shape", "1x8x8", "--drop-path", "0.3")
    assert invoke("convert", "--from", "nb201", "|skip_connect~0|", "--drop-path", "0.1").exit_code == 2


def test_aux_loss_drop_path_and_cutout_train_together_on_cifar_shapes() -> None:
    """The full §4.8.2 set on a (tiny) CIFAR-shaped evaluation network: the aux tower needs 32x32."""
    from genomorph.grammar import parse
    from genomorph.search.core.protocol import DatasetInfo
    from genomorph.search.runtime.data import Dataset, Split

    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (48, 3, 32, 32), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, 10, (48,), generator=gen)
    info = DatasetInfo(name="synthetic", task="classification", input_shape=(3, 32, 32), num_outputs=10,
                       train_size=32, val_size=16, test_size=0)  # fmt: skip
    data = Dataset(info, Split(x[:32], y[:32]), Split(x[32:], y[32:]), Split(x[:0], y[:0]), 255.0,
                   torch.zeros(3, 1, 1), torch.ones(3, 1, 1))  # fmt: skip
    graph = genotype_to_graph(GENOTYPE, 2, 3, 10, auxiliary=True, input_shape=(3, 32, 32), drop_path=0.2)
    graph = parse(print_genome(graph))
    (aux,) = graph.aux_outputs()
    head = graph.inputs(aux)[0]  # the aux tower's classifier
    torch.manual_seed(0)
    module = lower(graph)
    before = module.state_dict()[f"n{head}.weight"].clone()
    config = TrainConfig(epochs=2, batch_size=16, cutout=16)
    report = train(module, data, config, seed=0, aux_weights=[graph.op(aux).weight])
    assert [r["drop_path"] for r in report.history] == pytest.approx([0.0, 0.1])
    assert not torch.equal(module.state_dict()[f"n{head}.weight"], before)  # the aux loss trained it
