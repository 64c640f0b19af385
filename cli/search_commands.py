"""The search commands: train, search, resume, report.

Flags collapse into the library's frozen configs (`TrainConfig`, `DataConfig`, `RunConfig`);
the library trains and searches; this module only prints (progress bars and tables on
stderr/stdout with rich). Errors are raised, never caught, except Ctrl-C during a search,
which keeps what is finished and tells the user how to continue.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._data_parallel import data_parallel, follow_if_torchrun_rank, nproc_option, resume_data_parallel
from ._io import Source, genome_argument, load_graph
from ._search_ui import RichSearchObserver, candidate_table, epoch_progress, print_summary, stderr_console

if TYPE_CHECKING:
    from genomorph.search.core.store import RunStore

F = TypeVar("F", bound=Callable[..., Any])

DATASET_NAMES = (
    "digits", "spirals", "regression2d", "mnist", "fashion-mnist", "cifar10", "cifar100", "folder", "csv"
)  # fmt: skip
EXIT_INTERRUPTED = 130


# ============================================================================ shared options
def _apply(options: list[Callable[[F], F]], func: F) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def data_options(func: F) -> F:
    return _apply(
        [
            click.option(
                "--dataset",
                "-d",
                type=click.Choice(DATASET_NAMES),
                default="digits",
                show_default=True,
                help="Training data: embedded digits, generated toy sets, torchvision sets from --data-dir, "
                "your own images (folder: an ImageFolder tree in --data-dir) or table (csv: --data-file, --target).",
            ),
            click.option(
                "--data-dir",
                type=click.Path(file_okay=False, path_type=Path),
                help="Folder in torchvision's layout (mnist, fashion-mnist, cifar10, cifar100), or an "
                "ImageFolder tree with one sub-folder of images per class (folder).",
            ),
            click.option(
                "--data-file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="CSV table with a header row (--dataset csv); every column but --target is a numeric feature.",
            ),
            click.option("--target", help="The CSV column to predict (--dataset csv)."),
            click.option(
                "--task",
                type=click.Choice(["auto", "classification", "regression"]),
                help="CSV target: classes or a regression value; auto: classes when the target is not numeric "
                "or holds few distinct integers.  [default: auto]",
            ),
            click.option(
                "--test-fraction",
                type=click.FloatRange(0, 1, min_open=True, max_open=True),
                help="Share of a folder or csv dataset held out for testing.  [default: 0.2]",
            ),
            click.option(
                "--input-shape",
                "data_input_shape",
                help="folder: convert and resize every image to CxHxW (1 channel: grayscale, 3: RGB).  "
                "[default: the genome's input]",
            ),
            click.option("--download", is_flag=True, help="Download a torchvision dataset into --data-dir."),
            click.option(
                "--data-seed",
                type=int,
                default=0,
                show_default=True,
                help="Seed of the toy sets and of the torchvision train/val split (not of digits' fixed split).",
            ),
            click.option(
                "--val-fraction",
                type=click.FloatRange(0, 1, min_open=True, max_open=True),
                help="Share of a torchvision training set held out for validation.  [default: 0.1]",
            ),
        ],
        func,
    )


def trainer_options(func: F) -> F:
    """Trainer flags; only those given override `TrainConfig`'s defaults."""
    return _apply(
        [
            click.option(
                "--epochs", type=click.IntRange(min=0), help="Training epochs (per candidate in a search)."
            ),
            click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Initial learning rate."),
            click.option(
                "--optimizer", type=click.Choice(["sgd", "adam"]), help="Optimizer.  [default: sgd]"
            ),
            click.option("--batch-size", type=click.IntRange(min=1), help="Batch size.  [default: 64]"),
            click.option(
                "--weight-decay", type=click.FloatRange(min=0), help="Weight decay.  [default: 5e-4]"
            ),
            click.option(
                "--schedule",
                type=click.Choice(["cosine", "sgdr", "constant"]),
                help="Learning-rate schedule.  [default: cosine]",
            ),
            click.option(
                "--restart-period", type=click.IntRange(min=1), help="SGDR: epochs of the first cycle (T0)."
            ),
            click.option(
                "--restart-mult", type=click.IntRange(min=1), help="SGDR: cycle length factor (T_mult)."
            ),
            click.option(
                "--mixup", "mixup_alpha", type=click.FloatRange(min=0), help="Mixup Beta(α, α); 0 = off."
            ),
            click.option(
                "--cutout", type=click.IntRange(min=0), help="Cutout square side in pixels; 0 = off."
            ),
            click.option(
                "--drop-path",
                type=click.FloatRange(0, 1, max_open=True),
                help="Rate of the genome's stochastic_depth ops; DARTS evaluation networks carry drop-path "
                "rising linearly to it over the epochs (0 = off).  [default: the genome's]",
            ),
            click.option(
                "--label-smoothing", type=click.FloatRange(0, 1, max_open=True), help="Label smoothing."
            ),
            click.option(
                "--grad-clip", type=click.FloatRange(min=0), help="Gradient norm clip; 0 = off.  [default: 5]"
            ),
            click.option(
                "--threads",
                type=click.IntRange(min=1),
                help="torch CPU threads per evaluation.  [default: 1 for small inputs, else cores/workers]",
            ),
            click.option(
                "--device",
                type=click.Choice(["cpu", "cuda", "auto"]),
                help="Where to train; auto = CUDA when present.  [default: cpu]",
            ),
        ],
        func,
    )


