"""Settings: a TOML file plus CROSSTALK_* environment variables (environment wins).

Every setting is declared once in SETTINGS; the loader, the validation, the `*_FILE` secret
indirection and the README's configuration table all come from that one list.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the setting."""


@dataclass(frozen=True)
class Setting:
    key: str  # dotted TOML key, e.g. "instance.title"
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    check: Callable[[Any], str | None] | None = None  # returns an error message or None

    @property
    def env(self) -> str:
        return "CROSSTALK_" + self.key.upper().replace(".", "_")


def _port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be between 0 and 65535"


def _positive(v: int) -> str | None:
    return None if v > 0 else "must be a positive number"


def _domain(v: str) -> str | None:
    if not v:
        return "is required (the public host name, e.g. social.example.org)"
    host, _, port = v.partition(":")
    if "/" in v or " " in v or not host or (port and not port.isdigit()):
        return f"must be a host name with an optional port, not {v!r}"
    return None


def _networks(v: list[str]) -> str | None:
    for item in v:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            return f"has an invalid address or network {item!r}"
    return None


SETTINGS: tuple[Setting, ...] = (
    Setting("domain", str, "", "Public host name (may carry a port, e.g. 127.0.0.1:8001); used in every URL.", check=_domain),
    Setting("scheme", str, "https", "URL scheme of the public URLs; http only with development = true.", ("https", "http")),
    Setting("development", bool, False, "Development mode: allows plain http for our URLs and for peers."),
    Setting("host", str, "127.0.0.1", "Address to bind the HTTP server to."),
    Setting("port", int, 8080, "Port to bind the HTTP server to.", check=_port),
    Setting("data_dir", str, "./data", "Directory for the SQLite database and media files."),
    Setting("registrations", str, "closed", "Who may sign up.", ("closed", "open", "approval")),
    Setting("password_grant", bool, False, "Allow the OAuth password grant (toot login_cli, scripts)."),
    Setting("instance.title", str, "Crosstalk", "Instance name shown to clients."),
    Setting("instance.description", str, "A Crosstalk instance.", "Instance description."),
    Setting("instance.contact_email", str, "", "Contact e-mail address of the admins."),
    Setting("statuses.max_characters", int, 5000, "Longest status text accepted.", check=_positive),
    Setting("statuses.min_schedule_seconds", int, 300, "How far ahead a scheduled status must be (seconds).", check=_positive),
    Setting("polls.min_expiration", int, 300, "Shortest poll duration accepted (seconds).", check=_positive),
    Setting("polls.max_expiration", int, 2629746, "Longest poll duration accepted (seconds).", check=_positive),
    Setting("scheduler.interval", int, 10, "Seconds between checks for due scheduled statuses and ended polls.",
            check=_positive),
    Setting("media.max_image_size", int, 16 * 1024 * 1024, "Largest image upload accepted (bytes).", check=_positive),
    Setting("media.max_image_pixels", int, 33177600, "Most pixels (width × height) an uploaded image may have.",
            check=_positive),
    Setting("media.unattached_ttl", int, 86400, "Seconds before an upload no post uses is deleted.", check=_positive),
    Setting("rate_limit.requests", int, 300, "Requests allowed per client per window.", check=_positive),
    Setting("rate_limit.window", int, 300, "Rate-limit window in seconds.", check=_positive),
    Setting("log.format", str, "text", "Log format.", ("text", "json")),
    Setting("log.level", str, "info", "Log level.", ("debug", "info", "warning", "error")),
    Setting("streaming.heartbeat_seconds", int, 10, "Seconds between keep-alive comments on server-sent event streams.",
            check=_positive),
    Setting("shutdown_grace_seconds", int, 25, "On SIGTERM, how long to let in-flight requests and deliveries "
            "finish before exiting.", check=_positive),
    Setting("metrics.enabled", bool, True, "Serve Prometheus metrics at /metrics."),
    Setting("metrics.port", int, 0, "Serve /metrics on this separate port instead (0 = the main port).", check=_port),
    Setting("metrics.allowed_addresses", list, ["127.0.0.1/8", "::1"],
            "Client addresses or networks allowed to read /metrics.", check=_networks),
    Setting("federation.mode", str, "allowlist", "Who we federate with.", ("allowlist", "blocklist", "closed")),
    Setting("federation.authorized_fetch", bool, True,
            "Require a valid signature from an allowed domain for ActivityPub documents (secure mode)."),
    Setting("web.public_pages", bool, True, "Serve HTML profile and post pages (public posts only) to visitors."),
    Setting("statuses.local_only_default", bool, False, "New posts are local-only (never federated) unless chosen otherwise."),
    Setting("boundary_log.retention_days", int, 90, "How long boundary-log entries are kept.", check=_positive),
    Setting("federation.retry_scale", float, 1.0,
            "Multiplier for delivery retry delays (1.0 = Mastodon's schedule of about two days)."),
    Setting("federation.allowed_private_addresses", list, [],
            "Private/loopback addresses or networks peers may live on (e.g. 10.0.0.0/8).", check=_networks),
)
_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class Config:
    values: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def domain(self) -> str:
        return self.values["domain"]

    @property
    def base_url(self) -> str:
        return f"{self.values['scheme']}://{self.values['domain']}"

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data_dir"])

    @property
    def db_path(self) -> Path:
        return self.data_dir / "crosstalk.sqlite3"


