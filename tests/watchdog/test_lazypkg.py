"""watchdog.lazypkg: pyroute2's submodules without its __init__, the rest on first use; and
what the parent imports (a lean parent: no child's code until it starts that child)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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
