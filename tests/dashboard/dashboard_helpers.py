"""Helpers of the dashboard tests (importable by name from tests/dashboard, and by the bench).

- `make_run`: a run directory written through the real `RunStore` (real SQLite, WAL), with
  candidates whose metrics are drawn from a seeded RNG: what a search writes, without training;
- `serve_in_thread`: the real uvicorn server on a port the OS picks, stopped by the caller;
- `raw_get`: an HTTP GET that sends the path byte for byte (no client-side normalisation of
  ``..`` or percent escapes), for the path-traversal tests.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genomorph.search.core.protocol import Budget, EvalRequest, EvalResult, Metrics
from genomorph.search.core.store import RunStore

GENOME = "input 1x8x8\nconv({w}, 3, padding=1) bn relu\ngap linear(10)\n"
CONFIG = {
    "strategy": "synthetic",
    "strategy_config": {},
    "setup": {
        "seed": 0,
        "dataset": {
            "name": "digits",
            "task": "classification",
            "input_shape": [1, 8, 8],
            "num_outputs": 10,
            "train_size": 1151,
            "val_size": 287,
            "test_size": 359,
        },
    },
    "executor": "inprocess",
    "workers": 1,
}


def request(
    i: int, parent: int | None, meta: dict[str, Any] | None = None, final: bool = False
) -> EvalRequest:
    rewrites = () if parent is None else ({"rewrite": "widen", "text": f"widen: made #{i} from #{parent}"},)
    return EvalRequest(
        genome=GENOME.format(w=4 + i % 60),
        budget=Budget(epochs=2, train_on="train+val" if final else "train", test=final),
        parent=parent,
        rewrites=rewrites,
        meta=meta or {"role": "child"},
    )


def result(i: int, req: EvalRequest, rng: random.Random, *, failed: bool = False) -> EvalResult:
    if failed:
        return EvalResult(id=i, request=req, status="failed", reason="training loss became nan in epoch 1")
    score = rng.uniform(0.8, 0.99)
    metrics = Metrics(
        objective=score,
        val_accuracy=None if req.budget.train_on != "train" else score,
        test_accuracy=score if req.budget.test else None,
        train_accuracy=min(1.0, score + 0.01),
        params=rng.randint(1_000, 500_000),
        macs=rng.randint(10_000, 5_000_000),
        epochs=2,
        history=({"epoch": 1.0, "lr": 0.05, "train_loss": 0.9, "val_loss": 0.8, "val_accuracy": score},),
    )
    return EvalResult(
        id=i, request=req, status="finished", metrics=metrics, train_s=0.5, eval_s=0.1, setup_s=0.01
    )


def make_run(
    root: Path,
    n: int,
    *,
    seed: int = 0,
    meta: Callable[[int], dict[str, Any]] | None = None,
    failed_every: int = 0,
    state: dict[str, Any] | None = None,
) -> RunStore:
    """A run with ``n`` finished candidates (each the child of a random earlier one); left open."""
    rng = random.Random(seed)
    store = RunStore.create(root, {"config": CONFIG}, state or {})
    add(store, range(n), rng, meta=meta, failed_every=failed_every, state=state or {})
    return store


def add(
    store: RunStore,
    ids: range,
    rng: random.Random,
    *,
    meta: Callable[[int], dict[str, Any]] | None = None,
    failed_every: int = 0,
    finish: bool = True,
    state: dict[str, Any] | None = None,
) -> list[EvalRequest]:
    requests = [request(i, rng.randrange(i) if i else None, meta(i) if meta else None) for i in ids]
    store.add_candidates([(i, r, i) for i, r in zip(ids, requests, strict=True)], state or {})
    if finish:
        for i, r in zip(ids, requests, strict=True):
            store.record_result(
                result(i, r, rng, failed=bool(failed_every) and i % failed_every == failed_every - 1)
            )
    return requests


@contextmanager
def serve_in_thread(app: Any) -> Iterator[int]:
    """Run ``app`` under uvicorn on 127.0.0.1 and a free port; yields the port."""
    import uvicorn
    from genomorph.cli.dashboard.server import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def raw_get(port: int, path: str, host: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_host=host is not None, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def get_json(port: int, path: str) -> tuple[int, Any]:
    status, body, _ = raw_get(port, path)
    return status, json.loads(body)