def _coerce(setting: Setting, raw: Any, source: str) -> Any:
    name = f"{setting.key} ({source})"
    kind = setting.kind
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"setting {name}: expected true or false, got {raw!r}")
    if kind is float:
        try:
            return float(str(raw).strip())
        except ValueError:
            raise ConfigError(f"setting {name}: expected a number, got {raw!r}") from None
    if kind is int:
        if isinstance(raw, bool):
            raise ConfigError(f"setting {name}: expected a whole number, got {raw!r}")
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"setting {name}: expected a whole number, got {raw!r}") from None
    if kind is list:
        if isinstance(raw, list):
            return [str(x) for x in raw]
        return [part.strip() for part in str(raw).split(",") if part.strip()]
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise ConfigError(f"setting {name}: expected text, got {raw!r}")
    return str(raw)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Read the file (if any), then the environment, then explicit overrides; validate everything."""
    env = os.environ if env is None else env
    path = path or env.get("CROSSTALK_CONFIG")
    from_file: dict[str, Any] = {}
    if path:
        try:
            with open(path, "rb") as fh:
                from_file = _flatten(tomllib.load(fh))
        except FileNotFoundError:
            raise ConfigError(f"config file {path}: not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: invalid TOML ({exc})") from None
        unknown = sorted(set(from_file) - set(_BY_KEY))
        if unknown:
            raise ConfigError(f"setting {unknown[0]} (config file): unknown setting")

    values: dict[str, Any] = {}
    for s in SETTINGS:
        value = s.default
        if s.key in from_file:
            value = _coerce(s, from_file[s.key], "config file")
        file_var = s.env + "_FILE"
        if file_var in env:
            try:
                value = _coerce(s, Path(env[file_var]).read_text().strip(), file_var)
            except OSError as exc:
                raise ConfigError(f"setting {s.key} ({file_var}): cannot read {env[file_var]}: {exc.strerror}") from None
        if s.env in env:
            value = _coerce(s, env[s.env], s.env)
        if overrides and s.key in overrides:
            value = _coerce(s, overrides[s.key], "command line")
        if s.choices and value not in s.choices:
            raise ConfigError(f"setting {s.key}: must be one of {', '.join(s.choices)}, got {value!r}")
        if s.check and (problem := s.check(value)):
            raise ConfigError(f"setting {s.key} ({s.env}): {problem}")
        values[s.key] = value

    values["domain"] = values["domain"].lower()
    if values["scheme"] == "http" and not values["development"]:
        raise ConfigError("setting scheme (CROSSTALK_SCHEME): http is only allowed with development = true "
                          "(CROSSTALK_DEVELOPMENT=true); use https in production")
    return Config(values)


def settings_table_markdown() -> str:
    """The README's configuration reference, generated from SETTINGS."""
    rows = ["| Setting | Environment | Default | Meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = s.default if s.default not in ("", []) else "—"
        if isinstance(default, list):
            default = ", ".join(default)
        elif isinstance(default, bool):
            default = str(default).lower()
        choices = f" One of: {', '.join(s.choices)}." if s.choices else ""
        rows.append(f"| `{s.key}` | `{s.env}` | `{default}` | {s.help}{choices} |")
    return "\n".join(rows)
