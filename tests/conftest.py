"""Suite-wide settings.

Every test runs small networks; with pytest-xdist running one worker per core, one torch
thread per worker is much faster than several OpenMP threads fighting over the same cores.
"""

from __future__ import annotations

import torch

torch.set_num_threads(1)
