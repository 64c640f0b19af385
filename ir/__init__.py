"""genomorph.ir: the graph IR, its passes and rewrites. Pure data: no torch, no lark."""

from .errors import (
    ConfigError,
    DataError,
    GenomeError,
    GenomeSemanticError,
    GenomeSyntaxError,
    GenomorphError,
    LoweringError,
    NotApplicable,
    ShapeError,
    Span,
    VerifyError,
)
from .graph import Graph, Node, NodeId
from .ops import OP_CLASSES, Op, OpBase, Shape, op_from_dict
from .stats import GraphStats, NodeStats
from .verify import verify
from .weights import ArchWeights, Weights

__all__ = [
    "OP_CLASSES",
    "ArchWeights",
    "ConfigError",
    "DataError",
    "GenomeError",
    "GenomeSemanticError",
    "GenomeSyntaxError",
    "GenomorphError",
    "Graph",
    "GraphStats",
    "LoweringError",
    "Node",
    "NodeId",
    "NodeStats",
    "NotApplicable",
    "Op",
    "OpBase",
    "Shape",
    "ShapeError",
    "Span",
    "VerifyError",
    "Weights",
    "op_from_dict",
    "verify",
]
