"""`--device auto|cpu|cuda` as a torch device, for every command that takes it."""

import torch

from engine.errors import BadInputError


def resolve_device(name: str) -> torch.device:
    """auto: CUDA when torch sees a GPU, else the CPU; asking for CUDA without one is bad
    input (exit 2)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadInputError("--device cuda was asked for but no CUDA GPU is available to torch")
    return torch.device(name)
