"""The whole configuration: the top level of keepalived.conf.

Each keyword family contributes its top-level keywords as a mixin (global_defs and the
static blocks, the VRRP blocks, the LVS blocks); `Config` joins them and runs the
checks that span families.
"""

from __future__ import annotations

from typing import ClassVar

from conf.global_defs import GlobalTop
from conf.lvs_top import LvsTop
from conf.modelclass import model_class
from conf.schema import Block, Context, KeywordSpec, block_label, each_block_field, import_deferred
from conf.security import check_script_security
from conf.vrrp import VrrpTop


@model_class
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


def keywords_by_block() -> dict[str, dict[str, KeywordSpec]]:
    """block label -> keyword -> spec, over every Block class of the model (the first class
    to define a keyword under a label gives its spec): what the keyword-coverage test and
    the pykeepalived.conf(5) page walk."""
    import_deferred()
    found: dict[str, dict[str, KeywordSpec]] = {}
    todo: list[type[Block]] = [Config, Block]
    seen: set[type[Block]] = set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith(("tests", "__main__")):
            continue  # test-only blocks
        for fname, spec in each_block_field(cls):
            found.setdefault(block_label(cls), {}).setdefault(spec.keyword or fname, spec)
    return found
