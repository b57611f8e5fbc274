"""Importing a package's submodules without running the package's own `__init__` first.

pyroute2's `__init__` imports every part of pyroute2 (IPDB, NDB, conntrack, nl80211, psutil
...): 210 modules, 8 MB of heap and about 0.1 s, where the children use a handful of its
netlink codecs (1.3 MB, 40 ms). `defer_init("pyroute2")` registers the package with its
`__path__` but without running its `__init__`, so `from pyroute2.netlink.rtnl import ...`
loads only what it names. The first access to a name the `__init__` would have defined
(`from pyroute2 import IPVS`) runs the `__init__` then, so nothing that uses the package
the usual way notices the difference but the time and memory it saves (a name that is a
submodule, `from pyroute2 import config`, imports that submodule alone).

Called by the `__init__` of each of our packages that import pyroute2 (the parent, both
children and their shared code), so it happens before the first pyroute2 import; when
something imported pyroute2 before, the package is left as it is.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType

_LOCK = threading.RLock()


def defer_init(name: str) -> None:
    """Register package `name` with its submodules importable and its `__init__` deferred
    to the first attribute it lacks; nothing happens if it is already imported or absent."""
    with _LOCK:
        if name in sys.modules:
            return
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return
        module = importlib.util.module_from_spec(spec)
        state = {"done": False}

        def load_rest(attr: str) -> object:
            # `from pyroute2 import config` names a submodule: that one alone.
            if not attr.startswith("__") and importlib.util.find_spec(f"{name}.{attr}") is not None:
                return importlib.import_module(f"{name}.{attr}")
            with _LOCK:
                if not state["done"]:
                    state["done"] = True
                    del module.__dict__["__getattr__"]
                    assert spec.loader is not None
                    spec.loader.exec_module(module)
            try:
                return module.__dict__[attr]
            except KeyError:
                raise AttributeError(f"module {name!r} has no attribute {attr!r}") from None

        module.__dict__["__getattr__"] = load_rest
        sys.modules[name] = module


def is_deferred(module: ModuleType) -> bool:
    """Whether `module`'s `__init__` has not run yet (tests)."""
    return "__getattr__" in module.__dict__
