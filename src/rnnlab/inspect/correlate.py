"""Which units track which feature: Pearson correlation of every unit's state with every feature."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOP = 5  # units listed per feature


@dataclass(frozen=True)
class UnitScore:
    """One unit's correlation with a feature: ``signal`` (``h`` or ``c``) of ``unit`` in ``layer``."""

    layer: int
    unit: int
    signal: str
    corr: float


@dataclass(frozen=True)
class FeatureScores:
    """What the units say about one feature.

    Attributes:
        feature: its name.
        units: the best units by ``|corr|``, best first; empty when the feature is constant.
        constant: the feature's one value when it never changes on the text (no correlation exists),
            else None.
        mean: the feature's mean over the text (for a 0/1 feature: the share of characters where it holds).
        control: the best ``|corr|`` of any unit with the feature rotated by half the text, which keeps
            its runs but breaks its alignment with the text: what chance alone reaches (None: constant).
    """

    feature: str
    units: tuple[UnitScore, ...]
    constant: float | None
    mean: float
    control: float | None


def pearson(series: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Pearson's r of every row of ``series`` with every column of ``features``.

    Args:
        series: ``(N, T)`` N units over T characters.
        features: ``(T, K)`` K features over the same characters.

    Returns:
        ``(N, K)`` float64 in [-1, 1]; 0 where a unit or a feature is constant (no linear relation can
        be measured there), never NaN.
    """
    x = np.asarray(series, dtype=np.float64)
    y = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)  # (N, T)
    y = y - y.mean(axis=0, keepdims=True)  # (T, K)
    norm = np.sqrt((x * x).sum(axis=1))[:, None] * np.sqrt((y * y).sum(axis=0))[None, :]  # (N, K)
    cov = x @ y  # (N, K)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(norm > 0, cov / np.where(norm > 0, norm, 1.0), 0.0)
    return np.clip(r, -1.0, 1.0)


def _is_constant(column: np.ndarray) -> bool:
    return len(column) == 0 or bool(np.all(column == column[0]))


def rank_units(
    signals: dict[str, np.ndarray], names: list[str], features: np.ndarray, top: int = TOP
) -> list[FeatureScores]:
    """The ``top`` units most correlated with each feature, and each feature's chance level.

    Args:
        signals: name -> ``(L, T, H)``; every unit of every layer of each is a candidate.
        names: the K feature names, in the order of ``features``' columns.
        features: ``(T, K)`` the features over the text.
        top: units listed per feature.

    Returns:
        one :class:`FeatureScores` per feature, in ``names``' order.
    """
    steps = features.shape[0]
    rotated = np.roll(features, steps // 2, axis=0)  # (T, K): the same runs, out of place
    both = np.concatenate([features, rotated], axis=1)  # (T, 2K)
    keys, blocks = [], []
    for signal, values in signals.items():  # one (H, 2K) block per (signal, layer): no (N, T) copy
        for layer, states in enumerate(values):
            blocks.append(pearson(states.T, both))
            keys += [(layer, unit, signal) for unit in range(states.shape[1])]
    r = np.concatenate(blocks) if blocks else np.zeros((0, 2 * len(names)))  # (N, 2K)
    results = []
    for k, name in enumerate(names):
        column = features[:, k]
        mean = float(column.mean()) if steps else 0.0
        if _is_constant(column):
            value = float(column[0]) if steps else 0.0
            results.append(FeatureScores(name, (), value, mean, None))
            continue
        order = np.argsort(-np.abs(r[:, k]), kind="stable")[:top]
        units = tuple(UnitScore(*keys[i], corr=float(r[i, k])) for i in order)
        control = float(np.abs(r[:, len(names) + k]).max()) if len(keys) else 0.0
        results.append(FeatureScores(name, units, None, mean, control))
    return results
