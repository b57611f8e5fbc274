"""Real-server and virtual-server state: which real servers are alive, their weights,
each virtual server's quorum and sorry server, and from those the IPVS table we want
(keepalived's check/ipwrapper.c rules, keepalived.conf(5) LVS CONFIGURATION).

Pure: no I/O, no clock. The workload feeds checker verdicts in (after it applied retry
and delay_before_retry) and gets events back, in the order keepalived does things:

- `Log(text)`: a line to log at INFO, in keepalived's words;
- `RsUp` / `RsDown`: run the real server's notify_up / notify_down, write the FIFO line
  `RS <rs> <vs> UP|DOWN`; SMTP for real servers stays with the checker that failed;
- `RsWeight`: the effective weight changed (misc_dynamic, FILE_CHECK);
- `QuorumUp` / `QuorumDown`: run quorum_up / quorum_down, write `VS <vs> UP|DOWN`, SMTP
  (`smtp_message`) if the virtual server's smtp_alert is on;
- `SorryIn` / `SorryOut`: the sorry server replaced the real servers, or left.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from checker_child.table import Table, Wanted, desired_table, real_weight
from conf.checkers import AnyChecker, FileCheck
from conf.lvs import NAT, RealServer, VirtualServer
from conf.lvs_group import VirtualServerGroup
from conf.model import Config
from watchdog.protocol import Json

_PROTO = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp", None: "none"}


def vs_name(vs: VirtualServer) -> str:
    """A virtual server's stable identity: its header, protocol and (fwmark/group) family."""
    name = str(vs)
    if vs.protocol:
        name += f" {vs.protocol}"
    if vs.address is None and vs.family == 6:
        name += " inet6"
    return name


def fmt_vs(vs: VirtualServer) -> str:
    """keepalived's FMT_VS: `[10.0.0.1]:tcp:80`, `FWM 5`, `[GROUP]:0`."""
    if vs.group is not None:
        return f"[{vs.group}]:0"
    if vs.fwmark is not None:
        return f"FWM {vs.fwmark}"
    return f"[{vs.address}]:{_PROTO[vs.protocol]}:{vs.port or 0}"


def fmt_rs(vs: VirtualServer, address: object, port: int | None) -> str:
    """keepalived's FMT_RS: `[192.168.1.2]:tcp:80` (the virtual server's protocol)."""
    return f"[{address}]:{_PROTO[vs.protocol]}:{port or 0}"


@dataclass(frozen=True)
class RsId:
    """A real server's name within its virtual server; unchanged across reloads if the
    virtual server's identity and the real server's address and port are."""

    vs: str
    rs: str


@dataclass(frozen=True)
class Log:
    text: str


@dataclass(frozen=True)
class RsUp:
    rs: RsId
    vs_conf: VirtualServer
    rs_conf: RealServer
    fmt_vs: str  # keepalived's words for the FIFO line and SMTP
    fmt_rs: str


@dataclass(frozen=True)
class RsDown:
    rs: RsId
    vs_conf: VirtualServer
    rs_conf: RealServer
    fmt_vs: str
    fmt_rs: str
    stopping: bool = False  # omega at shutdown: SMTP "=> Shutting down <="
    removed: bool = False  # gone from the configuration on reload: SMTP "=> Removing <="


@dataclass(frozen=True)
class RsWeight:
    rs: RsId
    weight: int
    old: int


@dataclass(frozen=True)
class QuorumUp:
    vs: str
    vs_conf: VirtualServer
    fmt_vs: str
    init: bool
    threshold: int
    weight_sum: int

    @property
    def smtp_message(self) -> str:
        what = "Starting with quorum up" if self.init else "Gained quorum"
        q = self.vs_conf
        return f"=> {what} {q.quorum}+{q.hysteresis}={self.threshold} <= {self.weight_sum} <="


@dataclass(frozen=True)
class QuorumDown:
    vs: str
    vs_conf: VirtualServer
    fmt_vs: str
    init: bool
    threshold: int
    weight_sum: int
    stopping: bool = False

    @property
    def smtp_message(self) -> str:
        if self.stopping:
            return "=> Shutting down <="
        what = "Starting with quorum down" if self.init else "Lost quorum"
        q = self.vs_conf
        return f"=> {what} {q.quorum}+{q.hysteresis}={self.threshold} <= {self.weight_sum} <="


