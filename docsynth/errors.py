"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class DocsynthError(Exception):
    """A problem the user can fix: bad input, missing file, wrong config value.

    The message must name the file or key involved and say what to do; the CLI prints it on
    one line (no traceback) and exits with ``exit_code``.
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