_TRAINER_FLAGS = (
    "lr",
    "optimizer",
    "batch_size",
    "weight_decay",
    "schedule",
    "restart_period",
    "restart_mult",
    "mixup_alpha",
    "cutout",
    "drop_path",
    "label_smoothing",
    "grad_clip",
    "device",
    "threads",
)


def _train_config(flags: dict[str, Any], epochs: int | None = None) -> Any:
    from genomorph.search.core.config import TrainConfig

    given = {k: flags[k] for k in _TRAINER_FLAGS if flags.get(k) is not None}
    if given.get("grad_clip") == 0:
        given["grad_clip"] = None
    if epochs is not None:
        given["epochs"] = epochs
    return TrainConfig(**given)


def _data_config(flags: dict[str, Any]) -> Any:
    from genomorph.search.core.config import DataConfig

    given: dict[str, Any] = {
        "name": flags["dataset"],
        "download": flags["download"],
        "seed": flags["data_seed"],
    }
    if flags.get("data_dir") is not None:
        given["data_dir"] = str(flags["data_dir"])
    for key in ("val_fraction", "test_fraction"):
        if flags.get(key) is not None:
            given[key] = flags[key]
    if flags.get("data_file") is not None:
        given["data_file"] = str(flags["data_file"])
    for key in ("target", "task"):
        if flags.get(key) is not None:
            given[key] = flags[key]
    if flags.get("data_input_shape"):
        given["input_shape"] = _shape_flag(flags["data_input_shape"])
    return DataConfig(**given)


