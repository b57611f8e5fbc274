"""pykeepalived's version and the keepalived release whose behaviour it follows."""

VERSION = "0.1.0"
KEEPALIVED_COMPAT = "2.2.7"
