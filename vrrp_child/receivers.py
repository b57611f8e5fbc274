"""The raw VRRP sockets the instances share, and what they receive handed to its instance.

One socket per (interface, family, unicast source, protocol): instances on one interface
share it, and a received advert goes to the instance of its VRID on that socket (one
lookup, no per-instance socket). IPsec AH instances have sockets of their own (protocol 51).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from conf.vrrp import VrrpInstance
from vrrp_child.ah import AH_PROTO
from vrrp_child.instance import Instance
from vrrp_child.packet import VRRP_PROTO
from vrrp_child.sockets import PeerTable, Received, VrrpSocket

log = logging.getLogger("pykeepalived_vrrp")

SocketKey = tuple[str, int, object, int]


class Receivers:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sockets: dict[SocketKey, VrrpSocket] = {}
        self.by_vrid: dict[tuple[SocketKey, int], Instance] = {}

    def socket(self, conf: VrrpInstance, ifname: str, local: object) -> VrrpSocket:
        """The socket an instance sends and receives on, opened when it is the first
        (OSError when it cannot be)."""
        unicast = conf.is_unicast
        # IPsec AH: a socket of its own, protocol 51 (keepalived's sockpool proto(51))
        proto = AH_PROTO if conf.auth_type == "AH" else VRRP_PROTO
        key: SocketKey = (ifname, conf.family, local if unicast else None, proto)
        sock = self.sockets.get(key)
        if sock is None:
            peers = PeerTable.of(conf.unicast_peer, check_unicast_src=conf.check_unicast_src) if unicast else None
            sock = VrrpSocket(
                ifname,
                local,  # type: ignore[arg-type]
                unicast=unicast,
                group=conf.mcast_dst_ip,
                unicast_ttl=conf.unicast_ttl,
                peers=peers,
                proto=proto,
            )
            sock.attach(self.loop, self._receiver(sock))
            self.sockets[key] = sock
        return sock

    def register(self, inst: Instance) -> Instance | None:
        """Deliver the adverts of `inst`'s VRID on its socket to it; the instance that
        already has that VRID there instead (and `inst` gets nothing)."""
        key = (inst.socket.key, inst.vrid)
        holder = self.by_vrid.get(key)
        if holder is not None:
            return holder
        self.by_vrid[key] = inst
        return None

    def unregister(self, inst: Instance) -> None:
        self.by_vrid = {k: v for k, v in self.by_vrid.items() if v is not inst}

    def close_unused(self, instances: Iterable[Instance]) -> None:
        used = {id(i.socket) for i in instances}
        for key, sock in list(self.sockets.items()):
            if id(sock) not in used:
                sock.close()
                del self.sockets[key]

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()

    def _receiver(self, sock: VrrpSocket) -> Callable[[Received], None]:
        def receive(rx: Received) -> None:
            self._on_rx(sock, rx)

        return receive

    def _on_rx(self, sock: VrrpSocket, rx: Received) -> None:
        if len(rx.payload) < 2:
            return
        inst = self.by_vrid.get((sock.key, rx.payload[1]))
        if inst is None or rx.src == inst.local_ip:
            return  # not one of ours (another VRID on the LAN), or our own advert looped back
        inst.on_packet(rx)