def _shape_flag(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise click.BadParameter(f"'{text}' is not a shape like 3x32x32", param_hint="--input-shape")
    return shape


# ============================================================================ train
@click.command(
    epilog="""\b
Examples:
  genomorph train examples/digits_cnn.genome --dataset digits --epochs 20
  genomorph train net.genome --dataset mnist --data-dir ~/data --device auto --out runs/net
  genomorph train net.genome --dataset cifar10 --data-dir ~/data --schedule sgdr --restart-period 10 --cutout 16
""",
)
@genome_argument()
@data_options
@trainer_options
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of initialisation and batch order."
)
@click.option("--final", is_flag=True, help="Train on train+validation (a final training); report test only.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory: the training is stored, checkpointed every epoch and resumed by running the "
    "same command again (or `genomorph resume`).  [default: runs/train-NAME-TIME, a plain folder with "
    "model.pt, model.genome and metrics.json]",
)
def train(source: Source, seed: int, final: bool, out: Path | None, epochs: int | None, **flags: Any) -> None:
    """Train one genome and print its validation and test metrics."""
    from genomorph.ir import GenomorphError
    from genomorph.search.core.config import Job, WorkerSpec
    from genomorph.search.core.protocol import Budget, EvalRequest

    graph = load_graph(source)
    train_config = _train_config(flags, epochs)
    droppable = any(graph.kind(n) == "stochastic_depth" for n in graph.order())
    if train_config.drop_path is not None and not droppable:
        from genomorph.ir import ConfigError

        raise ConfigError(
            "--drop-path sets the rate of the genome's stochastic_depth ops, and this genome has none",
            hint="DARTS evaluation networks carry them (genomorph convert --from darts --drop-path P, or the "
            "best.genome of a darts search); elsewhere write stochastic_depth(p, schedule=linear) where paths drop",
        )
    budget = Budget(epochs=train_config.epochs, train_on="train+val" if final else "train", test=True)
    pending = None
    if out is not None and not (out / "run.db").exists():  # recorded before torch loads: a kill
        from .train_run import write_pending  # during start-up can be resumed

        pending = write_pending(out, source.text, _data_config(flags), train_config, budget, seed)
    from genomorph.search.runtime.data import cached_dataset, check_fits, fit_to_genome
    from genomorph.search.runtime.evaluate import evaluate_job
    from genomorph.search.runtime.trainer import auto_threads

    try:
        data_config = fit_to_genome(_data_config(flags), graph)
        dataset = cached_dataset(data_config)
        check_fits(graph, dataset.info)  # before any training
    except GenomorphError:
        if pending is not None:  # nothing was trained: leave no run directory behind
            pending.withdraw()
        raise
    stem = source.path.stem if source.path else "stdin"
    if out is not None:  # a run of the run store: per-epoch checkpoints, resumable
        from genomorph.search.runtime.train_run import training_run_config

        from .train_run import train_in_run_dir

        run_config = training_run_config(source.text, data_config, train_config, budget, seed)
        train_in_run_dir(run_config, out, stem, "the same genomorph train command")
        return
    out = Path("runs") / f"train-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    job = Job(
        id=0,
        request=EvalRequest(genome=source.text, budget=budget, seed=seed),
        seed=seed,
        checkpoint="model.pt",
    )
    threads = auto_threads(train_config.threads, dataset.info.input_shape, 1)
    spec = WorkerSpec(run_dir=str(out.resolve()), data=data_config, train=train_config, threads=threads)
    console = stderr_console()
    stats = graph.stats()
    console.print(
        f"training {source.name}: {stats.params:,} params, {stats.macs:,} MACs on {dataset.info.name} "
        f"({dataset.info.train_size}/{dataset.info.val_size}/{dataset.info.test_size}), {budget.epochs} epochs",
        soft_wrap=True,
    )
    with epoch_progress(console, f"{stem}") as on_epoch:
        result = evaluate_job(spec, job, on_epoch)
    (out / "model.genome").write_text(source.text if source.text.endswith("\n") else source.text + "\n")
    (out / "metrics.json").write_text(result.model_dump_json(indent=2) + "\n")
    if not result.ok:
        raise GenomorphError(
            f"training failed: {result.reason}",
            hint="a NaN loss usually means the learning rate is too high: try a smaller --lr or --grad-clip",
        )
    m = result.metrics
    assert m is not None
    click.echo(
        json.dumps(
            {
                "val_accuracy": m.val_accuracy,
                "val_loss": m.val_loss,
                "test_accuracy": m.test_accuracy,
                "test_loss": m.test_loss,
                "val_r2": m.val_r2,
                "test_r2": m.test_r2,
                "params": m.params,
                "macs": m.macs,
                "epochs": m.epochs,
                "train_s": round(result.train_s, 3),
                "eval_s": round(result.eval_s, 3),
                "out": str(out),
            },
            indent=2,
        )
    )