@dataclass(frozen=True)
class SorryIn:
    vs: str
    vs_conf: VirtualServer


@dataclass(frozen=True)
class SorryOut:
    vs: str
    vs_conf: VirtualServer


Event = Log | RsUp | RsDown | RsWeight | QuorumUp | QuorumDown | SorryIn | SorryOut


@dataclass
class _LiveWeight:
    """A virtual server's live weight (keepalived's weigh_live_realservers: the alive real
    servers' weights as IPVS takes them), kept up to date by its real servers as they
    change, so that settling the quorum after one change does not add them all up again."""

    total: int = 0


@dataclass
class _Rs:
    id: RsId
    conf: RealServer
    _weight: int  # effective weight (weight, misc_dynamic, FILE_CHECK contributions)
    up: list[bool]  # per checker: is_up
    has_run: list[bool]
    file_part: dict[int, int] = field(default_factory=dict)  # FILE_CHECK index -> its weight contribution
    _alive: bool = False
    live: _LiveWeight = field(default_factory=_LiveWeight)  # its virtual server's, shared

    def _counted(self) -> int:
        return real_weight(self._weight) if self._alive else 0

    @property
    def alive(self) -> bool:
        return self._alive

    @alive.setter
    def alive(self, value: bool) -> None:
        before = self._counted()
        self._alive = value
        self.live.total += self._counted() - before

    @property
    def weight(self) -> int:
        return self._weight

    @weight.setter
    def weight(self, value: int) -> None:
        before = self._counted()
        self._weight = value
        self.live.total += self._counted() - before

    @property
    def failed(self) -> int:
        return self.up.count(False)

    @property
    def inhibit(self) -> bool:
        return bool(self.conf.inhibit_on_failure)


@dataclass
class _Vs:
    name: str
    conf: VirtualServer
    group: VirtualServerGroup | None
    rs: dict[str, _Rs]
    quorum_up: bool = False
    sorry_alive: bool = False  # the sorry server is in the pool in place of the real servers
    suspended: bool = False
    stopped: bool = False

    @property
    def fmt(self) -> str:
        return fmt_vs(self.conf)

    def __post_init__(self) -> None:
        self.live = _LiveWeight(sum(r._counted() for r in self.rs.values()))
        for r in self.rs.values():
            r.live = self.live

    def weight_sum(self) -> int:
        # weigh_live_realservers: the alive real servers' weights as IPVS takes them.
        return self.live.total

    def sorry_fmt(self) -> str:
        s = self.conf.sorry_server
        assert s is not None
        return fmt_rs(self.conf, s.address, self._sorry_port())

    def _sorry_port(self) -> int | None:
        s = self.conf.sorry_server
        assert s is not None
        method = self.conf.sorry_server_lvs_method or self.conf.lvs_method or NAT
        if self.conf.fwmark is not None and method.kind != "NAT":
            return None
        if method.kind != "NAT" or s.port is None:
            return self.conf.port  # the virtual server's port (keepalived resets a mismatch)
        return s.port


def _initial_weight(vs: VirtualServer, rs: RealServer) -> int:
    # real_server weight (the parser already defaults it to the virtual server's `weight`).
    return rs.weight


