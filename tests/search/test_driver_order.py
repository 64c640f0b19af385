"""Results that come back out of order reach the strategy in candidate-id order.

An executor that returns every batch of results in reverse submission order makes the
out-of-order case certain (a real pool only makes it likely), so the property is checked on
every run: what a strategy saw when it proposed candidate k never depends on finishing order.
"""

from __future__ import annotations

from pathlib import Path

from genomorph.search.core.config import DataConfig, Job, TrainConfig
from genomorph.search.core.driver import Driver, RunConfig, build_strategy
from genomorph.search.core.executor import Executor
from genomorph.search.core.protocol import EvalResult
from genomorph.search.core.store import RunStore
from genomorph.search.runtime.executors import InProcessExecutor
from genomorph.search.runtime.run import CHECKPOINT_FILES, _spec, prepare_setup
from search_helpers import EAGER


class ReversingExecutor(Executor):
    """Runs jobs for real (in-process) but hands back each full batch of ``width`` results last-first."""

    kind = "pool"

    def __init__(self, inner: InProcessExecutor, width: int) -> None:
        super().__init__(inner.spec)
        self.inner = inner
        self.width = width
        self.returned: list[int] = []

    def submit(self, job: Job) -> None:
        self.inner.submit(job)

    def wait(self, timeout: float | None = None) -> list[EvalResult]:
        results: list[EvalResult] = []
        while self.inner.pending() and len(results) < self.width:
            results.extend(self.inner.wait(timeout))
        results.reverse()
        self.returned.extend(r.id for r in results)
        return results

    def pending(self) -> int:
        return self.inner.pending()


def test_strategy_sees_results_in_id_order_whatever_order_they_come_back(tmp_path: Path) -> None:
    data = DataConfig(name="digits")
    config = RunConfig(
        strategy=EAGER,
        strategy_config={"candidates": 6, "slow_epochs": 1},
        setup=prepare_setup(data, seed=0, max_parallel=2),
        data=data,
        train=TrainConfig(threads=1),
        executor="pool",
        workers=2,
    )
    strategy = build_strategy(config)
    store = RunStore.create(
        tmp_path / "run", {"config": config.model_dump(mode="json")}, strategy.dump_state()
    )
    executor = ReversingExecutor(InProcessExecutor(_spec(config, store.run_dir)), width=2)
    Driver(store, strategy, executor, config, CHECKPOINT_FILES).run()
    candidates = store.candidates()
    assert len(candidates) == 6 and all(c.status == "finished" for c in candidates)
    # results really came back out of order ...
    assert executor.returned[:2] == [1, 0], executor.returned
    # ... and still every proposal happened after exactly k - width + 1 observations
    seen = [c.request.meta["observed_before"] for c in candidates]
    assert seen == [max(0, k - 1) for k in range(6)]
