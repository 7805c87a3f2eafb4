"""nyutai (入退): glue only — the command line and the demo."""

from pathlib import Path

__version__ = "0.1.0"

# The demo's site file, also the example every test starts from.
DEMO_SITE = Path(__file__).with_name("demo_site.toml")
