"""pykeepalived: watchdog."""
