"""DARTS search-step benchmark: genomorph's supernet as the search runs it against one written by hand.

At the official search configuration (3x32x32 inputs, C=16, 8 cells, 10 classes, CPU) and
batch 16 / 64, alternately for the two contenders (median of per-round ratios):

- the **weight step** (forward, cross-entropy, backward, clip, SGD);
- the **first-order architecture step** (validation forward/backward, Adam on α);
- the **second-order architecture step** (eq. 17: unrolled weights, validation gradient,
  finite-difference Hessian-vector product);
- **peak RSS**: every configuration in a fresh child process that builds the model and runs one
  of each step; its own peak (``VmHWM``, which unlike ``ru_maxrss`` does not count the
  parent's memory at the fork); rounds interleaved, medians; a child that
  only imports torch and genomorph and builds the batches gives the baseline, subtracted for
  the "net" ratio;
- the hyperDARTS (linear hypernetwork) weight step against the DARTS weight step, both genomorph.

The hand-written contender follows the structure of the official ``model_search.py`` /
``architect.py``: one module per candidate op, every op evaluated on every edge, the default
memory format, and the second-order step builds a fresh copy of the whole model for the
unrolled weights. genomorph's contender is what ``--strategy darts`` steps through
(``search_network``): the space with the parameter-free ops that read the same value shared
(``share_pure_ops``), lowered, in channels_last, fused (``lower.fuse.fuse_mixed``); its
second-order step writes w' and w± into the module's own weights instead of copying the model.
``--ablation`` also times the plain lowering (default layout, not fused) and channels_last
without fusion against the full path. Targets (issue 8): each step <= 0.7x, peak memory <= 0.8x.
Both networks are checked to have the same parameter count. Run: ``python bench/bench_darts.py``
(``--batch 16 64``, ``--repeats N``, ``--memory-rounds N``, ``--threads T``, ``--skip-memory``,
``--ablation``).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F
from _timing import Comparison, interleaved
from genomorph.grammar.darts import darts_supernet
from genomorph.lower import lower
from genomorph.search.runtime.darts_fusion import search_network
from genomorph.search.runtime.darts_steps import ArchUpdate, SGDUpdate, classification_loss
from genomorph.search.strategies._darts_space import share_pure_ops
from torch import nn

PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
              "dil_conv_3x3", "dil_conv_5x5")  # fmt: skip


# ------------------------------------------------------------------ the hand-written supernet
def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int, pad: int, dil: int = 1, groups: int = 1):
    return [
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, kernel, stride, pad, dil, groups=groups, bias=False),
    ]


class SepConvOp(nn.Sequential):
    def __init__(self, c: int, kernel: int, stride: int, pad: int) -> None:
        super().__init__(
            *_relu_conv_bn(c, c, kernel, stride, pad, groups=c), nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=False),
            *_relu_conv_bn(c, c, kernel, 1, pad, groups=c), nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=False),
        )  # fmt: skip


class DilConvOp(nn.Sequential):
    def __init__(self, c: int, kernel: int, stride: int, pad: int) -> None:
        super().__init__(
            *_relu_conv_bn(c, c, kernel, stride, pad, dil=2, groups=c), nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=False),
        )  # fmt: skip


class Reduce(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.b = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return self.bn(torch.cat([self.a(x), self.b(x[:, :, 1:, 1:])], 1))


class ZeroOp(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


def _op(name: str, c: int, stride: int) -> nn.Module:
    if name == "none":
        return ZeroOp(stride)
    if name == "max_pool_3x3":
        return nn.Sequential(nn.MaxPool2d(3, stride, 1), nn.BatchNorm2d(c, affine=False))
    if name == "avg_pool_3x3":
        return nn.Sequential(
            nn.AvgPool2d(3, stride, 1, count_include_pad=False), nn.BatchNorm2d(c, affine=False)
        )
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else Reduce(c, c)
    kernel = int(name[-1])
    if name.startswith("sep"):
        return SepConvOp(c, kernel, stride, kernel // 2)
    return DilConvOp(c, kernel, stride, kernel - 1)


class MixedEdge(nn.Module):
    def __init__(self, c: int, stride: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(_op(p, c, stride) for p in PRIMITIVES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))  # type: ignore[return-value]


class SearchCell(nn.Module):
    def __init__(self, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0 = Reduce(c_pp, c) if reduction_prev else nn.Sequential(
            *_relu_conv_bn(c_pp, c, 1, 1, 0), nn.BatchNorm2d(c, affine=False))  # fmt: skip
        self.pre1 = nn.Sequential(*_relu_conv_bn(c_p, c, 1, 1, 0), nn.BatchNorm2d(c, affine=False))
        self.edges = nn.ModuleList(
            MixedEdge(c, 2 if reduction and j < 2 else 1) for i in range(4) for j in range(2 + i)
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states, offset = [self.pre0(s0), self.pre1(s1)], 0
        for _ in range(4):
            s = sum(self.edges[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)  # type: ignore[arg-type]
        return torch.cat(states[-4:], dim=1)


class HandSupernet(nn.Module):
    def __init__(self, c: int = 16, classes: int = 10, layers: int = 8) -> None:
        super().__init__()
        self.args = (c, classes, layers)
        self.stem = nn.Sequential(nn.Conv2d(3, 3 * c, 3, padding=1, bias=False), nn.BatchNorm2d(3 * c))
        c_pp, c_p, c_cur, reduction_prev = 3 * c, 3 * c, c, False
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            c_cur *= 2 if reduction else 1
            self.cells.append(SearchCell(c_pp, c_p, c_cur, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c_cur
        self.classifier = nn.Linear(c_p, classes)
        self.alphas_normal = (1e-3 * torch.randn(14, 8)).requires_grad_()
        self.alphas_reduce = (1e-3 * torch.randn(14, 8)).requires_grad_()

    def arch_parameters(self) -> list[torch.Tensor]:
        return [self.alphas_normal, self.alphas_reduce]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            alphas = self.alphas_reduce if cell.reduction else self.alphas_normal
            s0, s1 = s1, cell(s0, s1, F.softmax(alphas, dim=-1))
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))

    def new(self) -> HandSupernet:
        """A fresh model with this one's α (what the official second-order step builds)."""
        other = HandSupernet(*self.args)
        for a, b in zip(other.arch_parameters(), self.arch_parameters(), strict=True):
            a.data.copy_(b.data)
        return other


