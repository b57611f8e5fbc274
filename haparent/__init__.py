"""pykeepalived: haparent."""
