"""Frozen-feature linear probe: the cheap check of an initialization's quality.

Pre-logit features of a class-balanced train subset and a test subset, standardized, logistic regression
(C = 1). It isolates the quality of an init from any fine-tuning recipe.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .constants import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["extract_features", "linear_probe"]


@torch.no_grad()
def extract_features(model: torch.nn.Module, loader, device: Any = "cpu") -> tuple[np.ndarray, np.ndarray]:
    model = model.to(device).eval()
    feats, labels = [], []
    for x, y in loader:
        f = model.forward_head(model.forward_features(x.to(device)), pre_logits=True)
        feats.append(f.float().cpu().numpy())
        labels.append(np.asarray(y))
    return np.concatenate(feats), np.concatenate(labels)


def linear_probe(
    model: torch.nn.Module,
    dataset: str = "fashion-mnist",
    *,
    n_train: int = 2000,
    n_test: int = 1000,
    img_size: int | None = None,
    seed: int = 0,
    device: Any = "cpu",
    batch_size: int = 128,
) -> float:
    """Test accuracy in [0, 1] of a logistic regression on the model's frozen pre-logit features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from .data import load_dataset, make_loader

    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = img_size or model.patch_embed.img_size[0]
    in_chans = model.patch_embed.proj.in_channels
    kw = dict(
        img_size=size,
        in_chans=in_chans,
        mean=tuple(cfg.get("mean", IMAGENET_MEAN)),
        std=tuple(cfg.get("std", IMAGENET_STD)),
        seed=seed,
    )
    tr = load_dataset(dataset, "train", subset=n_train, **kw)
    te = load_dataset(dataset, "test", subset=n_test, **kw)
    xtr, ytr = extract_features(model, make_loader(tr, batch_size, shuffle=False), device)
    xte, yte = extract_features(model, make_loader(te, batch_size, shuffle=False), device)
    scaler = StandardScaler().fit(xtr)
    clf = LogisticRegression(C=1.0, max_iter=2000)
    clf.fit(scaler.transform(xtr), ytr)
    return float((clf.predict(scaler.transform(xte)) == yte).mean())
