"""Dataset splits and snapshots, shared by export and training (plain Python, no Django).

A pair's split is a stable hash of its prompt, so a prompt never sits in two splits and a
pair keeps its split as the data grows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

SPLITS = ("train", "validation", "test")


def split_of(prompt_key: str, validation_share: float = 0.1, test_share: float = 0.1) -> str:
    """The split of a prompt, from a stable hash of its identity (e.g. its content hash)."""
    digest = hashlib.sha256(f"split:{prompt_key}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2**64
    if bucket < test_share:
        return "test"
    if bucket < test_share + validation_share:
        return "validation"
    return "train"


class SnapshotHasher:
    """Accumulates a content hash and per-split counts over dataset rows, in any order of
    arrival within a pair id ordering (rows are hashed in the order given)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.counts: dict[str, int] = {s: 0 for s in SPLITS}
        self.ties = 0

    def add(self, row: dict[str, Any]) -> None:
        key = [
            row["pair_id"],
            row["chosen_id"],
            row["rejected_id"],
            bool(row.get("tie")),
            round(float(row.get("p_chosen", 1.0)), 6),
        ]
        self._hash.update(json.dumps(key).encode())
        self.counts[row["split"]] = self.counts.get(row["split"], 0) + 1
        self.ties += int(bool(row.get("tie")))

    def result(self, **extra: Any) -> dict[str, Any]:
        return {
            "content_hash": self._hash.hexdigest(),
            "counts": dict(self.counts),
            "total": sum(self.counts.values()),
            "ties": self.ties,
            **extra,
        }


def snapshot(rows: Iterable[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Counts per split and a content hash of rows ordered by pair id."""
    hasher = SnapshotHasher()
    for row in sorted(rows, key=lambda r: r["pair_id"]):
        hasher.add(row)
    return hasher.result(**extra)
