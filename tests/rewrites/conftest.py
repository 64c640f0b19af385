"""Rewrite tests run tiny networks: one torch thread is faster than several fighting for cores."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))  # rewrite_helpers

torch.set_num_threads(1)

settings.register_profile(
    "rewrites", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
