"""CycleGAN's image pool: the discriminator sees a history of generated images, not only the latest."""
from __future__ import annotations

import random

import torch


class ImagePool:
    """Keeps up to ``size`` generated images; each query returns, per image, with probability
    1/2 a stored one (replacing it by the new image) once the pool is full, else the new image.

    Randomness comes from an explicit :class:`random.Random`, and the pool is saved in training
    checkpoints, so a resumed run draws exactly what an uninterrupted run would.
    """

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif rng.random() > 0.5:
                i = rng.randrange(self.size)
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": [t.clone() for t in self.images]}

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        self.images = [t.clone() for t in state["images"]]
