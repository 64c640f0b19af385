"""A small hand-written PyTorch CNN for 8x8 digits: the FILE.py:factory the import tests use."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // 4, 1)
        self.fc2 = nn.Conv2d(channels // 4, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class DigitsNet(nn.Module):
    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.block = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        self.se = SqueezeExcite(width)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(width * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = F.relu(x + self.se(self.block(x)))
        return self.head(torch.flatten(self.pool(x), 1))


def build(width: int = 8, classes: int = 10) -> nn.Module:
    return DigitsNet(width, classes)


class Permuting(nn.Module):
    """Uses an op the IR does not have (a permute inside a named submodule)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.mixer = Mixer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mixer(self.conv(x)).flatten(1)


class Mixer(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 1, 3, 2)


def permuting() -> nn.Module:
    return Permuting()


class Shared(nn.Module):
    """Calls one conv twice: shared weights, which IR nodes cannot express."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.first = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(self.conv(self.first(x))).mean((2, 3)))


def shared() -> nn.Module:
    return Shared()


class Unused(nn.Module):
    """Owns a layer its forward never calls."""

    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(64, 10)
        self.spare = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x.flatten(1))


def unused() -> nn.Module:
    return Unused()
