"""The one exception type the CLI turns into a one-line message and a non-zero exit, and the
exit statuses every command uses."""

# Exit statuses, the same for every command (README, "Exit statuses"):
OK = 0  # the work is complete
FAILED = 1  # some or all of the work failed; a summary on stderr says what and why
USAGE = 2  # bad usage or a bad config, found before any work starts


class DocsynthError(Exception):
    """A problem the user can fix: bad input, missing file, wrong config value.

    The message must name the file or key involved and say what to do; the CLI prints it on
    one line (no traceback) and exits with ``exit_code``.
    """

    exit_code = USAGE

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class Incomplete(DocsynthError):
    """The work ran, but some or all of it failed: the message says what and why (exit 1)."""

    exit_code = FAILED
