"""How long checks take: cumulative bucket counts, as a Prometheus histogram keeps them
(the parent exposes them as `pykeepalived_check_duration_seconds`). Pure counting."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from watchdog.protocol import Json

# Seconds: from a loopback connect to a slow HTTP_GET near its connect_timeout.
BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Latency:
    """Per checker type: counts per bucket (not cumulative here), total and sum."""

    counts: dict[str, list[int]] = field(default_factory=dict)
    sums: dict[str, float] = field(default_factory=dict)

    def observe(self, kind: str, seconds: float) -> None:
        counts = self.counts.get(kind)
        if counts is None:  # (not setdefault: its default list would be built on every call)
            counts = self.counts[kind] = [0] * (len(BUCKETS) + 1)
            self.sums[kind] = 0.0
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sums[kind] += seconds

    def json(self) -> dict[str, Json]:
        """{kind: {"buckets": [[le, cumulative count], ..., ["+Inf", total]], "sum": s}}."""
        out: dict[str, Json] = {}
        for kind, counts in sorted(self.counts.items()):
            running = 0
            buckets: list[Json] = []
            for le, n in zip([*map(str, BUCKETS), "+Inf"], counts, strict=True):
                running += n
                buckets.append([le, running])
            out[kind] = {"buckets": buckets, "sum": self.sums[kind]}
        return out
