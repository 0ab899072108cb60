"""pytest front door: the plugin and its xdist scheduling."""
