"""Imports every area's command module so its commands register on `main`.

One import line per area keeps parallel work on the CLI free of conflicts.
"""

from digest import (
    cli_ops,  # noqa: F401  (run, status)
    cli_render,  # noqa: F401  (digest preview)
    cli_sources,  # noqa: F401
    cli_subscribers,  # noqa: F401  (subscribers, serve)
    cli_summarize,  # noqa: F401
)
