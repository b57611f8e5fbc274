"""The LVS keywords of the top level (virtual_server_group, virtual_server, SSL), without
the LVS and checker blocks themselves.

Those blocks and their keyword tables (conf.lvs, conf.lvs_group, conf.checkers: about
1 MB of Python objects) are imported when a configuration first uses one of these
keywords: a VRRP-only daemon never needs them, in the parent or in the VRRP child.
The model is the same either way: `Config.virtual_server` is a tuple of
`conf.lvs.VirtualServer` (empty without LVS), and a model pickled with virtual servers
imports conf.lvs where it is unpickled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from conf.modelclass import model_class
from conf.schema import EMPTY, Block, Context, FrozenMap, kw
from conf.values import Deferred

if TYPE_CHECKING:
    from conf.lvs import SslConf, VirtualServer
    from conf.lvs_group import VirtualServerGroup

LVS = "conf.lvs"  # the module that holds the blocks and their converters


@model_class
class LvsTop(Block):
    virtual_server_group: FrozenMap[str, VirtualServerGroup] = kw(Deferred(LVS, "VSG_CONV"), EMPTY, many="map")
    virtual_server: tuple[VirtualServer, ...] = kw(Deferred(LVS, "VIRTUAL_SERVER_CONV"), (), many="list")
    ssl: SslConf | None = kw(Deferred(LVS, "SSL_CONV"), keyword="SSL")

    def finish_lvs(self, ctx: Context) -> Self:
        """The checks across virtual servers (`conf.lvs.finish_lvs`); nothing to do, and
        nothing imported, without any."""
        if not self.virtual_server:
            return self
        from conf.lvs import finish_lvs  # noqa: PLC0415 (see the module docstring)

        return finish_lvs(self, ctx)
