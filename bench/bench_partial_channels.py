"""PC-DARTS benchmark: memory and time of a search step with partial channels K against K=1.

At the official search configuration (3x32x32 inputs, C=16, 8 cells, 10 classes, CPU), the
supernet the darts strategy searches (``ir.partial_channels`` of the DARTS cell space, then
``share_pure_ops``) is lowered for every K, and one **search step** is what a search iteration
does: the architecture step (first order by default, ``--order 2`` for eq. 17) on a validation
batch, then the weight step (SGD with momentum, clipping) on a training batch.

- **peak RSS**: a fresh process per K builds its supernet, runs one step, records ``ru_maxrss``
  (the whole process: Python, torch, the model) and the growth of ``ru_maxrss`` over that step
  (what the step's activations and gradients add on top of the built model);
- **step time**: the K > 1 supernets against K=1 in one process, alternating (median of per-round
  ratios, ``bench/_timing.py``);
- the weights and the candidate-op weights of every supernet (IR counts).

Run: ``python bench/bench_partial_channels.py`` (``--k 1 2 4``, ``--batch 64``, ``--order 1``,
``--repeats N``, ``--threads T``, ``--skip-time``, ``--skip-memory``).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import resource

import torch
from _timing import interleaved
from genomorph.grammar.darts import darts_supernet
from genomorph.ir import Graph
from genomorph.ir.partial_channels import partial_channels
from genomorph.lower import lower
from genomorph.search.runtime.darts_steps import ArchUpdate, SGDUpdate, classification_loss
from genomorph.search.strategies._darts_space import candidate_nodes, share_pure_ops


def supernet(k: int) -> Graph:
    """The space as the darts strategy searches it with ``--partial-channels k``."""
    graph = darts_supernet(16, 8, 10)
    return share_pure_ops(partial_channels(graph, k) if k > 1 else graph)[0]


def candidate_weights(graph: Graph) -> int:
    nodes = [nid for group in candidate_nodes(graph).values() for nid in group]
    return sum(
        math.prod(s) for nid in nodes for s in graph.op(nid).param_shapes(graph.input_shapes(nid)).values()
    )


class Search:
    """One lowered supernet with its two optimisers and a fixed training and validation batch."""

    def __init__(self, k: int, batch: int, order: int, seed: int = 0) -> None:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        self.train = (
            torch.randn(batch, 3, 32, 32, generator=gen),
            torch.randint(0, 10, (batch,), generator=gen),
        )
        self.val = (
            torch.randn(batch, 3, 32, 32, generator=gen),
            torch.randint(0, 10, (batch,), generator=gen),
        )
        self.model = lower(supernet(k)).train()
        self.weights = SGDUpdate(list(self.model.parameters()), 0.025, 0.9, 3e-4, 5.0)
        self.arch = ArchUpdate(self.model.arch_parameters(), 3e-4, (0.5, 0.999), 1e-3, order=order)
        self.loss = classification_loss(self.model)

    def step(self) -> None:
        self.arch.step(self.loss, self.val, self.train, self.weights)
        self.weights.step(self.loss, self.train)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak(k: int, batch: int, order: int, threads: int, queue: multiprocessing.Queue) -> None:
    torch.set_num_threads(threads)
    search = Search(k, batch, order)
    built = _rss_mib()
    search.step()
    queue.put((built, _rss_mib()))


def peak_rss(k: int, batch: int, order: int, threads: int) -> tuple[float, float]:
    """``(peak RSS after building, peak RSS after one step)`` of a fresh process, MiB."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak, args=(k, batch, order, threads, queue))
    proc.start()
    built, peak = queue.get()
    proc.join()
    return float(built), float(peak)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--k", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--order", type=int, choices=(1, 2), default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-time", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    ks = sorted(set(args.k) | {1})
    print(
        f"DARTS cell space C=16, 8 cells, 3x32x32, batch {args.batch}, order {args.order}, {threads} thread(s)"
    )
    print(
        "K   weights     cell-op weights  peak RSS MiB  step adds MiB  peak / K=1  step-added / K=1",
        flush=True,
    )
    base: tuple[float, float] | None = None
    for k in [] if args.skip_memory else ks:
        graph = supernet(k)
        built, peak = peak_rss(k, args.batch, args.order, threads)
        base = base or (peak, peak - built)
        print(
            f"{k:<3} {graph.stats().params:>10,}  {candidate_weights(graph):>15,}  {peak:>12.0f}  "
            f"{peak - built:>13.0f}  {peak / base[0]:>10.2f}  {(peak - built) / max(base[1], 1.0):>16.2f}",
            flush=True,
        )
    if args.skip_time:
        return
    plain = Search(1, args.batch, args.order)
    plain.step()  # momentum buffers exist, as in a running search
    print("step time            K>1 s   K=1 s   ratio (median)", flush=True)
    for k in ks[1:]:
        search = Search(k, args.batch, args.order)
        search.step()
        c = interleaved(f"K={k}", search.step, "K=1", plain.step, repeats=args.repeats)
        print(f"{c.name_a:<18} {c.median_a:>7.2f} {c.median_b:>7.2f} {c.median_ratio:>16.2f}", flush=True)


if __name__ == "__main__":
    main()
