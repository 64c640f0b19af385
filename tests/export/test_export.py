"""Exporting genomes: standalone Python, torch.export programs and ONNX files, each checked.

The check inside ``export_genome`` compares the artefact with the lowered genome (eval mode,
batch 3, traced at batch 2); these tests also run the artefacts themselves: the Python file in a
fresh interpreter where ``import genomorph`` fails, the ``.pt2`` at another batch size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from genomorph.cli.main import main
from genomorph.grammar import parse, parse_file
from genomorph.grammar.darts import darts_supernet
from genomorph.ir import Graph
from genomorph.ir.ops import Mixed
from genomorph.lower import extract_weights, lower
from genomorph.lower.export import discretise, export_genome
from genomorph.lower.export._python import python_source
from genomorph.search.runtime.checkpoint import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.genome"))
#: the DARTS supernet example takes ~20 s to export on a loaded machine: the slow suite has it
QUICK_EXAMPLES = [
    pytest.param(p, marks=pytest.mark.slow) if p.stem == "darts_search" else p for p in EXAMPLES
]
SEED = 11

#: every op kind of imported networks, with rectangular kernels and a ceil-mode pool
NEW_OPS = """\
input 3x12x12
conv(8, 1x3, stride=1x2, bias=false) bn leaky_relu(0.1)
x = conv(8, 3x1) bn hardswish
s = adaptive_avgpool(1) conv(2, 1) relu6 conv(8, 1) hardsigmoid
y = mul(x, s) stochastic_depth(0.2)
add(_, x) maxpool(3, stride=2, ceil_mode=true) avgpool(2, stride=1, ceil_mode=true) adaptive_avgpool(2x1) flatten linear(5)
"""


def _trained_like(graph: Graph, seed: int) -> tuple[dict, dict]:
    """Weights with batch-norm statistics off their defaults, and random architecture weights."""
    torch.manual_seed(seed)
    weights, arch = extract_weights(lower(graph), graph)
    rng = np.random.default_rng(seed)
    for per in weights.values():
        if "running_var" in per:
            per["running_mean"] = rng.normal(0, 0.1, per["running_mean"].shape).astype(np.float32)
            per["running_var"] = rng.uniform(0.5, 1.5, per["running_var"].shape).astype(np.float32)
    arch = {g: rng.normal(0, 1, a.shape).astype(np.float32) for g, a in arch.items()}
    return weights, arch


@pytest.mark.parametrize("path", QUICK_EXAMPLES, ids=lambda p: p.stem)
def test_every_example_exports_to_python(path: Path, tmp_path: Path) -> None:
    assert EXAMPLES
    graph = parse_file(path)
    weights, arch = _trained_like(graph, SEED)
    result = export_genome(
        graph, "python", tmp_path / f"{path.stem}.py", weights, arch or None, source=str(path)
    )
    assert result.max_abs_diff <= 1e-5
    assert [f.suffix for f in result.files] == [".py", ".pt"]
    text = result.files[0].read_text()
    assert "genomorph" not in text.split('"""', 2)[2]  # only the docstring names it: no imports


