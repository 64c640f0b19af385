"""hyperDARTS (paper 003 Algorithm 2): hypernetworks that generate a supernet's cell weights from λ.

One hypernetwork per architecture group (normal, reduce) maps that group's λ, flattened (14 x 8 =
112 values in the DARTS cell), to the flat vector of every weight inside the candidate ops of that
group's mixed nodes, in every cell of the group (`candidate_nodes`). Weights outside the cells
(stem, preprocessing, classifier) stay ordinary parameters (§5.2.1, method 1).

- ``linear`` (hyperDARTS-1): ``w = b + W λ`` with ``#λ x #w`` entries in W;
- ``mlp`` (hyperDARTS-2): ``w = b + W σ(A λ + c)``, one hidden layer of ``#λ / 2`` sigmoid units.

The output layer starts at zero and ``b`` at the supernet's own initial weights, so the first
forward is exactly the ordinary supernet's. λ is both the hypernetworks' input and the mixing
weight of the mixed ops, so the architecture step descends the full dL_val/dλ: the response
gradient through the hypernetwork plus the direct one through the softmax.

The supernet runs with ``torch.func.functional_call``, the generated tensors standing in for
the cell parameters, which the weight optimiser then leaves alone (`HypernetStep` copies the
generated values into them after each update, for validation and checkpoints).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from genomorph.ir import Graph
from genomorph.lower import GenomeModule
from genomorph.lower.functional import mixed
from genomorph.lower.modules import ARCH
from genomorph.search.runtime.darts_recipe import NET, DartsWeightStep
from genomorph.search.runtime.steps import StepState, TrainContext
from genomorph.search.strategies._darts_options import DartsRecipeOptions
from genomorph.search.strategies._darts_space import candidate_nodes
from torch import Tensor, fx, nn
from torch.func import functional_call

Kind = Literal["linear", "mlp"]


class GroupHyperNet(nn.Module):
    """λ of one group (any shape) -> the flat vector of that group's cell weights."""

    def __init__(self, n_in: int, init: Tensor, kind: Kind) -> None:
        super().__init__()
        self.kind = kind
        self.hidden = nn.Linear(n_in, max(1, n_in // 2)) if kind == "mlp" else None
        features = n_in if self.hidden is None else self.hidden.out_features
        self.weight = nn.Parameter(torch.zeros(init.numel(), features))
        self.bias = nn.Parameter(init.detach().clone().reshape(-1))

    def forward(self, lam: Tensor) -> Tensor:
        h = lam.reshape(-1)
        if self.hidden is not None:
            h = torch.sigmoid(self.hidden(h))
        return torch.addmv(self.bias, self.weight, h)


def cell_modules(module: GenomeModule) -> dict[str, list[str]]:
    """Group -> names of the submodules inside that group's candidate ops, read off the fx graph.

    The same rule as the IR's `candidate_nodes`: from each candidate of a mixed call, back along
    values that have this one reader, up to the first value something else also reads (a cell
    state, the stem). Identity candidates emit no code and so own nothing.
    """
    arch = getattr(module, ARCH, None)
    found: dict[str, list[str]] = {}
    for node in module.graph.nodes:
        if node.op != "call_function" or node.target is not mixed:
            continue
        weights = node.args[0]
        group = arch.groups[weights.args[1]] if arch is not None else "normal"  # type: ignore[union-attr]
        names = found.setdefault(group, [])
        for cand in node.args[2:]:
            current = cand
            while isinstance(current, fx.Node) and current.op != "placeholder" and len(current.users) == 1:
                if current.op == "call_module" and current.target not in names:
                    names.append(str(current.target))
                inputs = [a for a in current.all_input_nodes]
                if len(inputs) != 1:
                    break
                current = inputs[0]
    return found


class HyperSupernet(nn.Module):
    """A lowered supernet whose cell weights come from one hypernetwork per architecture group."""

    def __init__(self, module: GenomeModule, kind: Kind, run: nn.Module | None = None) -> None:
        super().__init__()
        self.supernet = module
        #: what the forward calls: ``module`` or a module sharing its parameters under the same
        #: names (the fused supernet, `lower.fuse`); in a tuple so it is not a second submodule
        self.run: tuple[nn.Module] = (module if run is None else run,)
        params = dict(module.named_parameters())
        alphas = dict(module.named_arch_parameters())
        self.groups: list[str] = []
        self.names: dict[str, list[str]] = {}
        self.shapes: dict[str, list[torch.Size]] = {}
        nets = {}
        for group, submodules in cell_modules(module).items():
            prefixes = tuple(f"{m}." for m in submodules)
            names = [n for n in params if n.startswith(prefixes)]
            if not names or group not in alphas:
                continue
            init = torch.cat([params[n].detach().reshape(-1) for n in names])
            nets[group] = GroupHyperNet(alphas[group].numel(), init, kind)
            self.groups.append(group)
            self.names[group] = names
            self.shapes[group] = [params[n].shape for n in names]
        self.hypernets = nn.ModuleDict(nets)
        self.generated_names = {n for names in self.names.values() for n in names}

    def arch_parameters(self) -> list[Tensor]:
        return self.supernet.arch_parameters()

    def weight_parameters(self) -> list[nn.Parameter]:
        """What the weight step trains: the hypernetworks and every weight outside the cells."""
        outside = [p for n, p in self.supernet.named_parameters() if n not in self.generated_names]
        return [*self.hypernets.parameters(), *outside]

    def generated(self) -> dict[str, Tensor]:
        alphas = dict(self.supernet.named_arch_parameters())
        out: dict[str, Tensor] = {}
        for group in self.groups:
            flat = self.hypernets[group](alphas[group])
            for name, shape, part in zip(
                self.names[group], self.shapes[group], _split(flat, self.shapes[group]), strict=True
            ):
                out[name] = part.view(shape)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return functional_call(self.run[0], self.generated(), (x,), strict=False)

    @torch.no_grad()
    def materialise(self) -> None:
        """Write the generated weights at the current λ into the supernet (validation, checkpoints)."""
        params = dict(self.supernet.named_parameters())
        for name, t in self.generated().items():
            params[name].copy_(t)

    def hypernet_size(self) -> int:
        return sum(p.numel() for p in self.hypernets.parameters())


class HypernetStep(DartsWeightStep):
    """hyperDARTS' lower level: SGD on the hypernetworks and the weights outside the cells.

    Owns the hypernetworks (outside the lowered module, so their state is this step's); after
    every update the generated weights are written into the module, so validation, the epoch
    checkpoint and the final weights see the supernet the hypernetworks give at the current λ.
    """

    name = "hypernet"

    def __init__(self, ctx: TrainContext, opts: DartsRecipeOptions) -> None:
        run = ctx.extra.get(NET)  # the fused supernet the recipe prepared, if any
        self.net = HyperSupernet(ctx.module, opts.hypernet, run).to(ctx.device)  # type: ignore[arg-type]
        ctx.extra[NET] = self.net
        super().__init__(ctx, opts, self.net.weight_parameters())
        self.net.materialise()

    def step(self, epoch: int, i: int) -> None:
        super().step(epoch, i)
        self.net.materialise()

    def hypernet_size(self) -> int:
        return self.net.hypernet_size()

    def state_dict(self) -> StepState:
        return {**super().state_dict(), "hypernets": self.net.hypernets.state_dict()}

    def load_state_dict(self, state: StepState) -> None:
        self.net.hypernets.load_state_dict(state["hypernets"])
        super().load_state_dict(state)
        self.net.materialise()


def _split(flat: Tensor, shapes: Sequence[torch.Size]) -> list[Tensor]:
    sizes = [int(torch.Size(s).numel()) for s in shapes]
    return list(torch.split(flat, sizes))


def linear_hypernet_size(graph: Graph) -> int:
    """Entries of the linear hypernetworks of ``graph`` (W and b), from the IR alone."""
    from genomorph.ir.stats import arch_param_shapes

    shapes = arch_param_shapes(graph)
    total = 0
    for group, nodes in candidate_nodes(graph).items():
        n_w = _node_params(graph, nodes)
        n_lam = 1
        for d in shapes.get(group, ()):
            n_lam *= d
        total += n_w * n_lam + n_w
    return total


def _node_params(graph: Graph, nodes: Sequence[int]) -> int:
    shapes = graph.shapes()
    total = 0
    for nid in nodes:
        ins = [shapes[i] for i in graph.inputs(nid)]
        for shape in graph.op(nid).param_shapes(ins).values():  # type: ignore[attr-defined]
            n = 1
            for d in shape:
                n *= d
            total += n
    return total


__all__ = ["GroupHyperNet", "HyperSupernet", "HypernetStep", "cell_modules", "linear_hypernet_size"]
