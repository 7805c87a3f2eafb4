"""nyutai (入退): glue only — the command line, configuration loading and the demo."""

__version__ = "0.1.0"
