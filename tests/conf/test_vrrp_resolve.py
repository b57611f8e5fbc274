"""conf.vrrp_resolve: the resolved VrrpInstance type and the table of keywords inherited
from global_defs."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from conf.diagnostics import Diagnostics
from conf.global_defs import GlobalDefs
from conf.schema import Context
from conf.vrrp_instance import VrrpInstance, VrrpInstanceBlock
from conf.vrrp_resolve import INHERIT, complete_instance, inherit
from tests.conf.util import config_of, parse, problems

MINIMAL = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress { 192.0.2.1/24 }
}
"""


def test_the_resolved_defaults_are_what_an_empty_global_defs_gives(tmp_path: Path) -> None:
    inst = config_of(parse(tmp_path, MINIMAL)).vrrp_instance["VI_1"]
    assert type(inst) is VrrpInstance
    for f in dataclasses.fields(VrrpInstance):
        if f.name in VrrpInstance.__annotations__ and f.default is not dataclasses.MISSING:
            assert getattr(inst, f.name) == f.default, f.name


def test_resolved_fields_are_not_optional_and_keep_their_keyword() -> None:
    hints = typing.get_type_hints(VrrpInstance)
    raw = {f.name: f for f in dataclasses.fields(VrrpInstanceBlock)}
    for name in VrrpInstance.__annotations__:
        assert type(None) not in typing.get_args(hints[name]), name
        resolved = next(f for f in dataclasses.fields(VrrpInstance) if f.name == name)
        assert resolved.metadata == raw[name].metadata


def test_every_inherited_keyword_is_an_optional_instance_keyword() -> None:
    hints = typing.get_type_hints(VrrpInstanceBlock)
    for rule in INHERIT:
        assert rule.keyword in hints
        assert type(None) in typing.get_args(hints[rule.keyword]), rule.keyword


def _ctx() -> Context:
    return Context(Diagnostics())


def test_inherit_given_inherited_and_strict() -> None:
    block = VrrpInstanceBlock(name="VI_1")
    g = GlobalDefs(vrrp_down_timer_adverts=5)
    rule = INHERIT.down_timer_adverts
    assert inherit(rule, None, block, g, strict=False, ctx=_ctx()) == 5
    assert inherit(rule, 7, block, g, strict=False, ctx=_ctx()) == 7
    ctx = _ctx()
    # strict mode checks the inherited value too, as keepalived does
    assert inherit(rule, None, block, g, strict=True, ctx=ctx) == 3
    assert [d.message for d in ctx.diags.items] == ["(VI_1) strict mode requires down_timer_adverts 3; using 3"]
    ctx = _ctx()
    # ... while for the garp repeat it forces an inherited value silently
    assert inherit(INHERIT.garp_lower_prio_repeat, None, block, GlobalDefs(), strict=True, ctx=ctx) == 0
    assert not ctx.diags.items


@pytest.mark.parametrize(("given", "expected"), [(None, 5), (2, 2)])
def test_complete_instance_inherits_garp_master_repeat(given: int | None, expected: int) -> None:
    block = VrrpInstanceBlock(name="VI_1", virtual_router_id=1, interface="eth0", garp_master_repeat=given)
    done = complete_instance(block, None, GlobalDefs(), _ctx())
    assert done is not None
    assert done.garp_master_repeat == expected


def test_strict_global_defs_applies_to_the_instance(tmp_path: Path) -> None:
    result = parse(tmp_path, "global_defs { vrrp_strict\n vrrp_garp_lower_prio_repeat 4 }\n" + MINIMAL)
    inst = config_of(result).vrrp_instance["VI_1"]
    assert (inst.strict_mode, inst.garp_lower_prio_repeat, inst.lower_prio_no_advert, inst.accept) == (
        True,
        0,
        True,
        False,
    )
    assert not problems(result)
