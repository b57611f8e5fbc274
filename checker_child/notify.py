"""What the checker tells the world when real and virtual servers change: notify_up /
notify_down and quorum_up / quorum_down scripts, the lvs_notify_fifo lines and SMTP
alerts, in the order of Servers' events (keepalived's order)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from checker_child.state import Event, QuorumDown, QuorumUp, RsDown, RsUp
from conf.global_defs import GlobalDefs
from conf.lvs import RealServer, VirtualServer
from conf.model import Config
from conf.values import Script
from watchdog.fifo import Fifos, rs_line, vs_line
from watchdog.scripts import ScriptRunner
from watchdog.smtp import Alerter, checker_alert

log = logging.getLogger("pykeepalived_healthcheckers")

NOTIFY_TIMEOUT = 30.0  # a notify/quorum script that runs longer is terminated (keepalived has none)


def smtp_for_vs(vs: VirtualServer, config: Config) -> bool:
    if vs.smtp_alert is not None:
        return vs.smtp_alert
    return config.global_defs.smtp_alert_for("checker")


def smtp_for_rs(rs: RealServer, vs: VirtualServer, config: Config) -> bool:
    return rs.smtp_alert if rs.smtp_alert is not None else smtp_for_vs(vs, config)


def _script_user(gdefs: GlobalDefs) -> tuple[str, ...] | None:
    return tuple(gdefs.script_user) if gdefs.script_user else None


class Notifier:
    """Scripts, FIFO lines and SMTP alerts for the configuration in force."""

    def __init__(self, loop: asyncio.AbstractEventLoop, config: Config) -> None:
        self.loop = loop
        self.config = config
        gdefs = config.global_defs
        self.scripts = ScriptRunner(_script_user(gdefs))
        self.fifos = Fifos.for_lvs(gdefs, self.scripts)
        self.alerter = Alerter(gdefs)
        self.notifies = 0  # scripts started (the stats dump)
        self._tasks: set[asyncio.Task[object]] = set()
        self._previous = (self.config, self.fifos, self.alerter, self.scripts.default_user)
        self._retired: list[tuple[Fifos, Alerter]] = []

    def switch(self, config: Config) -> None:
        """Take `config`'s settings. When global_defs changed (lvs_notify_fifo, SMTP,
        script_user), new FIFOs and SMTP client open; the replaced ones stay open until
        `retire()`, so that `switch_back()` can put them back."""
        self._previous = (self.config, self.fifos, self.alerter, self.scripts.default_user)
        old = self.config.global_defs
        self.config = config
        if old == config.global_defs:
            return
        gdefs = config.global_defs
        self.scripts.default_user = _script_user(gdefs)
        self.fifos = Fifos.for_lvs(gdefs, self.scripts)
        self.alerter = Alerter(gdefs)
        self._retired.append((self._previous[1], self._previous[2]))

    def switch_back(self) -> None:
        """A reload rolled back: the settings before the last `switch()`."""
        config, fifos, alerter, user = self._previous
        if fifos is not self.fifos:
            self._retired = [(f, a) for f, a in self._retired if f is not fifos]
            self._retired.append((self.fifos, self.alerter))
        self.config, self.fifos, self.alerter, self.scripts.default_user = config, fifos, alerter, user

    async def retire(self) -> None:
        """Close the FIFOs and SMTP clients a reload replaced."""
        retired, self._retired = self._retired, []
        for fifos, alerter in retired:
            await fifos.close()
            await alerter.close()

    @property
    def router_id(self) -> str:
        return self.config.global_defs.effective_router_id

    def act(self, e: Event) -> None:
        """Scripts, FIFO line and alert for one of Servers' events (others need none)."""
        if isinstance(e, (RsUp, RsDown)):
            self._rs_changed(e)
        elif isinstance(e, (QuorumUp, QuorumDown)):
            self._quorum_changed(e)

    def _rs_changed(self, e: RsUp | RsDown) -> None:
        up = isinstance(e, RsUp)
        script = e.rs_conf.notify_up if up else e.rs_conf.notify_down
        if script is not None:
            self._run_script(script, f"Notify script for {e.fmt_rs} of VS {e.fmt_vs}")
        self.fifos.send(rs_line(e.fmt_rs, e.fmt_vs, up))
        if isinstance(e, RsDown) and (e.stopping or e.removed) and smtp_for_rs(e.rs_conf, e.vs_conf, self.config):
            body = "=> Shutting down <=" if e.stopping else "=> Removing <="
            self.alerter.alert(
                *checker_alert(self.router_id, e.fmt_vs, rs=e.fmt_rs, up=False, body=body, stopping=e.stopping)
            )

    def _quorum_changed(self, e: QuorumUp | QuorumDown) -> None:
        up = isinstance(e, QuorumUp)
        script = e.vs_conf.quorum_up if up else e.vs_conf.quorum_down
        if script is not None:
            self._run_script(script, f"Quorum script for VS {e.fmt_vs}")
        self.fifos.send(vs_line(e.fmt_vs, up))
        if smtp_for_vs(e.vs_conf, self.config):
            q = e.vs_conf
            self.alerter.alert(
                *checker_alert(
                    self.router_id,
                    e.fmt_vs,
                    up=up,
                    quorum=(q.quorum, q.hysteresis, e.threshold, e.weight_sum),
                    init=e.init,
                    stopping=isinstance(e, QuorumDown) and e.stopping,
                )
            )

    def checker_alert(
        self, rs_conf: RealServer, vs: VirtualServer, *, fmt: tuple[str, str], short: str, up: bool, alive_changed: bool
    ) -> None:
        """The SMTP alert of a checker's verdict ("=> TCP CHECK failed on service <=");
        with no_checker_emails only when the real server's state changed."""
        if not smtp_for_rs(rs_conf, vs, self.config):
            return
        if alive_changed or not self.config.global_defs.no_checker_emails:
            fmt_rs, fmt_vs = fmt
            body = f"=> {short} CHECK {'succeed' if up else 'failed'} on service <="
            self.alerter.alert(*checker_alert(self.router_id, fmt_vs, rs=fmt_rs, up=up, body=body))

    def _run_script(self, script: Script, label: str) -> None:
        self.notifies += 1
        task = self.loop.create_task(self.scripts.run(script, timeout=NOTIFY_TIMEOUT, label=label))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, wait: float) -> None:
        """Let running scripts (notify_down, omega's quorum_down) finish for up to `wait`
        seconds, then close the FIFOs and the SMTP client."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=wait)
        with contextlib.suppress(Exception):
            await self.fifos.close()
        with contextlib.suppress(Exception):
            await self.alerter.close()
