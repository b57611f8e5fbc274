"""ha_suspend (keepalived.conf(5)): a virtual server whose address is not on this host
has its checkers paused and no service in the IPVS table. The host's addresses are
followed through rtnetlink notifications (checker_child.addresses), never polled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from checker_child.addresses import AddressWatch
from checker_child.state import Event, Servers
from conf.model import Config

log = logging.getLogger("pykeepalived_healthcheckers")


class Suspension:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        servers: Servers,
        *,
        handle: Callable[[Iterable[Event]], None],
        changed: Callable[[str], None],
        addresses_changed: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.servers = servers
        self.handle = handle  # Servers' events of a suspension change
        self.changed = changed  # a virtual server's ha_suspend state changed (report it)
        self.addresses_changed = addresses_changed
        self.addrs: AddressWatch | None = None
        self._suspended: dict[str, bool] = {}

    def suspended(self, vs: str) -> bool:
        return self._suspended.get(vs, False)

    def watch(self, config: Config) -> None:
        """Follow the host's addresses while some virtual server has ha_suspend."""
        wanted = any(vs.ha_suspend and vs.address is not None for vs in config.virtual_server)
        if wanted and self.addrs is None:
            try:
                self.addrs = AddressWatch(self.loop, self.addresses_changed)
            except OSError as e:
                log.error("Cannot watch the host's addresses for ha_suspend: %s", e.strerror)
        elif not wanted and self.addrs is not None:
            self.addrs.close()
            self.addrs = None

    def apply(self, initial: bool, checks: Iterable[tuple[str, str, str]]) -> None:
        """Suspend or activate each virtual server by its address; `checks` are the
        running checkers as (virtual server name, fmt_rs, fmt_vs), for the log lines."""
        states: dict[str, bool] = {}
        checks = list(checks)
        for name, vs in self.servers.virtual_servers():
            suspended = False
            if vs.ha_suspend and vs.address is not None:
                suspended = self.addrs is None or not self.addrs.has(vs.address)
            states[name] = suspended
            if suspended != self.servers.suspended(name) or initial:
                self.handle(self.servers.set_suspended(name, suspended))
            if vs.ha_suspend and suspended != self._suspended.get(name, False):
                what = "Suspending" if suspended else "Activating"
                for vs_name, fmt_rs, fmt_vs in checks:
                    if vs_name == name:
                        log.info("%s healthchecker for service %s for VS %s", what, fmt_rs, fmt_vs)
                self.changed(name)
        self._suspended = states

    def close(self) -> None:
        if self.addrs is not None:
            self.addrs.close()
            self.addrs = None
