"""The LVS and checker blocks are imported only for a configuration that uses them
(conf.lvs_top): a VRRP-only configuration reads without them, and what depends on every
block being known (script security's walk, keyword hints, the man page, pickles) is the
same whether or not they were imported yet. Each case runs in a fresh interpreter: in this
one conf.lvs is long imported."""

from __future__ import annotations

import pickle
from pathlib import Path

from conf.lvs import VIRTUAL_SERVER_CONV, VirtualServer
from conf.model import keywords_by_block
from tests.conf.util import config_of, messages, parse
from tests.watchdog.test_lazypkg import VRRP_ONLY
from tests.watchdog.test_lazypkg import run as fresh

LVS_MODULES = ("conf.lvs", "conf.lvs_group", "conf.checkers")


def lvs_config(notify_up: str = "") -> str:
    return (
        "virtual_server 192.0.2.10 80 {\n    protocol TCP\n    lb_algo rr\n    lb_kind NAT\n"
        f"    real_server 10.0.0.2 80 {{\n{notify_up}        TCP_CHECK {{\n        }}\n    }}\n}}\n"
    )


def test_a_vrrp_only_configuration_imports_no_lvs_module_one_with_a_virtual_server_does(tmp_path: Path) -> None:
    (tmp_path / "vrrp.conf").write_text(VRRP_ONLY)
    (tmp_path / "lvs.conf").write_text(lvs_config())
    out = fresh(
        f"""
        import sys
        from conf import load
        r = load({str(tmp_path / "vrrp.conf")!r}, interfaces=frozenset({{"eth0"}}))
        assert r.ok and r.config is not None and r.config.virtual_server == ()
        print(" ".join(m for m in {LVS_MODULES!r} if m in sys.modules) or "-")
        r = load({str(tmp_path / "lvs.conf")!r}, interfaces=frozenset({{"eth0"}}))
        assert r.config is not None
        print(" ".join(m for m in {LVS_MODULES!r} if m in sys.modules), type(r.config.virtual_server[0]).__name__)
        """
    )
    assert out.splitlines() == ["-", " ".join(LVS_MODULES) + " VirtualServer"]


def test_script_security_walks_virtual_servers_read_after_a_vrrp_only_configuration(tmp_path: Path) -> None:
    """Which fields may hold a script is cached per class; a reload that brings the first
    virtual_server must still see its real servers' scripts."""
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o777)
    open_dir.chmod(0o777)
    script = open_dir / "up.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    secure = "global_defs {\n    enable_script_security\n    script_user root\n}\n"
    (tmp_path / "vrrp.conf").write_text(secure + VRRP_ONLY)
    (tmp_path / "lvs.conf").write_text(secure + VRRP_ONLY + lvs_config(f"        notify_up {script}\n"))
    expected = messages(parse(tmp_path, secure + VRRP_ONLY + lvs_config(f"        notify_up {script}\n")))
    assert any("Unsafe permissions found for script" in m for m in expected)
    out = fresh(
        f"""
        from conf import load
        assert load({str(tmp_path / "vrrp.conf")!r}, config_id="node1", interfaces=frozenset({{"eth0"}})).ok
        r = load({str(tmp_path / "lvs.conf")!r}, config_id="node1", interfaces=frozenset({{"eth0"}}))
        for d in r.diagnostics.items:
            print(d.render(test_mode=True))
        print(r.config.virtual_server[0].real_server[0].notify_up)
        """
    )
    rendered = [line.replace("/lvs.conf", "/keepalived.conf") for line in out.splitlines()]
    assert rendered == [*expected, "None"]


def test_keyword_hints_name_lvs_blocks_before_any_virtual_server(tmp_path: Path) -> None:
    text = VRRP_ONLY + "delay_loop 6\n"
    expected = messages(parse(tmp_path, text))
    assert any("belongs in" in m and "virtual_server" in m for m in expected)
    out = fresh(
        f"""
        from conf import load
        r = load({str(tmp_path / "keepalived.conf")!r}, config_id="node1", interfaces=frozenset({{"eth0", "eth1"}}))
        for d in r.diagnostics.items:
            print(d.render(test_mode=True))
        """
    )
    assert out.splitlines() == expected


def test_the_keyword_table_gives_the_deferred_converters_syntax() -> None:
    top = keywords_by_block()["LvsTop"]
    assert top["virtual_server"].convert.syntax == VIRTUAL_SERVER_CONV.syntax
    assert top["virtual_server"].convert.takes_block and top["SSL"].convert.takes_block


def test_a_model_with_virtual_servers_unpickles_where_conf_lvs_was_not_imported(tmp_path: Path) -> None:
    config = config_of(parse(tmp_path, VRRP_ONLY + lvs_config()))
    assert isinstance(config.virtual_server[0], VirtualServer)
    (tmp_path / "model.pickle").write_bytes(pickle.dumps(config))
    out = fresh(
        f"""
        import pickle, sys
        import conf
        assert "conf.lvs" not in sys.modules
        config = pickle.loads(open({str(tmp_path / "model.pickle")!r}, "rb").read())
        vs = config.virtual_server[0]
        print(type(vs).__module__, vs, vs.real_server[0].address, len(vs.real_server[0].tcp_check))
        open({str(tmp_path / "again.pickle")!r}, "wb").write(pickle.dumps(config))
        """
    )
    assert out.splitlines() == ["conf.lvs 192.0.2.10:80 10.0.0.2 1"]
    again = pickle.loads((tmp_path / "again.pickle").read_bytes())
    assert again == config and again.virtual_server == config.virtual_server
