"""Profiles (one per logged-in account) in $XDG_CONFIG_HOME/xtalk/config.json.

The file holds bearer tokens, so the directory is 0700 and the file 0600, written atomically through a
temporary file that is created with those permissions (never world-readable, not even for a moment).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import msgspec


class Profile(msgspec.Struct, omit_defaults=True):
    base_url: str
    token: str
    acct: str = ""
    account_id: str = ""
    client_id: str | None = None
    client_secret: str | None = None


class Config(msgspec.Struct, omit_defaults=True):
    default: str | None = None
    profiles: dict[str, Profile] = msgspec.field(default_factory=dict)


class ConfigError(Exception):
    pass


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "xtalk"


def config_path() -> Path:
    return config_dir() / "config.json"


def load() -> Config:
    path = config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return msgspec.json.decode(raw, type=Config)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path} is damaged ({exc}); remove it and log in again") from None


def save(config: Config) -> Path:
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / "config.json"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".config-", suffix=".json")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(msgspec.json.format(msgspec.json.encode(config), indent=2) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def select(config: Config, name: str | None) -> tuple[str, Profile]:
    """The profile to use: `name` (from --profile / XTALK_PROFILE) or the default one."""
    chosen = name or config.default
    if not config.profiles:
        raise ConfigError("not logged in; run: xtalk login https://your.instance")
    if chosen is None:
        if len(config.profiles) == 1:
            chosen = next(iter(config.profiles))
        else:
            raise ConfigError("several profiles and none is the default; pass --profile NAME")
    profile = config.profiles.get(chosen)
    if profile is None:
        known = ", ".join(sorted(config.profiles))
        raise ConfigError(f"no profile named {chosen!r} (known: {known})")
    return chosen, profile


def describe(config: Config) -> list[dict[str, Any]]:
    """Profiles without their secrets, for `xtalk profiles`."""
    return [{"name": name, "acct": p.acct, "base_url": p.base_url, "default": name == config.default}
            for name, p in sorted(config.profiles.items())]
