"""Counting n-grams: every k-gram of a training stream, k = 1..n, numbered exactly (no hashing).

Contexts are numbered so that every lookup is a ``np.searchsorted``: the id of a length-``m`` context
is the rank of the pair (id of its length-``m − 1`` suffix, its oldest id) among the pairs seen in
training. Counting sorts each order's keys once; the sort is a value sort of ``(key << b) | position``
(numpy's SIMD sort), which gives both the sorted keys and their first positions several times faster
than an argsort (``np.unique``), with the same result.
"""

from __future__ import annotations

import numpy as np
import torch


def as_ids(ids, vocab_size: int, name: str) -> np.ndarray:
    """``ids`` as a flat int64 array, checked to lie in ``[0, vocab_size)``.

    Raises:
        ValueError: an id outside the vocabulary.
    """
    arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(f"{name} ids must lie in [0, {vocab_size}); got [{arr.min()}, {arr.max()}]")
    return arr


def lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(index, found)``: where each query sits in ``sorted_keys`` (clipped into range) and whether it is
    there."""
    if sorted_keys.size == 0:
        return np.zeros_like(queries), np.zeros(queries.shape, dtype=bool)
    index = np.minimum(np.searchsorted(sorted_keys, queries), sorted_keys.size - 1)
    return index, sorted_keys[index] == queries


def unique_sorted(x: np.ndarray, inverse: bool = True):
    """``(unique keys, inverse or None, first position of each, count of each)`` of the non-negative
    int64 array ``x``: ``np.unique(x, return_index=True, return_inverse=True, return_counts=True)``,
    computed with one value sort of ``(x << b) | position`` where that fits in 63 bits."""
    n = x.size
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, (empty if inverse else None), empty, empty
    bits = max(int(n - 1).bit_length(), 1)
    if int(x.max()).bit_length() + bits <= 63:
        packed = (x << bits) | np.arange(n, dtype=np.int64)
        packed.sort()
        perm = packed & ((1 << bits) - 1)  # ties keep position order: the first is the first occurrence
        keys = packed >> bits
    else:
        perm = np.argsort(x, kind="stable")
        keys = x[perm]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    inv = None
    if inverse:
        inv = np.empty(n, dtype=np.int64)
        inv[perm] = np.cumsum(new) - 1
    return keys[starts], inv, perm[starts], np.diff(np.append(starts, n))


class NGramCounts:
    """Every k-gram count of a training stream, k = 1..max_order, shared by the models of each order.

    For each length ``m`` of context, ``context_keys[m]`` are the sorted pair keys
    ``suffix_context_id * V + oldest_id`` (a context's id is its index there; the empty context is 0).
    For each order ``k``, ``keys[k]`` are the sorted k-gram keys ``context_id * V + w``, ``raw[k]``
    their counts and ``continuation[k]`` (k < max_order) their numbers of distinct left extensions.

    Args:
        train_ids: the training stream, ids in ``[0, vocab_size)``.
        vocab_size: ``V``.
        max_order: the largest ``n`` counted.
    """

    def __init__(self, train_ids, vocab_size: int, max_order: int) -> None:
        if vocab_size < 1 or max_order < 1:
            raise ValueError(f"need vocab_size >= 1 and max_order >= 1, got {vocab_size}, {max_order}")
        t = as_ids(train_ids, vocab_size, "train")
        n, v = t.size, vocab_size
        self.vocab_size, self.max_order, self.num_counted = vocab_size, max_order, n
        self.context_keys: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        self.keys: dict[int, np.ndarray] = {}
        self.raw: dict[int, np.ndarray] = {}
        self.continuation: dict[int, np.ndarray] = {}
        cid = np.zeros(n, dtype=np.int64)  # context id of length m - 1 at each position (-1: none)
        for k in range(1, max_order + 1):
            m = k - 1
            suffix_cid = cid
            if m > 0:
                pairs = cid[m:] * v + t[: max(n - m, 0)]  # (n - m,): suffix context, oldest id
                keys, inverse, _, _ = unique_sorted(pairs)
                self.context_keys.append(keys)
                cid = np.concatenate([np.full(m, -1, dtype=np.int64), inverse])
            grams = cid[m:] * v + t[m:]  # (n - m,) k-gram keys
            self.keys[k], _, first, self.raw[k] = unique_sorted(grams, inverse=False)
            if k > 1:
                # Each distinct k-gram adds one left extension to its (k-1)-gram suffix.
                pos = first + m
                index, _ = lookup(self.keys[k - 1], suffix_cid[pos] * v + t[pos])
                self.continuation[k - 1] = np.bincount(index, minlength=self.keys[k - 1].size)

    def context_ids(self, ids: np.ndarray, max_length: int) -> list[np.ndarray]:
        """Per context length m = 0..max_length, the training id of each ``ids[i-m:i]`` (-1: none)."""
        n, v = ids.size, self.vocab_size
        out = [np.zeros(n, dtype=np.int64)]
        for m in range(1, max_length + 1):
            cid = np.full(n, -1, dtype=np.int64)
            parent = out[m - 1][m:]
            index, found = lookup(self.context_keys[m], parent * v + ids[: max(n - m, 0)])
            found &= parent >= 0
            cid[m:][found] = index[found]
            out.append(cid)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by a flat name (for a safetensors file); :meth:`from_arrays` reads them back."""
        out = {"meta": np.array([self.vocab_size, self.max_order, self.num_counted], dtype=np.int64)}
        for m, keys in enumerate(self.context_keys):
            out[f"context_keys.{m}"] = keys
        # Counts are at most num_counted: int32 where that fits halves their share of the file.
        count = np.int32 if self.num_counted < 2**31 else np.int64
        for k in self.keys:
            out[f"keys.{k}"], out[f"raw.{k}"] = self.keys[k], self.raw[k].astype(count)
            if k in self.continuation:
                out[f"continuation.{k}"] = self.continuation[k].astype(count)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> NGramCounts:
        """The counts :meth:`arrays` wrote (KeyError: an array is missing)."""
        out = cls.__new__(cls)
        out.vocab_size, out.max_order, out.num_counted = (int(x) for x in arrays["meta"])
        out.context_keys = [arrays[f"context_keys.{m}"] for m in range(out.max_order)]
        out.keys = {k: arrays[f"keys.{k}"] for k in range(1, out.max_order + 1)}
        out.raw = {k: arrays[f"raw.{k}"].astype(np.int64) for k in range(1, out.max_order + 1)}
        out.continuation = {k: arrays[f"continuation.{k}"].astype(np.int64) for k in range(1, out.max_order)}
        return out


def batch_contexts(ids: np.ndarray, history, context_length: int) -> np.ndarray:
    """``(B * T, context_length)``: the ids before each next id of the ``(B, T)`` batch ``ids`` (row
    ``b * T + t`` ends with ``ids[b, t]``), oldest first; ``history`` ``(B, H)`` holds the ids before
    ``ids[:, 0]`` (-1 or missing columns: the stream had not started)."""
    b, t = ids.shape
    need = max(context_length - 1, 0)
    hist = np.full((b, need), -1, dtype=np.int64)
    if history is not None and need:
        h = int_ids(history)[:, -need:]
        hist[:, need - h.shape[1] :] = h
    ext = np.concatenate([hist, ids], axis=1)  # (B, n-2+T)
    windows = np.lib.stride_tricks.sliding_window_view(ext, context_length, axis=1)
    return windows.reshape(b * t, context_length)


def int_ids(x) -> np.ndarray:
    """``x`` (a tensor, on any device, or an array) as an int64 numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.cpu().numpy()
    return np.asarray(x, dtype=np.int64)
