"""The frame contract: every source yields it, every sink takes it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from streamnst.core.errors import InputError


def check_image(image: np.ndarray, what: str = "frame") -> np.ndarray:
    """Return `image` if it is an HxWx3 uint8 array, else raise InputError."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"{what} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError(
            f"{what} must be an HxWx3 uint8 RGB array, got shape {image.shape} {image.dtype}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"{what} is empty ({image.shape[1]}x{image.shape[0]})")
    return image


@dataclass(frozen=True)
class Frame:
    """An HxWx3 uint8 RGB image with its capture time (monotonic seconds) and index."""

    image: np.ndarray
    index: int = 0
    timestamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        check_image(self.image)

    def with_image(self, image: np.ndarray) -> Frame:
        """The same capture (index, timestamp) carrying a new picture."""
        return Frame(image=image, index=self.index, timestamp=self.timestamp)
