"""The VRRP state machine: RFC 5798 section 6 (RFC 3768 section 6 for v2), with keepalived 2.2.7's deviations.

Pure: `step(machine, params, event, now)` returns the next machine and the actions the caller
performs (send an advert, add or remove the VIPs, run notifies, log). There is no clock, socket
or timer here: the caller owns time, passes the loop's monotonic `now` with every event and
sends `Tick()` at `next_deadline(machine)`.

The layout follows FRRouting vrrpd: one handler per event (`_on_*`), one entry function per
state (`_ENTRY`), and a single `_change_state` that writes the state, runs the exit and entry
actions and logs the transition in keepalived's words (`(VI_1) Entering MASTER STATE`).

What the packet carries has already been validated by `packet.decode` and `receive.check`
(TTL, version, checksum, VRID, auth, the v2 interval mismatch): an `AdvertIn` is an advert
this instance accepts as being for it; this module decides what the instance does with it.

keepalived 2.2.7 behaviour kept here, where it differs from or adds to the RFC:
- A non-owner configured `state MASTER` starts as BACKUP with the full Master_Down_Interval,
  exactly as `state BACKUP` does (measured: 3.55 s for priority 110 either way). So does a
  sync group member: vrrp_init_state has a shorter "one advert interval plus the minimum
  skew" timer for a member that wants MASTER in a group that is BACKUP, but keepalived 2.2.7
  never takes it (measured, two members at priority 150, advert_int 1: `state MASTER` 3.43 s
  to MASTER with the group, 3.42 s without, `state BACKUP` the same), so members start like
  any instance.
- An owner (priority 255) with `state MASTER` sends an advert and becomes MASTER at once.
- `down_timer_adverts` replaces the 3 in Master_Down_Interval; v3 Skew_Time is computed in
  microseconds from the centisecond interval (keepalived's `pri * adv_cs * 625 / 16`).
- `preempt_delay`: while it runs, a BACKUP accepts adverts from a lower-priority master. The
  delay starts with the first such advert (keepalived's `preempt_time`) and is cleared when a
  master of our priority or higher is seen, and on every entry to BACKUP.
- A MASTER answers a lower-priority advert at once with its own advert (RFC 9568 section 6.4.3)
  unless `lower_prio_no_advert`; with `higher_prio_send_advert` it also sends one before giving
  way to a higher-priority master.
- Two owners on one VRID: the local one reports a configuration error and drops to 254.
- A MASTER whose priority falls (trackers, reload) stays MASTER until a better advert arrives;
  a BACKUP whose priority rises preempts by letting its down timer expire.
- Going to FAULT from MASTER sends a priority 0 advert and removes the VIPs; leaving FAULT goes
  to BACKUP, or straight to MASTER for an owner configured `state MASTER`.
- Sync groups (vrrp_sync_group): a member (`Params.in_sync_group`) whose Master_Down_Timer fires
  does not go MASTER by itself. It emits `WantMaster`, remembers it (`Machine.want_master`) and
  re-arms the timer, as keepalived's vrrp_sync_can_goto_master does while another member is not
  ready; the coordinator (syncgroup.py) sends `SyncMaster` to every member once all of them want
  MASTER, and `SyncBackup` to the masters when one member has given way to a better master.
- `Start(resume_master=True)` (a respawned child whose predecessor was MASTER) goes straight to
  MASTER with an advert at once and the VIPs kept; keepalived itself would drop them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, TypeAlias

from vrrp_child.timers import DOWN_TIMER_ADVERTS, USEC, master_down_interval, skew_time, usec

if TYPE_CHECKING:
    from conf.vrrp import VrrpInstance

IPAddress: TypeAlias = IPv4Address | IPv6Address

PRIO_OWNER = 255
PRIO_STOP = 0  # RFC 5798 section 5.2.4: "the current Master has stopped participating in VRRP"
# A Tick that arrives a hair before its deadline (float rounding in the loop's timer heap) is
# still on time: keepalived's timers have microsecond resolution.
_SLACK = 1e-6


class State(enum.Enum):
    INIT = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"
    STOP = "STOP"


@dataclass(frozen=True, kw_only=True)
class Params:
    """What the state machine needs from an instance's configuration and trackers.

    priority is the effective priority (base priority plus tracker weights, 1..255);
    advert_int is the configured Advertisement_Interval in seconds; local_ip is the source
    address of our adverts, the "primary IP address" of the RFC 5798 section 6.4.3 tie-break.
    """

    name: str
    version: int
    priority: int
    advert_int: float
    local_ip: IPAddress
    preempt: bool = True
    preempt_delay: float = 0.0
    start_master: bool = False
    down_timer_adverts: int = DOWN_TIMER_ADVERTS
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    in_sync_group: bool = False

    def __post_init__(self) -> None:
        if self.version not in (2, 3):
            raise ValueError(f"VRRP version {self.version} is not 2 or 3")
        if not 1 <= self.priority <= PRIO_OWNER:
            raise ValueError(f"priority {self.priority} is not in 1..255")
        if self.advert_int <= 0:
            raise ValueError(f"advert_int {self.advert_int} is not positive")
        if self.down_timer_adverts < 1:
            raise ValueError(f"down_timer_adverts {self.down_timer_adverts} is below 1")
        if self.preempt_delay < 0:
            raise ValueError(f"preempt_delay {self.preempt_delay} is negative")

    @property
    def is_owner(self) -> bool:
        return self.priority == PRIO_OWNER

    @classmethod
    def from_instance(
        cls, inst: VrrpInstance, local_ip: IPAddress, *, priority: int | None = None, in_sync_group: bool = False
    ) -> Params:
        """Params of a completed `conf.vrrp.VrrpInstance`; `priority` overrides the configured one
        (the effective priority once trackers have spoken)."""
        prio = priority if priority is not None else inst.priority
        return cls(
            name=inst.name,
            version=inst.version,
            priority=prio,
            advert_int=inst.advert_int,
            local_ip=local_ip,
            preempt=not inst.nopreempt,
            preempt_delay=inst.preempt_delay,
            start_master=inst.state == "MASTER",
            down_timer_adverts=inst.down_timer_adverts,
            lower_prio_no_advert=inst.lower_prio_no_advert,
            higher_prio_send_advert=inst.higher_prio_send_advert,
            in_sync_group=in_sync_group,
        )


@dataclass(frozen=True)
class Machine:
    """One instance's protocol state. Deadlines are on the caller's monotonic clock (seconds).

    master_adver_int: RFC 5798 Master_Adver_Interval (s); a v3 BACKUP learns it from the master.
    down_deadline: when Master_Down_Timer fires (BACKUP only).
    advert_deadline: when Adver_Timer fires (MASTER only).
    preempt_deadline: end of the running `preempt_delay` (BACKUP only); not a timer to tick on.
    master_ip/master_priority: the master last heard (ourselves while MASTER).
    owner_conflict: another owner was seen; we run at 254 until reconfigured (keepalived).
    want_master: a sync group member's down timer fired; it waits for the rest of its group.
    delay_until: the end of global_defs vrrp_startup_delay (None: none).
    """

    state: State = State.INIT
    master_adver_int: float = 0.0
    down_deadline: float | None = None
    advert_deadline: float | None = None
    preempt_deadline: float | None = None
    master_ip: IPAddress | None = None
    master_priority: int | None = None
    fault_reason: str | None = None
    owner_conflict: bool = False
    want_master: bool = False
    last_transition: float | None = None
    delay_until: float | None = None


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class Start:
    """RFC 5798 section 6.4.1 Startup; resume_master: our predecessor was MASTER (respawn).
    delay_until: global_defs vrrp_startup_delay ends then (keepalived's vrrp_delayed_start_time):
    until that time a BACKUP's Master_Down_Timer counts from it, not from now."""

    resume_master: bool = False
    delay_until: float | None = None


@dataclass(frozen=True)
class AdvertIn:
    """A valid advert for this instance; adver_int in seconds (v3: the packet's centiseconds / 100)."""

    src: IPAddress
    priority: int
    adver_int: float


@dataclass(frozen=True)
class Tick:
    """The caller's timer fired (at or after `next_deadline`)."""


@dataclass(frozen=True)
class Shutdown:
    """RFC 5798 Shutdown event: the instance stops (daemon stop, instance removed on reload)."""


@dataclass(frozen=True)
class FaultOn:
    """A tracker (interface down, weight-0 script, ...) puts the instance in FAULT."""

    reason: str


@dataclass(frozen=True)
class FaultOff:
    """The last fault has cleared."""


@dataclass(frozen=True)
class Reconfigure:
    """New parameters (reload, tracker priority change); the state is kept."""

    params: Params


@dataclass(frozen=True)
class SyncMaster:
    """The sync group goes MASTER (every member wants to): a BACKUP member goes MASTER now."""


@dataclass(frozen=True)
class SyncBackup:
    """Another member of the sync group gave way to a better master: a MASTER member follows."""


@dataclass(frozen=True)
class HoldingLost:
    """Something outside deleted a VIP, virtual route or rule of this MASTER (keepalived
    set_vrrp_backup): it resigns (priority 0) and comes back after Skew_Time, re-adding them."""


Event: TypeAlias = (
    Start | AdvertIn | Tick | Shutdown | FaultOn | FaultOff | Reconfigure | SyncMaster | SyncBackup | HoldingLost
)


# ---------------------------------------------------------------- actions


@dataclass(frozen=True)
class SendAdvert:
    """Send one advert with this priority (0: we are resigning)."""

    priority: int


@dataclass(frozen=True)
class BecomeMaster:
    """Add the VIPs (and eVIPs, routes, rules) and send GARP/NA; resumed: they are already in place."""

    resumed: bool = False


@dataclass(frozen=True)
class LeaveMaster:
    """Remove the VIPs (and eVIPs, routes, rules)."""


@dataclass(frozen=True)
class Entered:
    """A state change, after its side effects: run the notify scripts / FIFO for `state`.
    resumed: a respawned child took MASTER over from its predecessor (no real transition)."""

    state: State
    old: State
    resumed: bool = False


@dataclass(frozen=True)
class MasterRxLowerPri:
    """A MASTER heard a lower-priority master: garp_lower_prio_repeat GARPs and the
    notify_master_rx_lower_pri script are the caller's to do."""

    src: IPAddress
    priority: int


@dataclass(frozen=True)
class Log:
    """A log line in keepalived's words; detail: keepalived prints it only with -D (--log-detail).
    key: the kind of a line a received packet triggers ("rx_lower_master" ...); the caller logs
    those rate-limited per instance and kind, since a flood of adverts would otherwise
    flood the log. None: always logged (state transitions and what goes with them)."""

    text: str
    detail: bool = False
    key: str | None = None


@dataclass(frozen=True)
class WantMaster:
    """A sync group member's Master_Down_Timer fired: the coordinator decides whether the group goes."""


Action: TypeAlias = SendAdvert | BecomeMaster | LeaveMaster | Entered | MasterRxLowerPri | WantMaster | Log


# ---------------------------------------------------------------- timers
# (Skew_Time and Master_Down_Interval themselves: vrrp_child.timers)


def next_deadline(m: Machine) -> float | None:
    """When the caller must send Tick(): the Master_Down_Timer of a BACKUP, the Adver_Timer of
    a MASTER, None in the other states."""
    if m.state is State.BACKUP:
        return m.down_deadline
    if m.state is State.MASTER:
        return m.advert_deadline
    return None


def initial() -> Machine:
    return Machine()


# ---------------------------------------------------------------- the machine


class _Step:
    """The working state of one `step` call: handlers replace `m` and append to `acts`."""

    __slots__ = ("acts", "m", "now", "p")

    def __init__(self, m: Machine, p: Params, now: float) -> None:
        self.m = m
        self.p = p
        self.now = now
        self.acts: list[Action] = []

    def log(self, text: str, *, detail: bool = False, key: str | None = None) -> None:
        self.acts.append(Log(f"({self.p.name}) {text}", detail, key))

    @property
    def priority(self) -> int:
        return effective_priority(self.m, self.p)

    @property
    def is_owner(self) -> bool:
        return self.priority == PRIO_OWNER

    def mdi(self) -> float:
        return master_down_interval(self.p.version, self.priority, self.m.master_adver_int, self.p.down_timer_adverts)

    def skew(self) -> float:
        return skew_time(self.p.version, self.priority, self.m.master_adver_int)

    def down_at(self, interval: float) -> float:
        """Master_Down_Timer's deadline `interval` from now, or from the end of vrrp_startup_delay
        while it runs (keepalived vrrp_init_instance_sands): nothing goes MASTER before it ends."""
        delay = self.m.delay_until
        return (delay if delay is not None and self.now < delay else self.now) + interval


def step(m: Machine, p: Params, event: Event, now: float) -> tuple[Machine, tuple[Action, ...]]:
    """Apply one event at time `now`; return the new machine and the actions, in order."""
    s = _Step(m, p, now)
    # One handler per event (FRR's event table); each looks at the state it is in.
    match event:
        case Start():
            _on_start(s, event)
        case AdvertIn():
            _on_advert(s, event)
        case Tick():
            _on_tick(s, event)
        case Shutdown():
            _on_shutdown(s, event)
        case FaultOn():
            _on_fault_on(s, event)
        case FaultOff():
            _on_fault_off(s, event)
        case Reconfigure():
            _on_reconfigure(s, event)
        case SyncMaster():
            _on_sync_master(s, event)
        case SyncBackup():
            _on_sync_backup(s, event)
        case HoldingLost():
            _on_holding_lost(s, event)
    return s.m, tuple(s.acts)


def _addr_cmp(a: IPAddress, b: IPAddress) -> int:
    """RFC 5798 section 6.4.3: primary addresses compared as unsigned integers in network byte
    order (which is what int() of an ipaddress is); addresses of different families never win."""
    if a.version != b.version:
        return 0
    return (int(a) > int(b)) - (int(a) < int(b))


def _ms(seconds: float) -> int:
    return usec(seconds) // 1000


# ------------------------------------------- state changes (FRR's vrrp_change_state)


def _change_state(s: _Step, new: State, *, init: bool = False, resumed: bool = False, resign: bool = False) -> None:
    """The one place a state is written: keepalived's log line, the exit actions of the old
    state, the entry function of the new one, then Entered (notifies run after the VIPs moved)."""
    old = s.m.state
    if new is not State.STOP:
        s.log(f"Entering {new.value} STATE" + (" (init)" if init else ""))
    if old is State.MASTER:
        _exit_master(s, new, resign)
    s.m = _evolve(s.m, state=new, last_transition=s.now, want_master=False)
    _ENTRY[new](s, resumed)
    s.acts.append(Entered(new, old, resumed))


def _exit_master(s: _Step, new: State, resign: bool = False) -> None:
    # keepalived vrrp_state_leave_master / vrrp_restore_interface: a master that stops or
    # faults tells the backups with priority 0 so they take over after Skew_Time (RFC 5798
    # section 6.4.3 Shutdown); one that loses an election just goes quiet.
    if new in (State.FAULT, State.STOP) or resign:
        s.acts.append(SendAdvert(PRIO_STOP))
        if new is State.STOP or resign:
            s.log("sent 0 priority", detail=True)
    s.acts.append(LeaveMaster())


def _enter_backup(s: _Step, resumed: bool) -> None:
    # RFC 5798 section 6.4.1: Master_Down_Timer = Master_Down_Interval (the caller has set
    # master_adver_int: configured on start and fault recovery, learned when a master gave way).
    # keepalived clears preempt_time on every entry to BACKUP.
    s.m = _evolve(s.m, down_deadline=s.down_at(s.mdi()), advert_deadline=None, preempt_deadline=None)


def _enter_master(s: _Step, resumed: bool) -> None:
    # RFC 5798 section 6.4.1/6.4.2: Adver_Timer = Advertisement_Interval. A master advertises
    # its own configured interval, so the learned one no longer applies.
    if s.p.version == 3 and s.m.master_adver_int != s.p.advert_int:
        s.log(
            f"changing advert interval from {_ms(s.m.master_adver_int)}ms to locally configured "
            f"{_ms(s.p.advert_int)}ms",
            detail=True,
        )
    s.m = _evolve(
        s.m,
        master_adver_int=s.p.advert_int,
        down_deadline=None,
        advert_deadline=s.now + s.p.advert_int,
        preempt_deadline=None,
        master_ip=s.p.local_ip,
        master_priority=s.priority,
    )
    s.acts.append(BecomeMaster(resumed))


def _enter_fault(s: _Step, resumed: bool) -> None:
    s.m = replace(s.m, down_deadline=None, advert_deadline=None, preempt_deadline=None, master_ip=None)


def _enter_stop(s: _Step, resumed: bool) -> None:
    s.m = replace(s.m, down_deadline=None, advert_deadline=None, preempt_deadline=None, master_ip=None)


# INIT is only ever the state a machine starts in: nothing enters it.
_ENTRY: dict[State, Callable[[_Step, bool], None]] = {
    State.BACKUP: _enter_backup,
    State.MASTER: _enter_master,
    State.FAULT: _enter_fault,
    State.STOP: _enter_stop,
}


def _goto_master(s: _Step, *, resumed: bool = False) -> None:
    # keepalived vrrp_state_master_tx: the advert goes out before the VIPs are added, so the old
    # master (if any) removes them before our GARPs arrive. RFC 5798 section 6.4.2: Send an
    # ADVERTISEMENT, broadcast GARP/NA, start Adver_Timer, go Master.
    s.acts.append(SendAdvert(s.priority))
    _change_state(s, State.MASTER, resumed=resumed)


def _evolve(m: Machine, **changes: object) -> Machine:
    """`replace(m, **changes)` for the hot paths (a MASTER's Adver_Timer, a BACKUP hearing
    its master: with 250 instances, each 250 times a second; and a takeover's state change,
    250 at once). replace() inspects the fields and runs the frozen __init__ on every call,
    most of a master tick's cost; Machine has no __post_init__, so copying its attributes
    builds the same object."""
    new = object.__new__(Machine)
    new.__dict__.update(m.__dict__, **changes)
    return new


def _due(deadline: float | None, now: float) -> bool:
    return deadline is not None and deadline <= now + _SLACK


# ---------------------------------------------------------------- event handlers


def _on_start(s: _Step, ev: Start) -> None:
    if s.m.state is not State.INIT:
        # already running, or a fault came first (FaultOff will bring it up, the delay still on)
        s.m = replace(s.m, delay_until=ev.delay_until)
        return
    s.m = replace(s.m, master_adver_int=s.p.advert_int, delay_until=ev.delay_until)
    if ev.resume_master:
        _goto_master(s, resumed=True)  # ours, beyond keepalived: a respawn keeps its VIPs
    elif s.is_owner and s.p.start_master and s.down_at(0.0) > s.now:
        # keepalived: the owner waits in BACKUP with a 1 us down timer, so MASTER when the delay ends
        _change_state(s, State.BACKUP, init=True)
        s.m = replace(s.m, down_deadline=s.down_at(0.0))
    elif s.is_owner and s.p.start_master:
        # RFC 5798 section 6.4.1: the owner goes Master at once.
        _goto_master(s)
    else:
        _change_state(s, State.BACKUP, init=True)


def _on_advert(s: _Step, ev: AdvertIn) -> None:
    if s.m.state is State.BACKUP:
        _backup_rx(s, ev)
    elif s.m.state is State.MASTER:
        _master_rx(s, ev)
    # INIT, FAULT and STOP do not take part in elections.


def _adopt_interval(s: _Step, ev: AdvertIn) -> None:
    # RFC 5798 section 6.4.2/6.4.3: set Master_Adver_Interval to the Max Adver Int of the advert
    # (v3 only: a v2 interval mismatch never gets here, receive.check drops it).
    if s.p.version != 3 or ev.adver_int <= 0 or ev.adver_int == s.m.master_adver_int:
        return
    s.log(
        f"advertisement interval updated from {_ms(s.m.master_adver_int)}ms to {_ms(ev.adver_int)}ms by master",
        detail=True,
        key="rx_interval",
    )
    s.m = replace(s.m, master_adver_int=ev.adver_int)


def _backup_rx(s: _Step, ev: AdvertIn) -> None:
    """RFC 5798 section 6.4.2 "If an ADVERTISEMENT is received", keepalived vrrp_state_backup."""
    ours = s.priority
    if ev.priority == PRIO_STOP:
        # The master resigned: take over after Skew_Time, the highest-priority backup first.
        s.log("Backup received priority 0 advertisement", detail=True, key="rx_prio0_backup")
        s.m = _evolve(s.m, down_deadline=s.down_at(s.skew()))
        return
    preempt_delay_running = (
        s.p.preempt and s.p.preempt_delay > 0 and (s.m.preempt_deadline is None or s.m.preempt_deadline > s.now)
    )
    if not s.p.preempt or ev.priority >= ours or preempt_delay_running:
        _adopt_interval(s, ev)
        s.m = _evolve(
            s.m, down_deadline=s.down_at(s.mdi()), master_ip=ev.src, master_priority=ev.priority, want_master=False
        )
        if s.p.preempt and s.p.preempt_delay > 0:
            _track_preempt_delay(s, ev.priority >= ours)
        return
    # Preempt_Mode and a lower priority: discard, and let the down timer run out (preemption).
    s.log(f"received lower priority ({ev.priority}) advert from {ev.src} - discarding", key="rx_lower_backup")
    s.m = replace(s.m, master_ip=ev.src)


def _track_preempt_delay(s: _Step, master_not_lower: bool) -> None:
    # keepalived preempt_delay: counted from the first lower-priority master seen, forgotten
    # once a master of our priority or higher is seen.
    if master_not_lower:
        if s.m.preempt_deadline is not None:
            s.log("stop preempt delay", detail=True, key="preempt_delay_stop")
            s.m = replace(s.m, preempt_deadline=None)
    elif s.m.preempt_deadline is None:
        delay = usec(s.p.preempt_delay)
        s.log(f"start preempt delay ({delay // USEC}.{delay % USEC:06d})", detail=True, key="preempt_delay_start")
        s.m = replace(s.m, preempt_deadline=s.now + s.p.preempt_delay)


def _master_rx(s: _Step, ev: AdvertIn) -> None:
    """RFC 5798 section 6.4.3 "If an ADVERTISEMENT is received" (with RFC 9568's answer to a
    lower priority), keepalived vrrp_state_master_rx."""
    ours = s.priority
    cmp = _addr_cmp(ev.src, s.p.local_ip)
    wins = ev.priority > ours or (ev.priority == ours and cmp > 0)
    if ev.priority == PRIO_STOP or (s.p.higher_prio_send_advert and wins):
        s.acts.append(SendAdvert(ours))
        if ev.priority == PRIO_STOP:
            # Another router resigned while we are master: assert ourselves and restart Adver_Timer.
            s.log("Master received priority 0 message", detail=True, key="rx_prio0_master")
            s.m = replace(s.m, advert_deadline=s.now + s.p.advert_int)
            return
    if ev.priority == ours:
        if cmp == 0:
            s.log("WARNING - equal priority advert received from remote host with our IP address.", key="rx_own_ip")
        elif ours == PRIO_OWNER:
            # RFC 5798 section 6.4.3 cannot settle two owners; keepalived demotes itself to 254.
            s.log(
                "CONFIGURATION ERROR: local instance and a remote instance are both configured as "
                "address owner, please fix - reducing local priority",
                key="rx_owner_conflict",
            )
            s.m = replace(s.m, owner_conflict=True)
            ours = s.priority
            wins = ev.priority > ours
    if ev.priority < ours or (ev.priority == ours and cmp < 0):
        # RFC 9568 section 6.4.3: answer at once so the lower-priority master gives way quickly.
        suffix = "" if s.p.lower_prio_no_advert else ", forcing new election"
        s.log(
            f"Received advert from {ev.src} with lower priority {ev.priority}, ours {ours}{suffix}",
            key="rx_lower_master",
        )
        if not s.p.lower_prio_no_advert:
            s.acts.append(SendAdvert(ours))
        s.acts.append(MasterRxLowerPri(ev.src, ev.priority))
        return
    if not wins:
        return  # equal priority from our own address: nothing to decide
    # Not rate-limited: these explain the transition that follows, and a master leaves at
    # most once per Master_Down_Interval.
    if ev.priority > ours:
        s.log(f"Master received advert from {ev.src} with higher priority {ev.priority}, ours {ours}")
    else:
        s.log(f"Master received advert from {ev.src} with same priority {ev.priority} but higher IP address than ours")
    _adopt_interval(s, ev)
    s.m = replace(s.m, master_ip=ev.src, master_priority=ev.priority)
    _change_state(s, State.BACKUP)


def _on_tick(s: _Step, ev: Tick) -> None:
    if s.m.state is State.BACKUP and _due(s.m.down_deadline, s.now):
        # RFC 5798 section 6.4.2 "If the Master_Down_Timer fires".
        s.log("Receive advertisement timeout", detail=True)
        if s.p.in_sync_group:
            # keepalived vrrp_sync_can_goto_master: wait for the rest of the group, trying
            # again after another Master_Down_Interval; the coordinator may send SyncMaster first.
            s.m = replace(s.m, want_master=True, down_deadline=s.now + s.mdi())
            s.acts.append(WantMaster())
        else:
            _goto_master(s)
    else:
        fired = advert_timer(s.m, s.p, s.now)
        if fired is not None:
            s.m = fired
            s.acts.append(SendAdvert(s.priority))


# A master may send an advert a little before its Adver_Timer when the loop is awake anyway
# (2% of the interval, at most 20 ms): adverts of many instances then share one wakeup. The
# next deadline keeps the cadence, so the rate is unchanged; a backup waits three intervals.
ADVERT_EARLY_FRACTION = 0.02
ADVERT_EARLY_MAX = 0.02


def advert_early(p: Params) -> float:
    return min(ADVERT_EARLY_MAX, p.advert_int * ADVERT_EARLY_FRACTION)


# A BACKUP's Master_Down_Timer that fired only to find the deadline moved later (adverts came
# meanwhile: vrrp_child.instance keeps the timer armed for the earlier time) is armed again for
# the new deadline, which it may check up to this share of the master's interval early when the
# loop is awake anyway: 250 backups' checks then share a few wakeups a second instead of each
# taking its own. A check before the deadline finds nothing due; the deadline stays exact.
DOWN_EARLY_FRACTION = 0.25


def down_early(m: Machine) -> float:
    return m.master_adver_int * DOWN_EARLY_FRACTION


def advert_timer(m: Machine, p: Params, now: float) -> Machine | None:
    """A MASTER's Adver_Timer firing (RFC 5798 section 6.4.3): the machine with the next
    deadline, and the caller sends an advert at the current priority; None when this is not
    that case. It is the whole of a steady master's work, so `step` and the callers that
    want to skip the general event path (250 masters: 250 of these a second) share it."""
    due = m.advert_deadline
    if m.state is not State.MASTER or due is None or due > now + advert_early(p) + _SLACK:  # not _due(): hot
        return None
    # Keep the cadence of the deadlines (no drift from late ticks), but never schedule into
    # the past after a stall.
    nxt = due + p.advert_int
    if nxt <= now:
        nxt = now + p.advert_int
    return _evolve(m, advert_deadline=nxt)


def advert_moved(m: Machine, when: float) -> Machine:
    """A MASTER's Adver_Timer brought forward to `when` (vrrp_child.advertgrid: masters of one
    interval send together); a later time or another state leaves it as it is."""
    if m.state is not State.MASTER or m.advert_deadline is None or when >= m.advert_deadline:
        return m
    return _evolve(m, advert_deadline=when)


def effective_priority(m: Machine, p: Params) -> int:
    """Our priority: the configured one, or 254 after an owner conflict (keepalived)."""
    return min(p.priority, PRIO_OWNER - 1) if m.owner_conflict else p.priority


def _on_shutdown(s: _Step, ev: Shutdown) -> None:
    if s.m.state is not State.STOP:
        _change_state(s, State.STOP)


def _on_fault_on(s: _Step, ev: FaultOn) -> None:
    if s.m.state is State.STOP:
        return
    s.m = replace(s.m, fault_reason=ev.reason)
    if s.m.state is not State.FAULT:
        _change_state(s, State.FAULT, init=s.m.state is State.INIT)


def _on_fault_off(s: _Step, ev: FaultOff) -> None:
    if s.m.state is not State.FAULT:
        s.m = replace(s.m, fault_reason=None)
        return
    # keepalived try_up_instance / vrrp_state_leave_fault: the configured interval again, and
    # MASTER at once only for an owner that is configured to start as MASTER.
    s.m = replace(s.m, fault_reason=None, master_adver_int=s.p.advert_int, master_ip=None, master_priority=None)
    if s.is_owner and s.p.start_master:
        _goto_master(s)
    else:
        _change_state(s, State.BACKUP)


def _on_sync_master(s: _Step, ev: SyncMaster) -> None:
    # keepalived vrrp_sync_master: the members not yet MASTER go MASTER with the group.
    if s.m.state is State.BACKUP:
        _goto_master(s)


def _on_sync_backup(s: _Step, ev: SyncBackup) -> None:
    # keepalived vrrp_sync_backup: a MASTER member leaves master with its group; the better
    # master of the member that gave way is taking the group over, so no priority 0 advert.
    if s.m.state is State.MASTER:
        _change_state(s, State.BACKUP)


def _on_holding_lost(s: _Step, ev: HoldingLost) -> None:
    # keepalived set_vrrp_backup (measured with 2.2.7): BACKUP with a priority 0 advert, its
    # VIPs, routes and rules removed, and Master_Down_Timer set to Skew_Time so that it comes
    # back as MASTER at once (and puts everything back) unless a backup answers first.
    if s.m.state is not State.MASTER:
        return
    _change_state(s, State.BACKUP, resign=True)
    s.m = replace(s.m, down_deadline=s.now + s.skew())


def _on_reconfigure(s: _Step, ev: Reconfigure) -> None:
    old_prio = s.priority
    old_mdi = s.mdi()
    # A reload re-reads the configured priority, which ends an owner-conflict demotion.
    s.m = replace(s.m, owner_conflict=False)
    s.p = ev.params
    if s.priority != old_prio:
        s.log(f"Changing effective priority from {old_prio} to {s.priority}")
    if s.m.state is State.BACKUP:
        # v2 always runs on the configured interval; v3 keeps the one learned from the master.
        if s.p.version == 2 or s.m.master_adver_int <= 0:
            s.m = replace(s.m, master_adver_int=s.p.advert_int)
        if s.m.down_deadline is not None:
            # Re-arm with the new Skew_Time / interval, keeping the time already waited.
            deadline = max(s.now, s.m.down_deadline + s.mdi() - old_mdi)
            s.m = replace(s.m, down_deadline=deadline)
    elif s.m.state is State.MASTER:
        # A master keeps its role whatever its new priority: a better backup preempts it.
        # A shorter interval takes effect now rather than after the old, longer one.
        advert = s.m.advert_deadline
        if advert is None or advert > s.now + s.p.advert_int:
            advert = s.now + s.p.advert_int
        s.m = replace(s.m, master_adver_int=s.p.advert_int, advert_deadline=advert, master_priority=s.priority)
    else:
        s.m = replace(s.m, master_adver_int=s.p.advert_int)


__all__ = [
    "DOWN_TIMER_ADVERTS",
    "PRIO_OWNER",
    "PRIO_STOP",
    "Action",
    "AdvertIn",
    "BecomeMaster",
    "Entered",
    "Event",
    "FaultOff",
    "FaultOn",
    "HoldingLost",
    "LeaveMaster",
    "Log",
    "Machine",
    "MasterRxLowerPri",
    "Params",
    "Reconfigure",
    "SendAdvert",
    "Shutdown",
    "Start",
    "State",
    "SyncBackup",
    "SyncMaster",
    "Tick",
    "WantMaster",
    "initial",
    "master_down_interval",
    "next_deadline",
    "skew_time",
    "step",
]
