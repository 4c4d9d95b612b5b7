"""Content photos for training: any folder of images, random crops and flips.

Photos are decoded once and kept in memory at a modest size: on a 2-core CPU the
loss network, not JPEG decoding, must be the bottleneck.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from streamnst.core.errors import InputError
from streamnst.media.imageio import IMAGE_SUFFIXES, read_image, resize_short_side


def list_images(root: str | Path) -> list[Path]:
    """Every image below `root` (recursive), sorted for reproducibility."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: training data folder not found")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and p.is_file())
    if not files:
        raise InputError(f"{root}: no images found (png, jpg, webp, bmp, tiff)")
    return files


def fingerprint(root: str | Path, files: list[Path]) -> dict:
    """What a run was trained on, so a user can tell whether their photos are the same:
    the folder's name, the image count and a hash of every file's path and bytes."""
    import hashlib

    root = Path(root)
    total = hashlib.sha256()
    for path in files:  # list_images sorts them
        total.update(path.relative_to(root).as_posix().encode() + b"\0")
        total.update(hashlib.sha256(path.read_bytes()).digest())
    return {"data": root.resolve().name, "data_images": len(files),
            "data_sha256": total.hexdigest()[:16]}


class CropSampler:
    """Random size x size crops (and horizontal flips) from photos held in memory."""

    def __init__(self, files: list[Path], size: int, scale_slack: float = 1.3) -> None:
        if not files:
            raise InputError("no training images left after holding out the sample images")
        self.size = size
        short = max(size, round(size * scale_slack))
        self.images = [torch.from_numpy(resize_short_side(read_image(p), short))
                       for p in files]
        self.photos = len(self.images)  # the folder's; images added later come after them
        self.short = short

    def add(self, rgb, keep: int) -> None:
        """Draw crops from `rgb` (HxWx3 uint8) too, keeping the `keep` newest added images
        (a live camera's frames, beside the folder's photos)."""
        self.images.append(torch.from_numpy(np.ascontiguousarray(
            resize_short_side(rgb, self.short))))
        if len(self.images) - self.photos > keep:
            del self.images[self.photos]

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """Nx3xSxS float in [0,1]; every random choice comes from `gen` (resumable)."""
        out = torch.empty(n, 3, self.size, self.size)
        for i in range(n):
            img = self.images[int(torch.randint(len(self.images), (1,), generator=gen))]
            h, w = img.shape[:2]
            y = int(torch.randint(h - self.size + 1, (1,), generator=gen))
            x = int(torch.randint(w - self.size + 1, (1,), generator=gen))
            crop = img[y:y + self.size, x:x + self.size].permute(2, 0, 1).float() / 255.0
            if torch.rand((), generator=gen) < 0.5:
                crop = crop.flip(-1)
            out[i] = crop
        return out
