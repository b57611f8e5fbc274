"""The whole configuration: the top level of keepalived.conf.

Each keyword family contributes its top-level keywords as a mixin (global_defs and the
static blocks, the VRRP blocks, the LVS blocks); `Config` joins them and runs the
checks that span families.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from conf.global_defs import GlobalTop
from conf.lvs import LvsTop
from conf.schema import Context
from conf.security import check_script_security
from conf.vrrp import VrrpTop


@dataclass(frozen=True)
class Config(GlobalTop, VrrpTop, LvsTop):
    label: ClassVar[str] = "the top level"

    def finish(self, ctx: Context) -> Config:
        if self.net_namespace:
            # keepalived runs inside that namespace (with a mount namespace of its own):
            # this host's interfaces and script paths say nothing about it, and
            # `keepalived -t` does not check them either.
            ctx.interfaces = None
            ctx.settings["foreign_namespace"] = True
        config = self.finish_global(ctx)
        # Script security runs before the VRRP and LVS checks, so that what it disables
        # is then dropped by them in keepalived's words.
        config = check_script_security(config, ctx)
        config = config.finish_vrrp(ctx)
        return config.finish_lvs(ctx)

    @property
    def has_vrrp(self) -> bool:
        """keepalived starts the VRRP child when there is any vrrp_instance."""
        return bool(self.vrrp_instance)

    @property
    def has_checker(self) -> bool:
        """keepalived starts the checker child when there is any virtual_server."""
        return bool(self.virtual_server)
