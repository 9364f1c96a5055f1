"""The command line's sub-commands, one module each (see nst_utils.cli.COMMANDS)."""