# ============================================================================ search / resume
def _run_with_ui(run: Callable[[Any], RunStore], run_dir: Path) -> None:
    """Run a search with progress bars; on Ctrl-C (or SIGTERM) keep what finished and exit 130."""
    from genomorph.search.core.driver import SearchInterrupted
    from genomorph.search.core.store import RunStore
    from genomorph.search.runtime.report import prewarm, write_report

    prewarm()

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    console = stderr_console()
    observer = RichSearchObserver(console)
    try:
        # log records (warnings, notices) above the progress bars instead of inside them
        from ._console_log import console_logging

        with console_logging(console):
            store = run(observer)
    except SearchInterrupted as stop:
        observer.stop()
        store = RunStore.open(stop.run_dir)
        write_report(store, measure_test=False)
        console.print(
            f"[bold yellow]interrupted[/]: finished candidates are kept in {run_dir}", soft_wrap=True
        )
        console.print(f"continue with: genomorph resume {run_dir}", soft_wrap=True, markup=False)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        observer.stop()
        signal.signal(signal.SIGTERM, previous)
    summary = write_report(store)
    print_summary(summary, run_dir)


def _parse_set(values: tuple[str, ...]) -> dict[str, Any]:
    """``--set key=value``: the value as JSON when it parses (numbers, booleans, lists), else text."""
    options: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--set")
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    return options


def _strategy_options(settings: tuple[str, ...], flags: dict[str, Any]) -> dict[str, Any]:
    """``--set`` options plus the strategy flags that are shorthands for them (``--objectives``, ...)."""
    options = _parse_set(settings)
    for flag in ("objectives", "sampling", "partial_channels"):
        value = flags.pop(flag, None)
        if value is None:
            continue
        if flag in options and options[flag] != value:
            raise click.BadParameter(
                f"contradicts --set {flag}={options[flag]}", param_hint=f"--{flag.replace('_', '-')}"
            )
        options[flag] = value
    return options


@click.command(
    epilog="""\b
Examples:
  genomorph search --strategy nash --dataset digits --out runs/nash
  genomorph search --strategy nash examples/vanilla.genome --dataset digits --budget 4 --workers 2 --out runs/n2
  genomorph search --strategy evolution --space examples/space_ga.toml --dataset digits --seed 1 --out runs/ga
  genomorph search --strategy random --space examples/space_ga.toml --dataset fashion-mnist \\
      --data-dir ~/data --executor ray --address ray://head:10001 --out runs/rs
  genomorph resume runs/ga        # continue a run that was stopped or killed

\b
Strategy options: --set KEY=VALUE (repeatable; see docs/strategies.md for each strategy's keys).
A run directory ends with run.db, checkpoints/, summary.json, best.genome and PNG plots.
""",
)
@click.option("--strategy", "-s", required=True, help="Search strategy (random, evolution, nash, ...).")
@click.argument(
    "start", metavar="[START_GENOME]", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option(
    "--space", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Search-space TOML file."
)
@data_options
@click.option(
    "--budget", type=click.IntRange(min=1), help="The strategy's size: candidates, cycles or steps."
)
@trainer_options
@click.option(
    "--time-limit", type=click.FloatRange(min=0, min_open=True), help="Seconds, then the search wraps up."
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Local worker processes."
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: in-process (or a pool with --workers N); ray: a Ray cluster (pip install 'genomorph[ray]').",
)
@click.option("--address", help="Ray cluster address (with --executor ray); default: start a local Ray.")
@nproc_option
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Run seed: the same seed gives the same run."
)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A strategy option (repeatable).")
@click.option(
    "--objectives",
    metavar="LIST",
    help="pareto-nash: cheap objectives besides the validation error, from params, macs, latency "
    "(e.g. params,macs).  [default: params]",
)
@click.option(
    "--sampling",
    type=click.Choice(["density", "uniform"]),
    help="pareto-nash: parents and accepted children inversely to the front's density (the paper) or "
    "uniformly (its baseline).  [default: density]",
)
@click.option(
    "--partial-channels",
    type=click.IntRange(min=1),
    metavar="K",
    help="darts/hyperdarts: PC-DARTS, 1/K of every edge's channels through its candidate ops, "
    "with edge normalisation (less memory on large supernets).  [default: 1]",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory.  [default: runs/STRATEGY-DATASET-TIME]",
)
def search(
    strategy: str,
    start: Path | None,
    space: Path | None,
    budget: int | None,
    epochs: int | None,
    time_limit: float | None,
    workers: int,
    executor: str,
    address: str | None,
    nproc: int,
    seed: int,
    settings: tuple[str, ...],
    out: Path | None,
    **flags: Any,
) -> None:
    """Search for a genome with a strategy; keep every candidate in a resumable run directory."""
    if follow_if_torchrun_rank():  # torchrun's ranks above 0 follow rank 0
        return
    from genomorph.search.core.driver import RunConfig, strategy_class
    from genomorph.search.runtime.data import check_fits
    from genomorph.search.runtime.run import prepare_setup, start_search

    strategy_class(strategy)  # unknown names fail before anything is loaded
    if address and executor != "ray":
        raise click.BadParameter("--address only applies with --executor ray", param_hint="--address")
    data_config = _data_config(flags)
    start_text = None
    if start is not None:
        from ._io import read_source

        source = read_source(str(start))
        graph = load_graph(source)
        start_text = source.text
        from genomorph.search.runtime.data import fit_to_genome

        data_config = fit_to_genome(data_config, graph)
    setup = prepare_setup(
        data_config,
        seed=seed,
        start_genome=start_text,
        space=space.read_text(encoding="utf-8") if space else None,
        space_name=str(space) if space else None,
        budget=budget,
        epochs=epochs,
        max_parallel=workers,
    )
    if start is not None:
        check_fits(graph, setup.dataset)  # before any training
    kind = "ray" if executor == "ray" else ("pool" if workers > 1 else "inprocess")
    config = RunConfig(
        strategy=strategy,
        strategy_config=_strategy_options(settings, flags),
        setup=setup,
        data=data_config,
        train=_train_config(flags),
        executor=kind,
        workers=workers,
        address=address,
        time_limit=time_limit,
    )
    run_dir = out or Path("runs") / f"{strategy}-{data_config.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with data_parallel(nproc, config.train.device, strategy, workers, executor):
        _run_with_ui(lambda observer: start_search(config, run_dir, observer), run_dir)


