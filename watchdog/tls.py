"""asyncio without the ssl module until a TLS connection needs one.

asyncio imports `ssl` as it is imported (base_events, selector_events, sslproto), and ssl
loads OpenSSL: about 3 MB of libcrypto pages become resident in every process that
imports asyncio (measured with 250 instances: 2.7 MB of the parent's 21.3 MB PSS). Of our
processes only the checker child's SSL_GET makes TLS connections
(checker_child/checks/http.py); the parent and the VRRP child never do. So asyncio is
imported with ssl hidden, which its modules take as "no TLS support" (the way they run on
a Python built without OpenSSL), and `enable()` hands them the ssl module when the first
TLS context is built.

`enable()` depends on which asyncio modules keep a module-level `ssl` name (CPython 3.11
and 3.12: the three above); tests/watchdog/test_tls.py makes a real TLS connection
through asyncio in an interpreter set up this way, so an interpreter that moves them fails
there.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

# The asyncio modules whose functions test their module-level `ssl` (None: "no TLS").
_SSL_NAME_USERS = ("asyncio.base_events", "asyncio.selector_events")
# This one also derives names from ssl when it is imported (SSLAgainErrors): run it again.
_SSL_PROTOCOL = "asyncio.sslproto"


def import_asyncio() -> None:
    """Import asyncio with the ssl module hidden, unless either is already imported."""
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # import ssl -> ImportError
    try:
        import asyncio  # noqa: F401, PLC0415 (the point of this function)
    finally:
        del sys.modules["ssl"]


def enable() -> ModuleType:
    """Import ssl and give it to asyncio's modules that were imported without it; the ssl
    module. Idempotent, and a no-op for an asyncio that was imported with ssl."""
    import ssl  # noqa: PLC0415 (only where TLS is used: the point of this module)

    for name in _SSL_NAME_USERS:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "ssl", ssl) is None:
            module.ssl = ssl  # type: ignore[attr-defined]
    sslproto = sys.modules.get(_SSL_PROTOCOL)
    if sslproto is not None and getattr(sslproto, "ssl", ssl) is None:
        importlib.reload(sslproto)
    return ssl
