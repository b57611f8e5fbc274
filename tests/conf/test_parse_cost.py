"""Generous bounds on the cost of reading a configuration; the goals (issue 15) live in
bench/parse_bench.py, which measures them side by side with keepalived."""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path

import conf
from bench.parse_bench import elements, generate, generate_vips
from conf.schema import import_deferred


def _cpu_per_line(path: Path) -> float:
    """The least CPU time per line of three reads (the least is the least disturbed)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        result = conf.load(str(path), config_id="t", interfaces=frozenset({"eth0"}))
        best = min(best, time.process_time() - t0)
        assert result.config is not None
    return best / path.read_text().count("\n")


def test_reading_time_grows_linearly_with_the_file(tmp_path: Path) -> None:
    small, large = tmp_path / "small.conf", tmp_path / "large.conf"
    small.write_text(generate(25, 250))
    large.write_text(generate(100, 1000))
    per_small, per_large = _cpu_per_line(small), _cpu_per_line(large)
    # linear: 1.0 (bench/parse_bench.py); the cyclic collector made it grow with the file
    assert per_large < 2.5 * per_small, (per_small, per_large)
    assert per_large < 200e-6  # about 15 us a line on this project's machine


def _load_traced(path: Path) -> tuple[conf.LoadResult, int]:
    """The result of reading `path`, and the bytes it keeps (tracemalloc); the keyword
    families imported on first use are imported before (their code is not the model)."""
    import_deferred()
    gc.collect()
    tracemalloc.start()
    try:
        result = conf.load(str(path), config_id="t", interfaces=frozenset({"eth0", "eth1", "eth2", "eth3"}))
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert result.config is not None
    return result, kept


def test_the_model_keeps_less_than_300_bytes_per_vip(tmp_path: Path) -> None:
    path = tmp_path / "vips.conf"
    path.write_text(generate_vips(20_000, "eth0"))
    result, kept = _load_traced(path)
    assert result.config is not None
    vips = sum(
        len(i.virtual_ipaddress) + len(i.virtual_ipaddress_excluded) for i in result.config.vrrp_instance.values()
    )
    assert vips == 20_000
    # about 160 bytes (an entry of four slots, its address's int, its line's int); 400
    # when an entry held an IPv4Interface and a (file, line) tuple
    assert kept / vips < 300, kept / vips


def test_the_model_keeps_less_than_220_bytes_per_statement_of_the_mixed_file(tmp_path: Path) -> None:
    """The bench's mixed shape (vrrp_instances, real servers with a TCP_CHECK): about 177
    bytes a statement (real servers and checkers inline, a block's line in its Locations);
    369 when each kept a dict of its own and a Location per statement."""
    path = tmp_path / "mixed.conf"
    text = generate(100, 2000)
    path.write_text(text)
    _, kept = _load_traced(path)
    assert kept / elements(text) < 220, kept / elements(text)