def hand_second_order(model: HandSupernet, arch_opt: torch.optim.Optimizer, w_opt: torch.optim.SGD,
                      train: tuple, val: tuple) -> None:  # fmt: skip
    """The official Architect._backward_step_unrolled: a new model holds the unrolled weights."""
    lr, decay, mom = w_opt.param_groups[0]["lr"], w_opt.param_groups[0]["weight_decay"], 0.9
    params = list(model.parameters())
    loss = F.cross_entropy(model(train[0]), train[1])
    grads = torch.autograd.grad(loss, params)
    unrolled = model.new()
    state = copy.deepcopy(model.state_dict())
    unrolled.load_state_dict(state, strict=False)
    with torch.no_grad():
        for p_new, p, g in zip(unrolled.parameters(), params, grads, strict=True):
            buf = w_opt.state.get(p, {}).get("momentum_buffer")
            p_new.copy_(p - lr * (g + decay * p + (mom * buf if buf is not None else 0)))
    arch_opt.zero_grad()
    val_loss = F.cross_entropy(unrolled(val[0]), val[1])
    val_loss.backward()
    d_alpha = [a.grad for a in unrolled.arch_parameters()]
    v = [p.grad for p in unrolled.parameters()]
    eps = 0.01 / torch.cat([t.reshape(-1) for t in v]).norm()
    sides = []
    for sign in (1, -2):
        with torch.no_grad():
            for p, d in zip(params, v, strict=True):
                p.add_(d, alpha=float(sign * eps))
        sides.append(torch.autograd.grad(F.cross_entropy(model(train[0]), train[1]), model.arch_parameters()))
    with torch.no_grad():
        for p, d in zip(params, v, strict=True):
            p.add_(d, alpha=float(eps))
    for a, g, gp, gm in zip(model.arch_parameters(), d_alpha, *sides, strict=True):
        a.grad = g - lr * (gp - gm) / (2 * eps)
    arch_opt.step()


# ------------------------------------------------------------------ contenders
#: genomorph's ways of running the supernet: (channels_last, fused); "genomorph" is the search's
LAYOUTS = {"genomorph": (True, True), "plain": (False, False), "channels_last": (True, False)}


