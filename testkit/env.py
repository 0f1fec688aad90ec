"""The environment of the processes tests and benchmarks start: nothing of the caller's settings.

A developer's shell may export TESSIE_ACCESS_TOKEN, TWC_CHARGERS, TZ or CHARGING_CONFIG; a child that
inherited them would see other chargers, another zone or a real token. Every child gets the caller's
environment without any variable our configuration reads, and its default configuration and secrets
files pointed at empty files, so neither ./config.yaml nor ./.secrets is ever read.
"""
from __future__ import annotations

import os
from typing import Mapping, MutableMapping

from servicekit.config import SECRET_NAMES, reference_rows

# Every environment variable our configuration reads (settings, secrets, the configuration file).
CONFIG_ENV = {env for _, env, _, _ in reference_rows() if env} | set(SECRET_NAMES) | {"CHARGING_CONFIG"}
# Families of settings, so a variable added later is dropped before a test or benchmark knows it.
SETTING_PREFIXES = ("TWC_", "TESSIE_", "SMART_", "LOCAL_TWC", "FLEET_", "COMED_", "WALL_CONNECTOR", "VEHICLE_NAMES",
                    "TARGET_ID", "ENERGY_SITE", "PRICE_", "SESSION_STORE", "PROMETHEUS_URL", "CHARGING_")


def ignore_user_files(environ: MutableMapping[str, str]) -> None:
    """Point every loader's default configuration and secrets file at an empty file (loaders take
    them from $CHARGING_CONFIG and $CHARGING_SECRETS), so ./config.yaml and ./.secrets are not read."""
    environ["CHARGING_CONFIG"] = os.devnull
    environ["CHARGING_SECRETS"] = os.devnull


def clean_env(extra: Mapping[str, str] | None = None, **more: str) -> dict[str, str]:
    """This process's environment without any setting of ours, user files ignored, then `extra`."""
    env = {key: value for key, value in os.environ.items()
           if key not in CONFIG_ENV and not key.startswith(SETTING_PREFIXES)}
    ignore_user_files(env)
    return {**env, **(extra or {}), **more}
