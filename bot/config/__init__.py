"""``config.toml``: one module per section (its Pydantic model and the checks
that belong to it), loaded and checked by `bot.config.loading`.

`load_config` gives a validated `Config` or raises `ConfigError` with one
line per problem; `check_config` lists the problems for ``confidant
check-config``, the running system's included.
"""

from bot.config.admins import AdminEntry
from bot.config.base import Section, split_listen
from bot.config.loading import (
    ConfigError,
    check_config,
    check_config_async,
    default_config,
    load_config,
    runtime_problems,
)
from bot.config.model import SECTIONS, Config

__all__ = [
    "SECTIONS",
    "AdminEntry",
    "Config",
    "ConfigError",
    "Section",
    "check_config",
    "check_config_async",
    "default_config",
    "load_config",
    "runtime_problems",
    "split_listen",
]