@click.command(
    epilog="""\b
Examples:
  genomorph resume runs/nash
""",
)
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@nproc_option
def resume(run_dir: Path, nproc: int = 1) -> None:
    """Continue a search that was stopped or killed; finished candidates are kept, never re-run."""
    from genomorph.search.runtime.run import resume_search

    from .train_run import resume_pending_training

    if follow_if_torchrun_rank():  # torchrun's ranks above 0 follow rank 0
        return
    if resume_pending_training(run_dir):  # a `train --out` killed before its run store existed
        return
    with resume_data_parallel(nproc, run_dir):
        _run_with_ui(lambda observer: resume_search(run_dir, observer), run_dir)


# ============================================================================ report
@click.command(
    epilog="""\b
Examples:
  genomorph report runs/nash
  genomorph report runs/nash --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["test_accuracy"])'
  genomorph report runs/nash --html nash.html     # one file: plots, candidates, lineages, offline
""",
)
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--top", type=click.IntRange(min=1), default=10, show_default=True, help="Candidates in the table."
)
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead of tables.")
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the dashboard's views as one self-contained HTML file (opens offline).",
)
def report(run_dir: Path, top: int, as_json: bool, html_out: Path | None = None) -> None:
    """Summarise a run: best genome, scores, candidates; (re)write summary.json, best.genome, plots."""
    from genomorph.search.core.store import RunStore
    from genomorph.search.runtime.report import PLOTS, write_report

    store = RunStore.open(run_dir)
    summary = write_report(store)
    if html_out is not None:
        from .dashboard.report_html import write_html_report

        write_html_report([run_dir], html_out)
        click.echo(f"wrote {html_out}", err=True)
    if as_json:
        click.echo(summary.model_dump_json(indent=2))
        return
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 120, highlight=False)
    console.print(candidate_table(store.candidates(), top, summary.task == "classification"))
    print_summary(summary, run_dir)
    console.print("plots: " + ", ".join(str(run_dir / p) for p in summary.plots or PLOTS))


__all__ = ["report", "resume", "search", "train"]
