"""YCSB-like record generation: ``fieldcount`` fields of printable ASCII, deterministic from a seed.

Values are drawn per block of ``BLOCK`` consecutive records from a generator seeded with
``(seed, block)``, so any record range can be regenerated on its own and every process sees the
same bytes (tests compare node contents against this). Keys are ``{key_prefix}{index:010d}``, so
key order is record order and a fragment is a contiguous key range.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

BLOCK = 64  # records per seeded block; fixed, it is part of what the seed means


@dataclass(frozen=True)
class RecordSpec:
    """Dataset shape (YCSB's recordcount / fieldcount / fieldlength), defaults from thesis Appendix C."""

    record_count: int = 10_000
    field_count: int = 10
    field_length_min: int = 100
    field_length_max: int = 100
    seed: int = 0
    key_prefix: str = "user"

    def __post_init__(self) -> None:
        if self.record_count < 1 or self.field_count < 1:
            raise ValueError("record_count and field_count must be ≥ 1")
        if not 1 <= self.field_length_min <= self.field_length_max:
            raise ValueError(f"bad field lengths {self.field_length_min}..{self.field_length_max}")

    @classmethod
    def preset(cls, name: str, **overrides: object) -> RecordSpec:
        """``default`` (10 fields × 100 chars) or ``large`` (100 fields × 3,000 chars, YCSB's constant length)."""
        presets = {
            "default": cls(),
            "large": cls(field_count=100, field_length_min=3000, field_length_max=3000),
        }
        if name not in presets:
            raise ValueError(f"unknown dataset preset {name!r}: choose from {sorted(presets)}")
        return replace(presets[name], **overrides)  # type: ignore[arg-type]

    def key(self, index: int) -> str:
        return record_key(index, self.key_prefix)

    def fields(self) -> list[str]:
        return [f"field{i}" for i in range(self.field_count)]


def record_key(index: int, key_prefix: str = "user") -> str:
    return f"{key_prefix}{index:010d}"


def generate_records(spec: RecordSpec, start: int, end: int) -> Iterator[tuple[int, dict[str, bytes]]]:
    """Records ``start <= i < end`` as ``(index, {field: value})``, the same bytes on every call."""
    if not 0 <= start <= end <= spec.record_count:
        raise ValueError(f"record range [{start}, {end}) outside 0..{spec.record_count}")
    names = spec.fields()
    fc = spec.field_count
    for block in range(start // BLOCK, (end + BLOCK - 1) // BLOCK if end else 0):
        rng = np.random.default_rng([spec.seed, block])
        lengths = rng.integers(spec.field_length_min, spec.field_length_max + 1, size=(BLOCK, fc))
        chars = rng.integers(33, 127, size=int(lengths.sum()), dtype=np.uint8).tobytes()
        offsets = np.concatenate([[0], np.cumsum(lengths.reshape(-1))])
        first = block * BLOCK
        for r in range(max(start, first) - first, min(end, first + BLOCK) - first):
            base = r * fc
            yield first + r, {names[j]: chars[offsets[base + j] : offsets[base + j + 1]] for j in range(fc)}
