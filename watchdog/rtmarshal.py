"""Decoding rtnetlink messages: pyroute2's marshal for the message types the children read.

pyroute2's own `MarshalRtnl` maps every rtnetlink family (traffic control, neighbour tables,
nsid, stats, bridge VLANs ...) and comes through `pyroute2.netlink.nlsocket`, which imports
its socket machinery (multiprocessing, its request filters, netns): about 1.5 MB in every
process for codecs the children never see. They read links, addresses, routes and rules
(dumps they ask for, notification groups they join); a message of another type decodes as
a bare `nlmsg`, as in pyroute2 for a type it does not know."""

from __future__ import annotations

from typing import Any

from pyroute2.netlink import rtnl
from pyroute2.netlink.rtnl.fibmsg import fibmsg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

try:
    from pyroute2.netlink.marshal import Marshal
except ImportError:  # pyroute2 before 0.8 kept it in nlsocket
    from pyroute2.netlink.nlsocket import Marshal


class RtnlMarshal(Marshal):  # type: ignore[misc]  # pyroute2 is untyped
    msg_map = {
        rtnl.RTM_NEWLINK: ifinfmsg,
        rtnl.RTM_DELLINK: ifinfmsg,
        rtnl.RTM_GETLINK: ifinfmsg,
        rtnl.RTM_SETLINK: ifinfmsg,
        rtnl.RTM_NEWLINKPROP: ifinfmsg,
        rtnl.RTM_DELLINKPROP: ifinfmsg,
        rtnl.RTM_NEWADDR: ifaddrmsg,
        rtnl.RTM_DELADDR: ifaddrmsg,
        rtnl.RTM_GETADDR: ifaddrmsg,
        rtnl.RTM_NEWROUTE: rtmsg,
        rtnl.RTM_DELROUTE: rtmsg,
        rtnl.RTM_GETROUTE: rtmsg,
        rtnl.RTM_NEWRULE: fibmsg,
        rtnl.RTM_DELRULE: fibmsg,
        rtnl.RTM_GETRULE: fibmsg,
    }

    def fix_message(self, msg: Any) -> None:
        # As MarshalRtnl: the message's type by name ("RTM_NEWLINK") in msg["event"].
        event = rtnl.RTM_VALUES.get(msg["header"]["type"])
        if event is not None:
            msg["event"] = event
