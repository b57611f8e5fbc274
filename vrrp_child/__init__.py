"""pykeepalived: vrrp_child."""
