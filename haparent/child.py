"""What the parent keeps per child (its lifecycle phase, pipes, heartbeat monitor, last
reported state, what was released for it), and what a freshly forked child runs."""

from __future__ import annotations

import enum
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from conf.model import Config
from haparent.options import Options
from haparent.specs import ChildSpec
from haparent.system import ChildMain
from vrrp_child.liveness import Held
from watchdog import smtp
from watchdog.heartbeat import HeartbeatMonitor, HeartbeatSettings
from watchdog.protocol import Json, LineReader, Message
from watchdog.runtime import ChildSetup
from watchdog.version import VERSION


class Phase(enum.Enum):
    """A child's lifecycle, as supervisor names it; each transition goes through `_set_phase`."""

    STOPPED = "stopped"  # not running and not wanted yet
    STARTING = "starting"  # forked, has not said ready
    RUNNING = "running"
    BACKOFF = "backoff"  # dead, waiting for its respawn time
    STOPPING = "stopping"  # asked to stop, not reaped yet


class PidWriter(Protocol):
    # The locked file: each child keeps it open (and so the lock held) for as long as it
    # lives, so no new daemon starts beside a child of an old one.
    fd: int | None

    def write(self, pid: int | None) -> None: ...


@dataclass
class Child:
    spec: ChildSpec
    phase: Phase = Phase.STOPPED
    pid: int | None = None
    read_fd: int | None = None
    write_fd: int | None = None
    reader: LineReader = field(default_factory=LineReader)
    started_at: float = 0.0
    monitor: HeartbeatMonitor | None = None
    quick_deaths: int = 0
    respawn_at: float | None = None
    kill_at: float | None = None  # when a child asked to stop gets SIGKILL
    killed: bool = False  # SIGKILL sent; waiting for the reap
    awaiting: type[Message] | None = None  # Ready or Reloaded: what READY=1 waits for
    last_state: dict[str, Json] = field(default_factory=dict)
    state_version: int = 0  # bumped at each change of last_state (the hold's cache key)
    # (the configuration, state_version, hold in seconds or None): the supervisor's hold_deadline
    hold_cache: tuple[Config, int, float | None] | None = None
    heartbeat: HeartbeatSettings | None = None  # this child's, for the current configuration
    # When it last proved that it works for what it holds (a heartbeat's own time while
    # running or stopping, or once this process itself reported holding something; its
    # `ready`): survives the child, for the hold rule.
    heard_at: float = 0.0
    restarts: int = 0  # respawns so far (pykeepalivedctl status)
    last_exit: str | None = None  # how its predecessor ended
    claimed: bool = False  # this process reported holding something (became/resumed MASTER)
    # The configuration this child runs: the one it was started with, then the one its last
    # successful `reloaded` confirmed. What it holds, and how long that may outlive it, are
    # looked up here, never in a reload the child has not taken yet.
    config: Config | None = None
    released: Held = field(default_factory=Held)  # what the parent released for it (again at its reap)


BecomeChild = Callable[[ChildSpec], None]


def child_entry(
    spec: ChildSpec, config: Config, opts: Options, heartbeat: HeartbeatSettings, become_child: BecomeChild
) -> ChildMain:
    """What a freshly forked child runs: become that child (haparent.start: titles, logging,
    signals), then its workload's runtime with the parent's pipes. The child's code is imported
    here, in the parent (ChildSpec.entry): once, before the fork, and shared with every child;
    so is the SMTP client when the configuration sends alerts (watchdog.smtp.preload)."""
    entry = spec.entry()
    smtp.preload(config.global_defs)

    def child_main(read_fd: int, write_fd: int) -> int:
        # A child forked while the parent's reload thread reads a configuration would inherit
        # its paused cycle collector (conf.loader) for life: a child starts with it running.
        gc.enable()
        become_child(spec)
        setup = ChildSetup(
            role=spec.role.value,
            name=spec.name,
            config=config,
            config_file=opts.config_file,
            config_id=opts.config_id,
            all_config=opts.all_config,
            heartbeat=heartbeat,
            heartbeat_for=spec.heartbeat,
            read_fd=read_fd,
            write_fd=write_fd,
            version=VERSION,
            dont_release_vrrp=opts.dont_release_vrrp,
            dont_release_ipvs=opts.dont_release_ipvs,
            release_vips=opts.release_vips,
        )
        return entry(setup)

    return child_main