@pytest.mark.parametrize("fmt", ["exported", "onnx"])
def test_exported_and_onnx_are_checked(fmt: str, tmp_path: Path) -> None:
    graph = parse(NEW_OPS)  # every op kind of imported networks; the slow suite exports the examples
    weights, _ = _trained_like(graph, SEED)
    out = tmp_path / f"new_ops.{fmt}"
    result = export_genome(graph, fmt, out, weights)  # type: ignore[arg-type]
    assert result.max_abs_diff <= result.tolerance and out.stat().st_size > 0
    if fmt == "exported":  # the batch dimension is dynamic: another batch size runs
        program = torch.export.load(out).module()
        x = torch.randn(5, *graph.stats().input_shape, generator=torch.Generator().manual_seed(SEED))
        want = lower(graph, weights).eval()(x)
        torch.testing.assert_close(program(x), want, atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["exported", "onnx"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_exports_to_exported_and_onnx(fmt: str, path: Path, tmp_path: Path) -> None:
    graph = parse_file(path)
    weights, arch = _trained_like(graph, SEED)
    result = export_genome(graph, fmt, tmp_path / f"{path.stem}.{fmt}", weights, arch or None)  # type: ignore[arg-type]
    assert result.max_abs_diff <= result.tolerance


STANDALONE = """
import sys
sys.modules["genomorph"] = None  # any `import genomorph` now fails
import importlib.util, torch
folder = sys.argv[1]
spec = importlib.util.spec_from_file_location("standalone", f"{folder}/net.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
net = module.Net()
net.load_state_dict(torch.load(f"{folder}/net.pt", weights_only=True))
x, want = torch.load(f"{folder}/io.pt", weights_only=True)
with torch.no_grad():
    got = net.eval()(x)
print((got - want).abs().max().item())
"""


def test_python_export_runs_without_genomorph(tmp_path: Path) -> None:
    graph = parse(NEW_OPS)
    weights, _ = _trained_like(graph, SEED)
    export_genome(graph, "python", tmp_path / "net.py", weights)
    x = torch.randn(4, *graph.stats().input_shape, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        torch.save((x, lower(graph, weights).eval()(x)), tmp_path / "io.pt")
    run = subprocess.run(
        [sys.executable, "-c", STANDALONE, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert float(run.stdout.strip()) <= 1e-5


def test_python_export_trains_like_the_lowered_module(tmp_path: Path) -> None:
    # same weights, same batch, one SGD step each: the same loss and the same updated weights
    graph = parse(NEW_OPS.replace("stochastic_depth(0.2)", "stochastic_depth(0.0)"))
    weights, _ = _trained_like(graph, SEED)
    export_genome(graph, "python", tmp_path / "net.py", weights)
    spec = __import__("importlib.util").util.spec_from_file_location("trained", tmp_path / "net.py")
    loaded = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(loaded)  # type: ignore[union-attr]
    exported = loaded.Net()
    exported.load_state_dict(torch.load(tmp_path / "net.pt", weights_only=True))
    lowered = lower(graph, weights)
    x = torch.randn(6, *graph.stats().input_shape, generator=torch.Generator().manual_seed(SEED))
    y = torch.arange(6) % 5
    losses = []
    for net in (lowered, exported):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        loss = torch.nn.functional.cross_entropy(net.train()(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    _, keys = python_source(graph)  # lowered state_dict key -> exported key
    after = exported.state_dict()
    for key, value in lowered.state_dict().items():
        torch.testing.assert_close(after[keys[key]], value, atol=1e-6, rtol=0)


def test_supernet_exports_with_alpha_and_discretised(tmp_path: Path) -> None:
    graph = darts_supernet(channels=4, cells=2)
    weights, arch = _trained_like(graph, SEED)
    with_alpha = export_genome(graph, "python", tmp_path / "supernet.py", weights, arch)
    assert with_alpha.max_abs_diff <= 1e-5
    plain, kept = discretise(graph, weights, arch)
    assert not any(isinstance(n.op, Mixed) for n in plain.nodes())
    assert 0 < plain.stats().params < graph.stats().params and plain.stats().arch_params == 0
    result = export_genome(plain, "python", tmp_path / "discrete.py", kept)
    assert result.max_abs_diff <= 1e-5


TINY_SUPERNET = """\
input 3x8x8
x = conv(4, 3)
a = x zero
b = x maxpool(3, stride=1, padding=1)
c = x conv(4, 3)
mixed(a, b, c, labels=["none", max_pool, conv]) gap linear(2)
"""


@pytest.mark.parametrize(("alpha", "kept"), [([5.0, 1.0, 2.0], "conv"), ([0.0, 3.0, 2.0], "maxpool")])
def test_discretise_keeps_the_strongest_candidate_but_none(alpha: list[float], kept: str) -> None:
    graph = parse(TINY_SUPERNET)
    weights, _ = _trained_like(graph, SEED)
    plain, tensors = discretise(graph, weights, {"normal": np.array([alpha], dtype=np.float32)})
    kinds = [n.kind for n in plain.nodes()]
    assert "mixed" not in kinds and "zero" not in kinds
    assert kinds.count("conv") == (2 if kept == "conv" else 1) and ("maxpool" in kinds) == (kept == "maxpool")
    # the kept nodes keep their trained weights
    first_conv = graph.find("x")
    assert tensors is not None
    np.testing.assert_array_equal(tensors[plain.find("x")]["weight"], weights[first_conv]["weight"])


def test_cli_exports_a_trained_digits_search_run(tmp_path: Path) -> None:
    runner = CliRunner()
    genome = tmp_path / "start.genome"
    factory = ROOT / "tests" / "importer" / "digits_net.py"
    args = ["import", f"{factory}:build(width=4)", "--input-shape", "1x8x8", "-o", str(genome)]
    assert runner.invoke(main, args, catch_exceptions=False).exit_code == 0
    run_dir = tmp_path / "run"
    args = [
        "search",
        "--strategy",
        "nash",
        str(genome),
        "--budget",
        "1",
        "--epochs",
        "1",
        "--seed",
        str(SEED),
    ]
    result = runner.invoke(main, [*args, "--out", str(run_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = tmp_path / "best.py"
    result = runner.invoke(main, ["export", str(run_dir), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "max abs diff" in result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    best = summary["best_candidate"]
    weights, _, text = load_checkpoint(next((run_dir / "checkpoints").glob(f"c{best:05d}.pt")))
    state = torch.load(out.with_suffix(".pt"), weights_only=True)
    graph = parse(text)
    assert (
        sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k)
        == graph.stats().params
    )
    # the trained weights went into the file, not a fresh initialisation
    conv = next(n for n in graph.nodes() if n.kind == "conv")
    key = f"{conv.name or f'n{conv.id}'}.weight"
    torch.testing.assert_close(state[key], torch.from_numpy(weights[conv.id]["weight"]))


def test_cli_export_formats_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    genome = ROOT / "examples" / "vanilla.genome"
    weights, arch = _trained_like(parse_file(genome), SEED)
    ckpt = tmp_path / "w.pt"
    save_checkpoint(ckpt, weights, arch)
    result = runner.invoke(
        main,
        ["export", str(genome), "--weights", str(ckpt), "-o", str(tmp_path / "v.pt2")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0 and "(exported)" in result.output, result.output
    result = runner.invoke(
        main, ["export", str(genome), "--discretise", "-o", str(tmp_path / "v.py")], catch_exceptions=False
    )
    assert result.exit_code == 2 and "architecture weights" in result.output
    other = tmp_path / "other.genome"
    other.write_text("input 3x8x8\nconv(4, 3) gap linear(2)\n")
    result = runner.invoke(
        main,
        ["export", str(other), "--weights", str(ckpt), "-o", str(tmp_path / "o.py")],
        catch_exceptions=False,
    )
    assert result.exit_code == 2  # weights of another genome: a user error, not a crash
