"""`CLIError`: the command line's usage error (a message on stderr, exit status 2)."""


class CLIError(Exception):
    """A usage error: printed on stderr (no traceback), exit status 2."""
