"""CLI sub-command modules listed in ``bench.cli.COMMAND_MODULES``; each has ``register(sub)``."""
