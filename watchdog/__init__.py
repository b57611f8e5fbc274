"""pykeepalived: watchdog."""

from watchdog.lazypkg import defer_init
from watchdog.tls import import_asyncio

# pyroute2's own __init__ imports all of pyroute2; we use a few of its netlink codecs.
defer_init("pyroute2")
# Every package of ours imports watchdog first: asyncio comes in here, without OpenSSL
# (watchdog/tls.py: the checker's SSL_GET brings it back where it is used).
import_asyncio()
