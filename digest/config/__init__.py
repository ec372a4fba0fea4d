"""Settings: loaded once (defaults < digest.toml < environment < flags),
validated, and passed down; each stage takes only its own group."""

from digest.config.load import SECRETS, SPEC, load_settings, setting_names
from digest.config.settings import (
    Bounces,
    Fetch,
    Look,
    Schedule,
    SectionConfig,
    Sender,
    Settings,
    Signup,
    Smtp,
    SourceConfig,
    SummaryOptions,
)

__all__ = [
    "SECRETS",
    "SPEC",
    "Bounces",
    "Fetch",
    "Look",
    "Schedule",
    "SectionConfig",
    "Sender",
    "Settings",
    "Signup",
    "Smtp",
    "SourceConfig",
    "SummaryOptions",
    "load_settings",
    "setting_names",
]