class Contender:
    def __init__(self, kind: str, batch: int, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.kind = kind
        gen = torch.Generator().manual_seed(seed)
        self.train = (
            torch.randn(batch, 3, 32, 32, generator=gen),
            torch.randint(0, 10, (batch,), generator=gen),
        )
        self.val = (
            torch.randn(batch, 3, 32, 32, generator=gen),
            torch.randint(0, 10, (batch,), generator=gen),
        )
        if kind == "hand":
            self.model: nn.Module = HandSupernet()
            net: nn.Module = self.model
        else:
            # the space as the search runs it: parameter-free ops on the same value shared
            self.model = lower(share_pure_ops(darts_supernet(16, 8, 10))[0])
            cl, fuse = LAYOUTS["genomorph" if kind == "hyper" else kind]
            net = search_network(self.model, torch.device("cpu"), fuse, cl)  # type: ignore[arg-type]
            if kind == "hyper":
                from genomorph.search.runtime.hypernet import HyperSupernet

                net = HyperSupernet(self.model, "linear", run=net)  # type: ignore[arg-type]
        self.model.train()
        params = net.weight_parameters() if kind == "hyper" else list(self.model.parameters())  # type: ignore[operator]
        self.weights = SGDUpdate(params, 0.025, 0.9, 3e-4, 5.0)
        self.arch1 = ArchUpdate(self.model.arch_parameters(), 3e-4, (0.5, 0.999), 1e-3, order=1)  # type: ignore[operator]
        self.arch2 = ArchUpdate(self.model.arch_parameters(), 3e-4, (0.5, 0.999), 1e-3, order=2)  # type: ignore[operator]
        self.loss = classification_loss(net)
        self.weight_step()  # momentum buffers exist, as in a running search

    def weight_step(self) -> None:
        self.weights.step(self.loss, self.train)

    def arch_first(self) -> None:
        self.arch1.step(self.loss, self.val)

    def arch_second(self) -> None:
        if self.kind == "hand":
            hand_second_order(self.model, self.arch2.optimizer, self.weights.optimizer, self.train, self.val)  # type: ignore[arg-type]
        else:
            self.arch2.step(self.loss, self.val, self.train, self.weights)


# ------------------------------------------------------------------ peak memory
def _child(kind: str, batch: int, threads: int) -> None:
    """What a measured child process runs (``--child``): build (one weight step), then one of each
    step; every step holds one forward's activations at its peak, so more steps add little."""
    torch.set_num_threads(threads)
    if kind == "baseline":  # interpreter, torch, genomorph and the batches, no model
        gen = torch.Generator().manual_seed(0)
        _ = [torch.randn(batch, 3, 32, 32, generator=gen) for _ in range(2)]
    else:
        c = Contender(kind, batch)
        c.arch_second()
        c.arch_first()
        c.weight_step()
    # VmHWM is this process image's own peak; ru_maxrss after exec also counts the parent's
    # memory at the fork (the kernel carries the old image's high-water mark over)
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print(f"VmHWM {peak}", flush=True)


def peak_rss_mib(kind: str, batch: int, threads: int) -> float:
    """Peak RSS (VmHWM) of a fresh child process running `_child`, in MiB."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, str(batch), str(threads)]
    done = subprocess.run(cmd, cwd=os.path.dirname(os.path.abspath(__file__)), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"the {kind} child for batch {batch} failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    line = next(x for x in done.stdout.splitlines() if x.startswith("VmHWM "))
    return int(line.split()[1]) / 1024  # kB


def memory(batch: int, threads: int, rounds: int) -> None:
    peaks: dict[str, list[float]] = {"genomorph": [], "hand": [], "baseline": []}
    for r in range(rounds):  # interleaved: which contender runs first alternates
        order = ("genomorph", "hand", "baseline") if r % 2 == 0 else ("hand", "genomorph", "baseline")
        for kind in order:
            peaks[kind].append(peak_rss_mib(kind, batch, threads))
    a, b, base = (statistics.median(peaks[k]) for k in ("genomorph", "hand", "baseline"))
    ratios = [x / y for x, y in zip(peaks["genomorph"], peaks["hand"], strict=True)]
    print(
        f"peak RSS (median of {rounds}): genomorph {a:.0f} MiB, by hand {b:.0f} MiB, ratio "
        f"{statistics.median(ratios):.2f}; baseline (interpreter + torch + genomorph) {base:.0f} MiB, "
        f"net of it {a - base:.0f} vs {b - base:.0f} MiB, ratio {(a - base) / (b - base):.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "BATCH", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    for batch in args.batch:
        ours, hand = Contender("genomorph", batch), Contender("hand", batch)
        n_ours = sum(p.numel() for p in ours.model.parameters())
        n_hand = sum(p.numel() for p in hand.model.parameters())
        assert n_ours == n_hand, (n_ours, n_hand)
        print(
            f"\nbatch {batch}, {threads} thread(s), {n_ours:,} weights; targets: steps <= 0.7, memory <= 0.8"
        )
        print("step                              genomorph s  reference s  ratio (median)", flush=True)

        def report(c: Comparison) -> None:  # one line per measurement: a slow machine still shows some
            print(
                f"{c.name_a:<32}  {c.median_a:>11.3f}  {c.median_b:>11.3f}  {c.median_ratio:>14.2f}",
                flush=True,
            )

        for what in ("weight_step", "arch_first", "arch_second"):
            report(interleaved(f"genomorph {what}", getattr(ours, what), f"by hand {what}",
                               getattr(hand, what), repeats=args.repeats))  # fmt: skip
        del hand
        hyper = Contender("hyper", batch)
        report(interleaved("hyperDARTS weight step", hyper.weight_step, "DARTS weight step",
                           ours.weight_step, repeats=args.repeats))  # fmt: skip
        del hyper
        if args.ablation:  # what each part of the search's path buys (reference: the full path)
            for kind in ("plain", "channels_last"):
                other = Contender(kind, batch)
                report(interleaved(f"{kind} weight step", other.weight_step, "genomorph weight step",
                                   ours.weight_step, repeats=args.repeats))  # fmt: skip
                del other
        del ours
        if not args.skip_memory:
            memory(batch, threads, args.memory_rounds)


if __name__ == "__main__":
    main()
