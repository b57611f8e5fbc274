"""What the VRRP child tells the outside world about state changes, besides the parent: notify
scripts (run on the loop without blocking it, watchdog.scripts), notify FIFO lines
(watchdog.fifo) and SMTP alerts (watchdog.smtp), for instances and sync groups.

The instance's own notify_master/backup/fault/stop scripts are chosen by the instance
(vrrp_child.instance); this module runs them, and words the lines keepalived 2.2.7 writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine

from conf.global_defs import GlobalDefs
from conf.values import Script
from conf.vrrp import VrrpSyncGroup
from vrrp_child import fsm
from vrrp_child.instance import Instance
from watchdog.fifo import Fifos, group_line, instance_line
from watchdog.scripts import ScriptRunner
from watchdog.smtp import Alerter, vrrp_alert
from watchdog.status import Conditions

NOTIFY_TIMEOUT = 30.0  # a notify script that runs longer is terminated (keepalived has none)
STOP_SCRIPTS_WAIT = 2.0  # at shutdown, how long notify_stop scripts may delay the exit


class Notifier:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        scripts: ScriptRunner,
        conditions: Conditions,
        gdefs: GlobalDefs,
        router_id: Callable[[], str],
    ) -> None:
        self.loop = loop
        self.scripts = scripts
        self.conditions = conditions
        self.router_id = router_id  # the running configuration's, at the time of the alert
        self._tasks: set[asyncio.Task[object]] = set()
        self.gdefs = gdefs
        self.fifos = Fifos.for_vrrp(gdefs, scripts)
        self._fifo_conditions()
        self.alerter = Alerter(gdefs)

    def reopen(self, gdefs: GlobalDefs) -> None:
        """New global_defs: the notify FIFOs and SMTP settings may have changed, reopen them."""
        if gdefs == self.gdefs:
            return
        old_fifos, old_alerter = self.fifos, self.alerter
        self.gdefs = gdefs
        self.fifos = Fifos.for_vrrp(gdefs, self.scripts)
        self._fifo_conditions()
        self.alerter = Alerter(gdefs)
        # in the background: mail still queued may take the alerter's close timeout
        for closing in (old_fifos.close(), old_alerter.close()):
            self._background(closing)

    def _fifo_conditions(self) -> None:
        failed = {f"fifo:{path}": f"notify FIFO {path}: {why}" for path, why in self.fifos.failed.items()}
        self.conditions.replace("fifo:", failed)

    def _background(self, coro: Coroutine[object, object, object]) -> None:
        task: asyncio.Task[object] = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def run_script(self, script: Script, args: tuple[str, ...], label: str) -> None:
        self._background(self.scripts.run(script, args=args, timeout=NOTIFY_TIMEOUT, label=label))

    def instance_script(self, inst: Instance, script: Script, args: tuple[str, ...] = ()) -> None:
        self.run_script(script, args, f"({inst.name}) notify script")

    def state_changed(self, inst: Instance) -> None:
        state = inst.state.value
        if self.fifos:  # the line is not even built without a notify_fifo (every takeover comes here)
            self.fifos.send(instance_line(inst.name, state, inst.params.priority))
        if inst.conf.smtp_alert and inst.state is not fsm.State.STOP:
            self.alerter.alert(*vrrp_alert(self.router_id(), "INSTANCE", inst.name, state))

    def rx_lower_pri(self, inst: Instance) -> None:
        self.fifos.send(instance_line(inst.name, "MASTER_RX_LOWER_PRI", inst.params.priority))

    def priority_changed(self, inst: Instance, gdefs: GlobalDefs | None) -> None:
        # notify_priority_changes (or the global vrrp_notify_priority_changes): FIFO lines
        # MASTER_PRIORITY / BACKUP_PRIORITY with the new priority (keepalived.conf(5) notify).
        wanted = inst.conf.notify_priority_changes
        if wanted is None and gdefs is not None:
            wanted = gdefs.vrrp_notify_priority_changes
        if wanted and inst.state in (fsm.State.MASTER, fsm.State.BACKUP):
            self.fifos.send(instance_line(inst.name, f"{inst.state.value}_PRIORITY", inst.params.priority))

    def deleted(self, inst: Instance, was: fsm.State) -> None:
        """keepalived 2.2.7 clear_diff_vrrp / send_instance_notifies: a removed instance's
        notifies say FAULT (`notify ... FAULT`, the FIFO, SMTP), none at all if it was in FAULT
        already; with notify_deleted they say DELETED, and its script runs if it has one. Never
        notify_fault: keepalived picks the state's script while the state is still DELETED (seen
        beside keepalived, tests/lab/test_notify_deleted.py)."""
        conf = inst.conf
        deleted = conf.notify_deleted
        if deleted is None and was is fsm.State.FAULT:
            return
        word = "FAULT" if deleted is None else "DELETED"
        if deleted is not None and deleted.script is not None:
            self.instance_script(inst, deleted.script)
        if conf.notify is not None:
            self.instance_script(inst, conf.notify, ("INSTANCE", inst.name, word, str(inst.params.priority)))
        self.fifos.send(instance_line(inst.name, word, inst.params.priority))
        if conf.smtp_alert:
            self.alerter.alert(*vrrp_alert(self.router_id(), "INSTANCE", inst.name, word))

    def group_entered(self, name: str, conf: VrrpSyncGroup, state: fsm.State) -> None:
        """The group's notify scripts, FIFO line and SMTP alert (keepalived notify_group_exec)."""
        word = state.value
        # keepalived 2.2.7 sends GROUP ... STOP too (measured), whatever keepalived.conf(5) says
        self.fifos.send(group_line(name, word))
        script = {
            fsm.State.MASTER: conf.notify_master,
            fsm.State.BACKUP: conf.notify_backup,
            fsm.State.FAULT: conf.notify_fault,
            fsm.State.STOP: conf.notify_stop,
        }.get(state)
        label = f"VRRP_Group({name}) notify script"
        if script is not None:
            self.run_script(script, (), label)
        if conf.notify is not None:
            self.run_script(conf.notify, ("GROUP", name, word, "0"), label)
        if conf.smtp_alert and state is not fsm.State.STOP:
            self.alerter.alert(*vrrp_alert(self.router_id(), "GROUP", name, word))

    async def wait_scripts(self) -> None:
        """At the stop: give the notify_stop scripts (and mail) a moment to finish."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=STOP_SCRIPTS_WAIT)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.fifos.close()
        with contextlib.suppress(Exception):
            await self.alerter.close()
