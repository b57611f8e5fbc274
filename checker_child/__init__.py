"""pykeepalived: checker_child."""
