"""pykeepalived: haparent."""

from watchdog.lazypkg import defer_init

# pyroute2's own __init__ imports all of pyroute2; we use a few of its netlink codecs.
defer_init("pyroute2")