class Servers:
    """The state of every virtual and real server, and the table it implies."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._vs: dict[str, _Vs] = {}
        self._init_events: list[Event] = self._build(config, None)

    # ------------------------------------------------------------ construction

    def initial_events(self) -> list[Event]:
        """What keepalived logs and notifies when it installs the services at start
        (quorum_up for a virtual server starting with quorum, the sorry server of one
        starting without, rs_init_notifies). Returned once."""
        out, self._init_events = self._init_events, []
        return out

    def _new_rs(self, vs: VirtualServer, name: str, rs: RealServer) -> _Rs:
        checkers = rs.checkers
        # alpha: checkers start down, so the real server is added only after they pass;
        # without alpha they start up and the real server is added at once.
        up = [not c.starts_down for c in checkers]
        return _Rs(RsId(name, str(rs)), rs, _initial_weight(vs, rs), up, [False] * len(checkers))

    def _build(self, config: Config, old: dict[str, _Vs] | None) -> list[Event]:
        events: list[Event] = []
        self._config = config
        groups = config.virtual_server_group
        new: dict[str, _Vs] = {}
        for conf in config.virtual_server:
            name = vs_name(conf)
            if name in new:
                continue  # the parser warned: IPVS cannot hold it twice
            group = groups.get(conf.group) if conf.group is not None else None
            rss = {str(r): self._new_rs(conf, name, r) for r in conf.real_server}
            v = _Vs(name, conf, group, rss)
            # ha_suspend: no service until the workload sees the address.
            v.suspended = conf.ha_suspend
            new[name] = v
        if old is not None:
            events += self._migrate(old, new)
        else:
            for v in new.values():
                events += self._start_vs(v)
        self._vs = new
        self._config = config
        return events

    def _start_vs(self, v: _Vs) -> list[Event]:
        """init_service_vs: add the real servers with no failed checker, then settle the
        quorum (which at start runs quorum_up, or adds the sorry server)."""
        events: list[Event] = []
        for r in v.rs.values():
            if not r.failed and not r.alive:
                r.alive = True
                if self._config.global_defs.rs_init_notifies:
                    events.append(self._up_event(v, r))
        # set_quorum_states runs before the real servers are added: quorum starts down.
        v.quorum_up = False
        events += self._update_quorum(v, init=True)
        return events

    # ------------------------------------------------------------ events

    def _up_event(self, v: _Vs, r: _Rs) -> RsUp:
        return RsUp(r.id, v.conf, r.conf, v.fmt, fmt_rs(v.conf, r.conf.address, r.conf.port))

    def _down_event(self, v: _Vs, r: _Rs, stopping: bool = False, removed: bool = False) -> RsDown:
        return RsDown(r.id, v.conf, r.conf, v.fmt, fmt_rs(v.conf, r.conf.address, r.conf.port), stopping, removed)

    def _update_quorum(self, v: _Vs, init: bool) -> list[Event]:
        """update_quorum_state: quorum gained at `quorum + hysteresis`, lost below
        `quorum - hysteresis` (or with no live weight at all)."""
        conf = v.conf
        total = v.weight_sum()
        threshold = conf.quorum + (-1 if v.quorum_up else 1) * conf.hysteresis
        events: list[Event] = []
        has_sorry = conf.sorry_server is not None
        sorry_inhibit = conf.sorry_server_inhibit
        if not v.quorum_up and total >= threshold:
            v.quorum_up = True
            events.append(Log(f"Gained quorum {conf.quorum}+{conf.hysteresis}={threshold} <= {total} for VS {v.fmt}"))
            if has_sorry and v.sorry_alive:
                # quorum regained: the sorry server leaves, the alive real servers return.
                word = "Disabling" if sorry_inhibit else "Removing"
                events.append(Log(f"{word} sorry server {v.sorry_fmt()} from VS {v.fmt}"))
                events.append(Log(f"Adding alive servers to the pool for VS {v.fmt}"))
                v.sorry_alive = False
                events.append(SorryOut(v.name, conf))
            events.append(QuorumUp(v.name, conf, v.fmt, init, threshold, total))
        elif (v.quorum_up and (not total or total < threshold)) or (
            init and not v.quorum_up and has_sorry and not v.sorry_alive
        ):
            # quorum lost (or starting without it): the sorry server, if any, replaces
            # the alive real servers.
            v.quorum_up = False
            what = "Starting with quorum down" if init else "Lost quorum"
            events.append(Log(f"{what} {conf.quorum}-{conf.hysteresis}={threshold} > {total} for VS {v.fmt}"))
            if has_sorry and not v.sorry_alive:
                word = "Enabling" if sorry_inhibit else "Adding"
                events.append(Log(f"{word} sorry server {v.sorry_fmt()} to VS {v.fmt}"))
                events.append(Log(f"Removing alive servers from the pool for VS {v.fmt}"))
                v.sorry_alive = True
                events.append(SorryIn(v.name, conf))
            events.append(QuorumDown(v.name, conf, v.fmt, init, threshold, total))
        return events

    def _set_rs_state(self, v: _Vs, r: _Rs, alive: bool) -> list[Event]:
        """perform_svr_state: the real server enters or leaves the pool (inhibit_on_failure:
        its weight goes to 0 instead), then the quorum is reconsidered."""
        if r.alive == alive:
            return []
        rsf = fmt_rs(v.conf, r.conf.address, r.conf.port)
        if alive:
            verb, prep = ("Enabling", "of") if r.inhibit else ("Adding", "to")
        else:
            verb, prep = ("Disabling", "of") if r.inhibit else ("Removing", "from")
        events: list[Event] = [Log(f"{verb} service {rsf} {prep} VS {v.fmt}")]
        r.alive = alive
        events.append(self._up_event(v, r) if alive else self._down_event(v, r))
        events += self._update_quorum(v, init=False)
        return events

    # ------------------------------------------------------------ inputs

    def _find(self, rs: RsId) -> tuple[_Vs, _Rs]:
        v = self._vs[rs.vs]
        return v, v.rs[rs.rs]

    def checker_result(self, rs: RsId, checker: int, up: bool, weight: int | None = None) -> list[Event]:
        """A checker's verdict (after its retries). `weight`: for a MISC_CHECK with
        misc_dynamic, the new weight (exit status - 2); for a FILE_CHECK, its contribution
        (file value x track weight), added to the real server's weight."""
        v, r = self._find(rs)
        if v.stopped:
            return []
        events: list[Event] = []
        if weight is not None:
            events += self._weight(v, r, checker, weight)
        if r.up[checker] == up:
            first = not r.has_run[checker]
            r.has_run[checker] = True
            # update_svr_checker_state: a first verdict that confirms a down checker (alpha)
            # still runs the real server's notifies.
            if first and not up:
                events.append(self._down_event(v, r) if not r.alive else self._up_event(v, r))
            return events
        r.has_run[checker] = True
        # A real server is alive when all its checkers are up: it goes down on its first
        # failing checker and up when its last failing checker recovers.
        if up and r.failed <= 1:
            events += self._set_rs_state(v, r, True)
        elif not up and r.failed == 0:
            events += self._set_rs_state(v, r, False)
        r.up[checker] = up
        return events

    def _weight(self, v: _Vs, r: _Rs, checker: int, weight: int) -> list[Event]:
        """update_svr_wgt: misc_dynamic replaces the weight; a FILE_CHECK's value adds to it."""
        conf = r.conf.checkers[checker]
        if isinstance(conf, FileCheck):
            new = r.weight + weight - r.file_part.get(checker, 0)
            r.file_part[checker] = weight
        else:
            new = weight
        old = r.weight
        r.weight = new
        if real_weight(new) == real_weight(old):
            return []
        rsf = fmt_rs(v.conf, r.conf.address, r.conf.port)
        events: list[Event] = [
            Log(
                f"Changing weight from {real_weight(old)} to {real_weight(new)} for "
                f"{'' if r.alive else 'in'}active service {rsf} of VS {v.fmt}"
            ),
            RsWeight(r.id, real_weight(new), real_weight(old)),
        ]
        events += self._update_quorum(v, init=False)
        return events

    def set_suspended(self, vs: str, suspended: bool) -> list[Event]:
        """ha_suspend: the virtual server's address left (suspended) or came back. A
        suspended virtual server is not in the table; the workload pauses its checkers."""
        self._vs[vs].suspended = suspended
        return []

    def reload(self, config: Config) -> list[Event]:
        """clear_diff_services: keep the state of real servers and checkers whose identity
        is unchanged, remove what went away, start what is new."""
        return self._build(config, self._vs)

    def _migrate(self, old: dict[str, _Vs], new: dict[str, _Vs]) -> list[Event]:
        events: list[Event] = []
        for name, ov in old.items():
            if name in new:
                continue
            if ov.conf.group is not None:
                events.append(Log(f"Removing Virtual Server Group [{ov.conf.group}]"))
            else:
                events.append(Log(f"Removing Virtual Server {ov.fmt}"))
            events += self._clear_vs(ov, stopping=False)
        for name, nv in new.items():
            ov_ = old.get(name)
            if ov_ is None:
                events += self._start_vs(nv)
                continue
            ov = ov_
            nv.quorum_up = ov.quorum_up
            nv.sorry_alive = ov.sorry_alive and nv.conf.sorry_server is not None
            nv.suspended = ov.suspended if nv.conf.ha_suspend else False
            for key, orr in ov.rs.items():
                if key not in nv.rs:
                    rsf = fmt_rs(ov.conf, orr.conf.address, orr.conf.port)
                    events.append(Log(f"service {rsf} no longer exist"))
                    events += self._clear_rs(ov, orr, stopping=False, removed=True)
            if ov.sorry_alive and nv.conf.sorry_server is None:
                # The sorry server went away from the configuration: alive real servers return.
                events.append(Log(f"Removing sorry server {ov.sorry_fmt()} from VS {ov.fmt}"))
            for key, nr in nv.rs.items():
                orr_ = ov.rs.get(key)
                if orr_ is None:
                    # A new real server: as at start (alpha checkers down).
                    if not nr.failed:
                        nr.alive = True
                        if self._config.global_defs.rs_init_notifies:
                            events.append(self._up_event(nv, nr))
                    continue
                events += self._migrate_rs(nv, orr_, nr)
            events += self._update_quorum(nv, init=True)
        return events

    def _migrate_rs(self, v: _Vs, o: _Rs, n: _Rs) -> list[Event]:
        """migrate_checkers: an unchanged checker keeps its state; a new alpha checker
        starts down if the real server has a failure or has not been seen up."""
        n.alive = o.alive
        # the effective weight (misc_dynamic, FILE_CHECK) survives unless the configured one
        # changed (an unset weight is the virtual server's, filled in by the parser)
        n.weight = o.weight if o.conf.weight == n.conf.weight else n.weight
        if n.weight != o.weight:
            n.file_part = {}
        old_checkers = list(o.conf.checkers)
        taken: set[int] = set()
        new_checkers = n.conf.checkers
        n.up = [True] * len(new_checkers)
        n.has_run = [False] * len(new_checkers)
        for i, c in enumerate(new_checkers):
            j = _match(c, old_checkers, taken)
            if j is None:
                continue
            taken.add(j)
            n.up[i] = o.up[j]
            n.has_run[i] = o.has_run[j]
            if j in o.file_part:
                n.file_part[i] = o.file_part[j]
        any_ran = any(n.has_run)
        if n.failed or (not n.alive and not any_ran):
            for i, c in enumerate(new_checkers):
                if not n.has_run[i] and c.starts_down:
                    n.up[i] = False
        events: list[Event] = []
        if not n.failed and not n.alive:
            events += self._set_rs_state(v, n, True)
        elif n.failed and n.alive:
            # keepalived drops it from the pool silently; we say so.
            events += self._set_rs_state(v, n, False)
        return events

    def _clear_rs(self, v: _Vs, r: _Rs, stopping: bool, removed: bool = False) -> list[Event]:
        """clear_service_rs: the real server leaves IPVS; an alive one runs notify_down
        (at shutdown only with omega)."""
        rsf = fmt_rs(v.conf, r.conf.address, r.conf.port)
        inhibited = "(inhibited) " if r.inhibit and not r.alive else ""
        events: list[Event] = []
        if stopping or r.alive or r.inhibit:
            events.append(
                Log(f"{'Shutting down' if stopping else 'Removing'} {inhibited}service {rsf} from VS {v.fmt}")
            )
        if not r.alive:
            return events
        r.alive = False
        if stopping and not v.conf.omega:
            return events
        events.append(self._down_event(v, r, stopping=stopping, removed=removed or not stopping))
        return events

    def _clear_vs(self, v: _Vs, stopping: bool) -> list[Event]:
        events: list[Event] = []
        v.sorry_alive = False
        for r in v.rs.values():
            events += self._clear_rs(v, r, stopping)
        # update_vs_notifies: quorum_down at shutdown (omega), or when it is lost.
        total = v.weight_sum()
        threshold = v.conf.quorum - v.conf.hysteresis
        if stopping or (v.quorum_up and (not total or total < threshold)):
            v.quorum_up = False
            if not stopping or v.conf.omega:
                events.append(QuorumDown(v.name, v.conf, v.fmt, False, threshold, total, stopping))
        v.stopped = True
        return events

    def shutdown(self, flushed: bool = False) -> list[Event]:
        """clear_services at stop: each real server leaves (notify_down with omega), then
        quorum_down with omega. `flushed` (lvs_flush_on_stop): keepalived skips the real
        servers' notifies and runs only the quorum ones."""
        events: list[Event] = []
        for v in self._vs.values():
            if flushed:
                v.sorry_alive = False
                for r in v.rs.values():
                    r.alive = False
                v.quorum_up = False
                if v.conf.omega:
                    threshold = v.conf.quorum - v.conf.hysteresis
                    events.append(QuorumDown(v.name, v.conf, v.fmt, False, threshold, 0, True))
                v.stopped = True
            else:
                events += self._clear_vs(v, stopping=True)
        return events

    # ------------------------------------------------------------ outputs

    def wanted(self, v: _Vs) -> list[Wanted]:
        """The destinations a virtual server wants now."""
        if v.stopped or v.suspended:
            return []
        conf = v.conf
        out: list[Wanted] = []
        for r in v.rs.values():
            rc = r.conf
            method = rc.lvs_method or conf.lvs_method or NAT
            port = rc.port if rc.port is not None else conf.port
            if v.sorry_alive:
                weight = 0 if r.inhibit else None  # the sorry server replaced them
            elif r.alive:
                weight = r.weight
            else:
                weight = 0 if r.inhibit else None  # inhibit_on_failure: kept at weight 0
            if weight is None:
                continue
            out.append(Wanted(rc.address, port, weight, method, rc.uthreshold or 0, rc.lthreshold or 0))
        sorry = conf.sorry_server
        if sorry is not None and (v.sorry_alive or conf.sorry_server_inhibit):
            # sorry_server_inhibit: kept at weight 0 while not in use; listed last, so it
            # wins over a real server at the same address.
            method = conf.sorry_server_lvs_method or conf.lvs_method or NAT
            if v.sorry_alive or not any(w.address == sorry.address for w in out):
                out.append(Wanted(sorry.address, v._sorry_port(), 1 if v.sorry_alive else 0, method))
        return out

    def table(self) -> Table:
        """What IPVS must hold now."""
        return desired_table(
            (v.conf, v.group, self.wanted(v)) for v in self._vs.values() if not (v.stopped or v.suspended)
        )

    def real_servers(self) -> Iterator[tuple[RsId, VirtualServer, RealServer, tuple[AnyChecker, ...]]]:
        """Every real server with its checkers, for the workload to run them."""
        for v in self._vs.values():
            for r in v.rs.values():
                yield r.id, v.conf, r.conf, r.conf.checkers

    def virtual_servers(self) -> Iterator[tuple[str, VirtualServer]]:
        for v in self._vs.values():
            yield v.name, v.conf

    def is_alive(self, rs: RsId) -> bool:
        return self._find(rs)[1].alive

    def checker_up(self, rs: RsId, checker: int) -> bool:
        return self._find(rs)[1].up[checker]

    def quorum_up(self, vs: str) -> bool:
        return self._vs[vs].quorum_up

    def suspended(self, vs: str) -> bool:
        return self._vs[vs].suspended

    def rs_view(self, rs: RsId) -> dict[str, Json] | None:
        """One real server as the dumps and reports show it; None if it is not configured."""
        v = self._vs.get(rs.vs)
        r = v.rs.get(rs.rs) if v is not None else None
        return _rs_view(r) if r is not None else None

    def vs_view(self, vs: str) -> dict[str, Json] | None:
        """One virtual server without its real servers; None if it is not configured."""
        v = self._vs.get(vs)
        return _vs_view(v) if v is not None else None

    def snapshot(self) -> dict[str, Json]:
        out: dict[str, Json] = {}
        for v in self._vs.values():
            view = _vs_view(v)
            view["real_servers"] = {r.id.rs: _rs_view(r) for r in v.rs.values()}
            out[v.name] = view
        return out


def _rs_view(r: _Rs) -> dict[str, Json]:
    return {
        "alive": r.alive,
        "weight": real_weight(r.weight),
        "checkers": [{"up": u, "has_run": h} for u, h in zip(r.up, r.has_run, strict=True)],
    }


def _vs_view(v: _Vs) -> dict[str, Json]:
    return {
        "quorum_up": v.quorum_up,
        "sorry_server_active": v.sorry_alive,
        "suspended": v.suspended,
        "weight_sum": v.weight_sum(),
    }


def _match(c: AnyChecker, olds: list[AnyChecker], taken: set[int]) -> int | None:
    """The old checker a new one continues: same type and same settings."""
    for j, o in enumerate(olds):
        if j not in taken and type(o) is type(c) and o == c:
            return j
    return None
