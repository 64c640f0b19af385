"""genomorph.lower: IR -> torch.fx modules, and weights in and out of them by node id."""

from .lower import GenomeModule, lower
from .weights import extract_weights, load_weights

__all__ = ["GenomeModule", "extract_weights", "load_weights", "lower"]
