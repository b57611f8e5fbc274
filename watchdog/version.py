"""pykeepalived's version and the keepalived release whose behaviour it follows (in watchdog/, the
layer every process and tool shares, so pygenhash and the children need not import the parent)."""

VERSION = "0.1.0"
KEEPALIVED_COMPAT = "2.2.7"
