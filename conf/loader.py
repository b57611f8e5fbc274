"""Reading a configuration: files -> logical lines -> statements -> model -> checks.

This is the one entry point the daemon, `-t` and `--print-config` use. It never raises
for anything a config file can contain: every problem is a diagnostic.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from conf.diagnostics import Diagnostics
from conf.limits import ConfigTooLarge
from conf.model import Config
from conf.preprocess import Preprocessor
from conf.schema import Context, parse_block
from conf.syntax import parse_statements

DEFAULT_CONFIG = "/etc/keepalived/keepalived.conf"


def default_config_id() -> str:
    """keepalived's config-id default: the first label of the node name."""
    return socket.gethostname().split(".", 1)[0]


IFF_LOOPBACK = 0x8  # linux/if.h


def local_interfaces() -> frozenset[str]:
    try:
        return frozenset(name for _, name in socket.if_nameindex())
    except OSError:
        return frozenset()


def loopback_interfaces(names: frozenset[str]) -> frozenset[str]:
    """The loopback ones among `names` (their IFF_LOOPBACK flag in sysfs): keepalived refuses
    a vrrp_instance on a loopback interface."""
    out = set()
    for name in names:
        try:
            with open(f"/sys/class/net/{name}/flags", encoding="ascii") as f:
                if int(f.read().strip(), 16) & IFF_LOOPBACK:
                    out.add(name)
        except (OSError, ValueError):
            continue
    return frozenset(out)


@dataclass(frozen=True)
class LoadResult:
    config: Config | None  # None when nothing could be read (see diagnostics)
    diagnostics: Diagnostics
    files: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """The daemon may run this configuration."""
        return self.config is not None and self.diagnostics.can_run


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Reading builds hundreds of thousands of objects and no reference cycles; the cyclic
    collector would walk every one of them again and again (a full pass each time the
    young objects outnumber a quarter of the old ones), which made reading grow faster
    than the file (bench/parse_bench.py). Reference counting frees what is dropped."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load(
    path: str = DEFAULT_CONFIG,
    *,
    config_id: str | None = None,
    all_config: bool = False,
    env: dict[str, str] | None = None,
    interfaces: frozenset[str] | None = None,
) -> LoadResult:
    """Parse and validate the configuration at `path`.

    `interfaces` are the names that exist (for warnings about missing ones); by default
    they are read from this host.
    """
    with _no_cycle_collection():
        return _load(path, config_id, all_config, env, interfaces)


def _load(
    path: str, config_id: str | None, all_config: bool, env: dict[str, str] | None, interfaces: frozenset[str] | None
) -> LoadResult:
    diags = Diagnostics()
    cid = config_id if config_id is not None else default_config_id()
    pre = Preprocessor(cid, diags, env=dict(os.environ if env is None else env), all_config=all_config)
    try:
        stmts = parse_statements(pre.lines(path), diags)
        if not pre.files:
            return LoadResult(None, diags, ())
        if interfaces is None:
            here = local_interfaces()
            ctx = Context(diags, cid, here, loopback_interfaces(here))
        else:
            ctx = Context(diags, cid, interfaces)
        config = parse_block(Config, stmts, ctx, location=None)
    except ConfigTooLarge as e:
        diags.error(f"configuration too large: {e.message}", e.location)
        return LoadResult(None, diags, tuple(pre.files))
    # The limits should make these impossible; should one still be crossed (or the
    # validator's RLIMIT_AS be lower than they assume), it is a diagnostic all the same.
    except MemoryError:
        diags.error(f"configuration too large: out of memory reading '{path}'")
        return LoadResult(None, diags, tuple(pre.files))
    except RecursionError:
        diags.error(f"configuration too large: nested too deeply in '{path}'")
        return LoadResult(None, diags, tuple(pre.files))
    return LoadResult(config, diags, tuple(pre.files))
