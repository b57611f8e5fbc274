"""Control-socket requests (pykeepalivedctl, a /metrics scrape) that wait for the children's
answers: which child each still waits for, until when (a hung child does not hold the client),
what a `dump` request asks for, and the desk that holds them with the sockets they came on.
The supervisor decides what to ask and sends; nothing here blocks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from haparent.control import Client, ControlServer, Request
from haparent.specs import Role
from watchdog.protocol import DumpKind, Json

if TYPE_CHECKING:  # prometheus-client and its HTTP server load only with --metrics-address
    from haparent.metrics import MetricsServer

Reply = Callable[[dict[str, Json]], None]


@dataclass
class PendingQuery:
    """A control request (or a metrics refresh) waiting for the children's answers."""

    reply: Reply
    kind: DumpKind  # STATUS: the parent's view with the children's; else a plain dump
    deadline: float
    waiting: set[Role] = field(default_factory=set)
    answers: dict[Role, str | None] = field(default_factory=dict)


class Queries:
    def __init__(self) -> None:
        self.pending: dict[int, PendingQuery] = {}
        self._next = 1

    def open(self, reply: Reply, kind: DumpKind, deadline: float, roles: set[Role]) -> int:
        """A query put to the children in `roles`; its id goes in their Query messages."""
        qid, self._next = self._next, self._next + 1
        self.pending[qid] = PendingQuery(reply, kind, deadline, set(roles))
        return qid

    def answered(self, role: Role, data: Mapping[str, Json]) -> None:
        qid = data.get("id")
        query = self.pending.get(qid) if isinstance(qid, int) else None
        if query is None or role not in query.waiting:
            return  # a late answer to a query already answered
        query.waiting.discard(role)
        text = data.get("text")
        query.answers[role] = text if isinstance(text, str) else None

    def forget(self, role: Role) -> None:
        """A child that died answers nothing: stop waiting for it."""
        for query in self.pending.values():
            query.waiting.discard(role)

    def due(self, now: float) -> list[PendingQuery]:
        """The queries every child answered, or whose time is up; they leave the table."""
        done = [qid for qid, q in self.pending.items() if not q.waiting or now >= q.deadline]
        return [self.pending.pop(qid) for qid in done]

    def deadlines(self) -> Iterable[float]:
        return (q.deadline for q in self.pending.values())


def dump_target(args: Mapping[str, Json]) -> tuple[DumpKind, Role | None] | str:
    """`pykeepalivedctl dump WHAT [--child ROLE]`: what to ask and whom, or the error. keepalived's
    SIGUSR2 and SIGJSON reach only the VRRP child; `child` picks another (DATA asks everyone)."""
    kinds = {k.value: k for k in (DumpKind.DATA, DumpKind.STATS, DumpKind.JSON)}
    kind = kinds.get(str(args.get("what")))
    if kind is None:
        return "dump needs what: data, stats or json"
    if kind is DumpKind.DATA:
        return kind, None
    role = str(args.get("child") or Role.VRRP.value)
    if role not in {r.value for r in Role}:
        return f"no child '{role[:40]}'"
    return kind, Role(role)


OUTPUT_RETRY = 0.05  # s between tries to send an answer a client's socket did not take yet


class Desk:
    """The control socket and /metrics as the supervisor's loop serves them (either may be
    absent): their file descriptors, the queries waiting for the children, and the `reload`
    requests answered when the reload ends."""

    def __init__(self, control: ControlServer | None, metrics: MetricsServer | None) -> None:
        self.control = control
        self.metrics = metrics
        self.queries = Queries()
        self.reload_waiters: list[Client] = []

    def fds(self) -> list[int]:
        """What the loop waits on: the listening socket and the clients."""
        return self.control.fds() if self.control is not None else []

    def parent_fds(self) -> list[int]:
        """What a forked child closes: everything here is the parent's."""
        return self.fds() + ([self.metrics.fileno()] if self.metrics is not None else [])

    def readable(self, fd: int) -> list[tuple[Client, Request | str]] | None:
        """The requests read on `fd`, or None when it is not ours (a child's pipe)."""
        if self.control is None or not self.control.owns(fd):
            return None
        return list(self.control.readable(fd))

    def reply_to(self, client: Client) -> Reply:
        def reply(answer: dict[str, Json]) -> None:
            if self.control is not None:
                self.control.answer(client, answer)

        return reply

    def deadlines(self, now: float) -> list[float]:
        if self.control is None:
            return []
        out = list(self.queries.deadlines())
        client_deadline = self.control.next_deadline()
        if client_deadline is not None:
            out.append(client_deadline)
        if self.control.pending_output():
            out.append(now + OUTPUT_RETRY)
        return out

    def answer_reload(self, took: float, error: str | None, diagnostics: list[str]) -> None:
        waiters, self.reload_waiters = self.reload_waiters, []
        for client in waiters:
            listed: list[Json] = list(diagnostics)
            answer: dict[str, Json] = {"ok": error is None, "error": error, "seconds": round(took, 3)}
            self.reply_to(client)(answer | {"diagnostics": listed})

    def scrape_wanted(self) -> bool:
        """A /metrics scrape waits for a fresh status (haparent.metrics)."""
        if self.metrics is None or not self.metrics.want.is_set():
            return False
        self.metrics.want.clear()
        return True

    def metrics_update(self, answer: dict[str, Json]) -> None:
        if self.metrics is not None:
            self.metrics.update(answer)

    def flush(self) -> None:
        if self.control is None:
            return
        self.control.flush()
        for client in self.control.expire():
            if client in self.reload_waiters:
                self.reload_waiters.remove(client)

    def shutdown(self) -> None:
        if self.control is not None:
            self.control.shutdown()
            self.control = None
        if self.metrics is not None:
            self.metrics.shutdown()
            self.metrics = None
