"""watchdog.lazypkg: pyroute2's submodules without its __init__, the rest on first use; and
what the parent imports (a lean parent: no child's code until it starts that child, and no
code for a feature the configuration and the command line leave off)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


VRRP_ONLY = """
global_defs {
    router_id lean
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.1/32
    }
}
"""
SMTP = "global_defs {\n    smtp_server 192.0.2.25\n    notification_email {\n        a@example.com\n    }\n}\n"
# Modules of features a VRRP-only configuration, run with -n and without --metrics-address,
# does not use: SMTP alerts, /metrics, pyroute2's socket machinery and codecs we do not read,
# daemonizing, keyword suggestions, vrrp_script look-ups on $PATH, spilled payloads and dumps
# (tempfile), ${_RANDOM}, the stdlib's syslog handler, OpenSSL (TLS for SSL_GET only:
# watchdog/tls.py; hashes for auth_type PASS and AH only), the LVS and checker blocks of the
# configuration model (conf.lvs_top), the VRRP child's no-accept tables, dump layouts, sync
# group coordinators, VMACs, routes and rules. Not ctypes: watchdog.heaptrim imports it at the first fork.
FEATURE_MODULES = (
    "ssl",
    "_ssl",
    "_hashlib",
    "hmac",
    "daemon",
    "difflib",
    "shutil",
    "tempfile",
    "random",
    "logging.handlers",
    "aiosmtplib",
    "email.utils",
    "prometheus_client",
    "wsgiref",
    "http.server",
    "urllib.request",
    "pyroute2.netlink.nlsocket",
    "pyroute2.netlink.rtnl.tcmsg",
    "conf.lvs",
    "conf.lvs_group",
    "conf.checkers",
    "vrrp_child.droptable",
    "vrrp_child.dumps",
    "vrrp_child.syncgroup",
    "vrrp_child.macvlan",
    "vrrp_child.routing",
)


def run(code: str) -> str:
    """`code` in a fresh interpreter (sys.modules is what is under test); its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_codecs_without_the_package_init_then_the_rest_on_first_use() -> None:
    out = run(
        """
        import sys
        import vrrp_child.netlink, vrrp_child.routing
        from watchdog.lazypkg import is_deferred
        import pyroute2
        print(is_deferred(pyroute2), "pyroute2.ndb.main" in sys.modules)
        from pyroute2 import config  # a submodule: that one alone
        print(is_deferred(pyroute2), config.__name__)
        from pyroute2 import IPRoute  # a name of the __init__: it runs now
        print(is_deferred(pyroute2), IPRoute.__module__, "pyroute2.ndb.main" in sys.modules)
        """
    )
    # the whole package once a name of its __init__ is asked for (NDB included)
    assert out.split("\n")[:3] == ["True False", "True pyroute2.config", "False pyroute2.iproute.linux True"]


def test_an_unknown_name_is_an_attribute_error_after_the_init_ran() -> None:
    out = run(
        """
        import watchdog, pyroute2
        try:
            pyroute2.no_such_name
        except AttributeError as e:
            print("AttributeError", e)
        print(pyroute2.__version__)
        """
    )
    assert "AttributeError module 'pyroute2' has no attribute 'no_such_name'" in out


def test_the_parent_imports_no_child_code() -> None:
    out = run(
        """
        import sys
        import haparent.cli, haparent.start
        print(sorted({m.split(".")[0] for m in sys.modules if m.startswith(("checker_child", "dns", "pyroute2.ndb"))}))
        print("vrrp_child.workload" in sys.modules)
        """
    )
    assert out.split() == ["[]", "False"]


def parent_before_fork(tmp_path: Path, config: str, *args: str) -> list[str]:
    """Which of FEATURE_MODULES a parent holds when it forks its VRRP child: the command line
    as `pykeepalived -f CONF -n -l ARGS` parses it, the configuration loaded, the child's
    entry prepared (haparent.child.child_entry: the imports done before the fork)."""
    path = tmp_path / "keepalived.conf"
    path.write_text(config)
    out = run(
        f"""
        import sys
        import haparent.start, haparent.supervisor
        from conf import load
        from haparent import cli
        from haparent.child import child_entry
        from haparent.specs import VRRP
        from watchdog.heartbeat import HeartbeatSettings
        opts, _ = cli.parse_args(["-f", {str(path)!r}, "-n", "-l", *{list(args)!r}])
        config = load(opts.config_file).config
        assert config is not None and config.has_vrrp and not config.has_checker
        child_entry(VRRP, config, opts, HeartbeatSettings(1.0, 3.0), lambda spec: None)
        print(" ".join(m for m in {FEATURE_MODULES!r} if m in sys.modules))
        """
    )
    return out.split()


def test_a_vrrp_only_parent_imports_no_code_of_features_left_off(tmp_path: Path) -> None:
    assert parent_before_fork(tmp_path, VRRP_ONLY) == []


def test_smtp_alerts_load_their_client_before_the_fork(tmp_path: Path) -> None:
    assert {"aiosmtplib", "email.utils"} <= set(parent_before_fork(tmp_path, SMTP + VRRP_ONLY))


def test_metrics_address_loads_prometheus_client(tmp_path: Path) -> None:
    assert "prometheus_client" in parent_before_fork(tmp_path, VRRP_ONLY, "--metrics-address", "127.0.0.1:9650")
