"""The contract between search strategies and the engine that runs them. No torch here.

A strategy is a resumable state machine over plain data (`Strategy`, generic in a pydantic
``Config`` and a pydantic ``State``):

- ``propose(ctx)`` returns a (possibly empty) list of `Proposal`s: genome text plus budget,
  optionally with initial weights (numpy, keyed by the node ids of ``parse(genome)``);
- ``observe(result)`` receives every `EvalResult`, one at a time, in candidate-id order
  (the order of proposal), whatever executor ran them and in whatever order they finished;
  ``propose`` is called once when a session starts and after every ``observe``;
- ``done()`` says the strategy has nothing more to do;
- ``self.state`` (a `StrategyState` model, RNG included) is everything that changes. The
  driver stores its JSON dump in the same SQLite transaction as the candidates a proposal
  created or the result an observation consumed, so a run killed at any moment resumes from
  the last committed state and replays nothing that was finished.

The driver assigns candidate ids (0, 1, 2, ... in proposal order), derives each candidate's
training seed from the run seed and its id unless the strategy sets one, writes initial
weights to a checkpoint file, and sends `EvalRequest`s to an executor (in-process, process
pool or Ray). Strategies never know which executor runs their candidates.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    cast,
    get_args,
    get_origin,
)

from genomorph.search.core.state import Rng, StrategyState, seeded
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from genomorph.ir import ArchWeights, Graph, Weights

JSON = Any  # a value json.dumps accepts: str, int, float, bool, None, list, dict
Task = Literal["classification", "regression"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetInfo(_Frozen):
    """What a strategy may know about the data: enough to build genomes that fit it."""

    name: str
    task: Task
    input_shape: tuple[int, ...]
    """Shape of one sample without the batch dimension: ``(C, H, W)`` or ``(F,)``."""
    num_outputs: int
    """Number of classes (classification) or of regression targets."""
    train_size: int
    val_size: int
    test_size: int


class FlattenStop(_Frozen):
    """Paper 000's stopping rule: train until the loss curve flattens.

    After every epoch (from ``min_epochs`` on) the epochs and losses so far are normalised to
    [0, 1] and ``y = exp(a x) (1 - x)`` is fitted by least squares; training stops once
    ``a < threshold`` (or at the budget's ``epochs``, the maximum)."""

    threshold: float = -5.0
    min_epochs: int = Field(default=3, ge=1)


class Budget(_Frozen):
    """How much training one candidate gets. ``None`` fields fall back to the run's trainer config."""

    epochs: int = Field(default=1, ge=0)
    """Training epochs; 0 evaluates the (inherited) weights without training."""
    lr: float | None = Field(default=None, gt=0)
    """Initial (maximum) learning rate of the schedule."""
    schedule: Literal["cosine", "sgdr", "constant"] | None = None
    """``cosine``: anneal from ``lr`` to 0 over ``epochs`` (a fresh restart per candidate, as NASH
    does); ``sgdr``: warm restarts every ``restart_period`` epochs, period times ``restart_mult``."""
    restart_period: int | None = Field(default=None, ge=1)
    restart_mult: int | None = Field(default=None, ge=1)
    train_on: Literal["train", "train+val"] = "train"
    """``train+val`` is the final training of a winner; its validation metrics are then meaningless."""
    test: bool = False
    """Also evaluate on the test split (for the final result; never use it to select)."""
    train_only: tuple[int, ...] | None = None
    """Node ids (of ``parse(genome)``) whose weights train; all others frozen (repair training of
    approximate morphisms). ``None`` trains everything."""
    schedule_offset: float = Field(default=0.0, ge=0)
    """Epochs of this learning-rate schedule already run before this candidate: successive
    halving runs one cosine schedule over a whole step, each rung continuing where it stopped."""
    schedule_epochs: float | None = Field(default=None, gt=0)
    """Length of the whole schedule in epochs (``None``: ``epochs``, a schedule of its own)."""
    stop: FlattenStop | None = None
    """Stop early once the loss curve flattens (``epochs`` is then the maximum)."""
    eval_every: int | None = Field(default=None, ge=0)
    """Validate every this many epochs and after the last (``TrainConfig.eval_every``); 0: only
    once, after training (for a strategy that reads only the final numbers, as noisy does)."""


class RepairRequest(_Frozen):
    """Repair training before the ordinary training (paper 002 §3.2): the given nodes of the
    child learn to reproduce the parent's outputs while every other weight stays frozen."""

    nodes: tuple[int, ...]
    """Node ids of ``parse(genome)`` to train (a rewrite's ``repair`` list, after `canonical`)."""
    teacher_genome: str
    """The parent's genome text."""
    teacher_checkpoint: str
    """The parent's weights, relative to the run directory."""
    epochs: int = Field(default=5, ge=0)
    lr: float = Field(default=1e-3, gt=0)


class EvalRequest(_Frozen):
    """One candidate evaluation: everything a worker needs besides the run's trainer and data config."""

    genome: str
    """Canonical genome text (``print_genome``)."""
    budget: Budget = Budget()
    parent: int | None = None
    """Candidate id of the parent, for the history and the plots."""
    rewrites: tuple[JSON, ...] = ()
    """Rewrite records (JSON) that made this genome from the parent's, for the history."""
    init_checkpoint: str | None = None
    """Weights to start from: a checkpoint path relative to the run directory, e.g. a previous
    result's ``checkpoint``. Set by the driver when a `Proposal` carries weights."""
    seed: int | None = None
    """Training seed; ``None`` lets the driver derive one from the run seed and the candidate id."""
    meta: dict[str, JSON] = Field(default_factory=dict)
    """Free-form strategy bookkeeping (step, role, ...), stored and echoed back in the result."""
    recipe: str = "standard"
    """The training recipe the worker runs (``genomorph.search.runtime.recipes``): ``standard``
    (the weight step), or a method's own (e.g. ``darts``, ``hyperdarts``) built from steps."""
    recipe_options: dict[str, JSON] = Field(default_factory=dict)
    """The recipe's options, validated by the recipe's own pydantic model in the worker."""
    repair: RepairRequest | None = None
    collect: tuple[Literal["importance", "latency"], ...] = ()
    """Extra measurements after training: ``importance`` (paper 000's A and B per unit, written
    to an artifact file), ``latency`` (CPU forward time of one sample, in ``Metrics.extra``)."""


@dataclass(frozen=True)
class Proposal:
    """What ``propose`` returns: a request, and optionally the weights to start it from.

    ``weights`` are keyed by the node ids of ``parse(request.genome)``; `canonical` turns a
    rewritten graph and its weights into that form. The driver writes them to a checkpoint
    file atomically before the candidate is stored, so the strategy never touches files.
    """

    request: EvalRequest
    weights: Weights | None = None
    arch: ArchWeights | None = None


class Metrics(_Frozen):
    """What an evaluation measured. Accuracies are fractions in [0, 1]."""

    objective: float
    """Higher is better: validation accuracy (classification) or validation R² (regression);
    for ``train+val`` training, the test score when measured, else the training score."""
    val_accuracy: float | None = None
    val_loss: float | None = None
    val_r2: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    test_r2: float | None = None
    train_loss: float | None = None
    train_accuracy: float | None = None
    params: int
    macs: int
    epochs: int
    history: tuple[dict[str, float], ...] = ()
    """Per epoch: ``{"epoch", "lr", "train_loss", "val_loss", "val_accuracy"?}``."""
    extra: dict[str, JSON] = Field(default_factory=dict)
    """What a recipe or a request's ``repair``/``collect`` measured besides the above, e.g.
    ``repair_distance_before``/``repair_distance_after``, ``latency_ms``, ``stopped_early``."""


class EvalResult(_Frozen):
    """The outcome of one candidate, successful or not."""

    id: int
    request: EvalRequest
    status: Literal["finished", "failed"]
    reason: str | None = None
    """Why it failed, in words (NaN loss, shape error, exception text, ...)."""
    metrics: Metrics | None = None
    checkpoint: str | None = None
    """Trained weights, relative to the run directory; pass as ``init_checkpoint`` to inherit them."""
    artifacts: dict[str, str] = Field(default_factory=dict)
    """Files the evaluation wrote besides the checkpoint, by name, relative to the run directory
    (``importance``: an ``.npy`` of A and B per unit; ``alphas``: α per epoch, ...)."""
    setup_s: float = 0.0
    """Worker time outside training and evaluation: parse, lower, load and save weights."""
    train_s: float = 0.0
    eval_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "finished"


class FrontMember(_Frozen):
    candidate: int
    objectives: dict[str, float]
    """Objective name -> value, every one to be minimised (``val_error``, ``params``, ``macs``,
    ``latency_ms``, or the log of one of them)."""


class Front(_Frozen):
    """A multi-result search's answer: the non-dominated candidates over named objectives."""

    objectives: tuple[str, ...]
    members: tuple[FrontMember, ...]


class SearchSetup(_Frozen):
    """What every strategy is built from, besides its own config. Stored with the run."""

    seed: int = 0
    dataset: DatasetInfo
    start_genome: str | None = None
    """Genome text given on the command line (``nash``'s starting network), if any."""
    space: str | None = None
    """Search-space file contents (TOML), if any: stored so a resume never re-reads the file."""
    space_name: str | None = None
    budget: int | None = None
    """``--budget``: the strategy's main size knob (candidates, cycles, steps: its docs say)."""
    epochs: int | None = None
    """``--epochs``: training epochs per candidate, overriding the strategy's default."""
    max_parallel: int = 1
    """How many evaluations can run at once; a strategy may propose up to ``ctx.slots`` at a time."""


class SearchContext(Protocol):
    """What the driver offers a strategy during ``propose``."""

    @property
    def slots(self) -> int:
        """Executor width minus candidates proposed but not yet observed (≥ 1); proposing more
        is allowed, they just queue."""
        ...

    @property
    def wrap_up(self) -> bool:
        """True once the user's time limit passed or Ctrl-C was pressed: stop exploring, propose
        only what finishes the run (e.g. the final training of the winner) or nothing."""
        ...

    def load_weights(self, checkpoint: str) -> tuple[Weights, ArchWeights]:
        """Numpy weights of a checkpoint (a result's ``checkpoint``), keyed by node id."""
        ...

    def read_input(self, key: str, path: str | Path) -> str | None:
        """The text of a file the user may edit while the run goes on (``None``: it does not exist).

        ``key`` names the input (``"meta"``); ``path`` is where to read it (relative: to the
        directory the search was started in). Every read gets the next sequence number and is
        stored (key, path, content or missing, run time) in the same transaction as the strategy
        state it led to, i.e. with the proposals made from it. A resumed run continues from that
        state, so it never reads again what it already acted on: those values are replayed
        through the stored state and requests, whatever the file holds now.
        """
        ...


ConfigT = TypeVar("ConfigT", bound=BaseModel)
StateT = TypeVar("StateT", bound=StrategyState)


class Strategy(ABC, Generic[ConfigT, StateT]):
    """Base class of every strategy: generic in its pydantic ``Config`` and ``State`` models.

    ```python
    class NashConfig(BaseModel): ...            # options (--set key=value), frozen
    class NashState(StrategyState): ...         # everything that changes during a run

    class Nash(Strategy[NashConfig, NashState]):
        name = "nash"

        def initial_state(self) -> NashState:   # the state before the first proposal
            return NashState(rng=seeded(self.setup.seed))

        def propose(self, ctx): ...             # read and update self.state
        def observe(self, result): ...
        def done(self): ...
    ```

    ``Config`` and ``State`` are taken from the generic arguments (set them as class attributes
    to override). ``self.config`` is the validated config, ``self.setup`` the run's
    `SearchSetup`, ``self.state`` the state model: the engine stores
    ``state.model_dump(mode="json")`` after every ``propose`` that proposed something and every
    ``observe``, and restores it with ``State.model_validate`` on resume; a strategy writes no
    (de)serialisation of its own. Values derived from config and setup (resolved defaults, a
    parsed search space) are computed in ``__init__`` and never stored. RNG state goes in a
    field of type `Rng` (a live ``numpy.random.Generator``).

    Hooks with defaults, for reports and progress bars: `planned`, `result_candidate`,
    `front` (a multi-result search's Pareto front: ``front.json`` and ``front/`` in the run
    directory), `summary` (extra keys of ``summary.json``). Per-strategy plots are registered
    in ``genomorph.search.runtime.report`` (``register_plot``). Register a strategy in
    ``search/strategies``' ``STRATEGIES``, or run it as ``--strategy package.module:Class``.
    """

    #: the name used on the command line (``--strategy NAME``)
    name: ClassVar[str]
    #: the pydantic model of the strategy's own options (``--set key=value``)
    Config: ClassVar[type[BaseModel]]
    #: the pydantic model of the strategy's state (a `StrategyState`)
    State: ClassVar[type[StrategyState]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            origin, args = get_origin(base), get_args(base)
            if isinstance(origin, type) and issubclass(origin, Strategy) and len(args) == 2:
                config, state = args
                if "Config" not in cls.__dict__ and isinstance(config, type):
                    cls.Config = config
                if "State" not in cls.__dict__ and isinstance(state, type):
                    cls.State = state

    def __init__(self, config: ConfigT, setup: SearchSetup) -> None:
        self.config: ConfigT = config
        self.setup = setup
        self._state: StateT | None = None

    # ------------------------------------------------------------------ state
    def initial_state(self) -> StateT:
        """The state before the first proposal; the default is ``State()`` with its field defaults.

        Called once, lazily (on the first use of ``self.state``), so it may use everything the
        subclass's ``__init__`` derived."""
        return cast(StateT, self.State())

    @property
    def state(self) -> StateT:
        if self._state is None:
            self._state = self.initial_state()
        return self._state

    @state.setter
    def state(self, value: StateT) -> None:
        self._state = value

    def dump_state(self) -> dict[str, JSON]:
        """The state as JSON (what the driver stores)."""
        return self.state.model_dump(mode="json")

    def load_state(self, data: dict[str, JSON]) -> None:
        """Restore a stored `dump_state` on a freshly constructed strategy."""
        from pydantic import ValidationError

        try:
            self.state = cast(StateT, self.State.model_validate(data))
        except ValidationError as err:
            from genomorph.ir import DataError

            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top)"
            raise DataError(
                f"the stored state of strategy '{self.name}' does not fit {self.State.__name__}: "
                f"{where}: {first['msg']}",
                hint="the run was written by another version of this strategy; start a new run",
            ) from None

    # ------------------------------------------------------------------ the state machine
    @abstractmethod
    def propose(self, ctx: SearchContext) -> list[Proposal]:
        """New candidates to evaluate; ``[]`` while waiting for outstanding results."""

    @abstractmethod
    def observe(self, result: EvalResult) -> None:
        """Take in one result (finished or failed), in candidate-id order."""

    @abstractmethod
    def done(self) -> bool:
        """Nothing more to propose and nothing more expected."""

    # ------------------------------------------------------------------ report hooks
    def planned(self) -> int | None:
        """How many candidates the whole run will evaluate, if known (for progress bars only)."""
        return None

    def result_candidate(self) -> int | None:
        """The candidate id the run reports as its answer (e.g. the finally trained winner);
        ``None`` lets the report pick the finished candidate with the best objective."""
        return None

    def retained(self) -> Collection[int] | None:
        """Candidates whose trained weights this strategy may still use (a parent to mutate, a
        winner to train on): the driver deletes the weight files of every other finished and
        observed candidate, except the best by objective, the answer and the front members, so a
        long run's directory does not grow without bound. ``None`` (the default, safe for
        strategies that may load any earlier result) keeps every checkpoint."""
        return None

    def front(self) -> Front | None:
        """A multi-result search's answer: its Pareto front over named objectives (all minimised).

        When not ``None`` the report writes ``front.json``, one ``front/cNNNNN.genome`` per
        member, a ``front`` list in ``summary.json`` and ``front.png``; ``best.genome`` stays the
        single best by validation score. Called on a strategy restored from the store (so it
        also works for an interrupted run): compute it from ``self.state``."""
        return None

    def summary(self) -> dict[str, JSON]:
        """Extra top-level keys of ``summary.json`` (e.g. ``hypervolume`` per generation, α per
        epoch, ``iterations``); JSON values. A key the report writes itself (``test_accuracy``,
        ``params``, ...) is used only where the report has no value (``null``); otherwise the
        report's value stays. Called, like `front`, on a strategy restored from the store."""
        return {}


def objective_value(name: str, metrics: Metrics) -> float | None:
    """The value of a named objective (minimised) for a candidate's metrics; ``None`` if unmeasured.

    Names: ``val_error`` (1 - objective: validation error, or 1 - R² for regression),
    ``params``, ``macs``, ``latency_ms`` (``metrics.extra``), and ``log_`` + any of these
    (natural log). Any other name is looked up in ``metrics.extra``."""
    import math

    base = name.removeprefix("log_")
    value: float | None
    if base == "val_error":
        value = 1.0 - metrics.objective
    elif base in ("params", "macs"):
        value = float(getattr(metrics, base))
    else:
        raw = metrics.extra.get(base)
        value = float(raw) if isinstance(raw, int | float) else None
    if value is None or base == name:
        return value
    return math.log(value) if value > 0 else None


def derive_seed(run_seed: int, candidate_id: int, salt: str = "candidate") -> int:
    """A 31-bit seed from the run seed and a candidate id, stable across Python versions."""
    digest = hashlib.sha256(f"{salt}:{run_seed}:{candidate_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def canonical(graph: Graph, weights: Weights | None = None) -> tuple[str, Weights | None]:
    """Genome text of ``graph`` and its weights re-keyed to the ids ``parse`` of that text gives."""
    from genomorph.ir.printer import print_genome
    from genomorph.ir.weights import remap

    relabeled, mapping = graph.relabeled()
    text = print_genome(relabeled)
    return text, (remap(weights, mapping) if weights is not None else None)


def canonical_ids(graph: Graph) -> dict[int, int]:
    """Old id → id in ``parse(canonical(graph)[0])``: re-key a rewrite's ``repair`` list (or any
    node ids of ``graph``) for the `RepairRequest` / ``Budget.train_only`` of the canonical genome."""
    return graph.relabeled()[1]


def canonical_nodes(graph: Graph, nodes: Iterable[int]) -> tuple[int, ...]:
    """``nodes`` of ``graph`` as ids of its canonical genome (see `canonical_ids`), sorted."""
    mapping = canonical_ids(graph)
    return tuple(sorted(mapping[n] for n in nodes))


__all__ = [
    "JSON",
    "Budget",
    "DatasetInfo",
    "EvalRequest",
    "EvalResult",
    "FlattenStop",
    "Front",
    "FrontMember",
    "RepairRequest",
    "Metrics",
    "Proposal",
    "SearchContext",
    "SearchSetup",
    "Rng",
    "Strategy",
    "StrategyState",
    "Task",
    "canonical",
    "canonical_ids",
    "canonical_nodes",
    "derive_seed",
    "objective_value",
    "seeded",
]
