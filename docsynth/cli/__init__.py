"""The command line: the Typer app (``app``: generate, plugins, config) and one module per command group."""
