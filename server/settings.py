"""Settings: a TOML file plus CROSSTALK_* environment variables (environment wins).

The typed classes below are the one settings table: each field is a setting with its type, default
and help text. The loader, the validation, the `*_FILE` secret indirection and the README's
configuration table are all derived from them, and code reads settings as attributes
(`settings.federation.mode`), never by string key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the setting."""


class Scheme(StrEnum):
    HTTPS = "https"
    HTTP = "http"


class Registrations(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    APPROVAL = "approval"


class FederationMode(StrEnum):
    ALLOWLIST = "allowlist"
    BLOCKLIST = "blocklist"
    CLOSED = "closed"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


Check = Callable[[Any], str | None]  # returns an error message or None


def setting(default: Any, help: str, check: Check | None = None) -> Any:
    """One row of the settings table."""
    meta = {"help": help, "check": check}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def _port(v: int) -> str | None:
    return None if 0 <= v <= 65535 else "must be between 0 and 65535"


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be a positive number"


def _not_negative(v: float) -> str | None:
    return None if v >= 0 else "must not be negative"


def _signing_processes(v: int) -> str | None:
    return None if -1 <= v <= 64 else "must be -1 (automatic), 0 (none) or a number of processes up to 64"


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


@dataclass(frozen=True, kw_only=True)
class InstanceSettings:
    title: str = setting("Crosstalk", "Instance name shown to clients.")
    description: str = setting("A Crosstalk instance.", "Instance description.")
    contact_email: str = setting("", "Contact e-mail address of the admins.")


@dataclass(frozen=True, kw_only=True)
class StatusSettings:
    max_characters: int = setting(5000, "Longest status text accepted.", _positive)
    min_schedule_seconds: int = setting(300, "How far ahead a scheduled status must be (seconds).", _positive)
    local_only_default: bool = setting(
        False, "New posts are local-only (never federated) unless chosen otherwise.")
    render_cache_mb: int = setting(
        32, "Megabytes (estimated) of statuses kept in memory as records and encoded JSON, the same for every "
        "viewer, for the timelines (each used only while its version in the database is unchanged).",
        _not_negative)
    # 8: on the bench's 10,000 accounts, thread pages cost 16 % less CPU than with 4 (authors kept
    # rather than read and rendered again); 12 and 16 gained nothing more.
    account_cache_mb: int = setting(
        8, "Megabytes (estimated) of accounts kept in memory as records and encoded JSON for the timelines "
        "(each used only while its version in the database is unchanged).", _not_negative)
    viewer_cache_mb: int = setting(
        16, "Megabytes (estimated) of what each reader's own state adds to their pages (accounts hidden from "
        "them, their filters, their flags on their last pages' statuses), kept in memory for the timelines "
        "(each used only while the reader's version in the database is unchanged).", _not_negative)


@dataclass(frozen=True, kw_only=True)
class PollSettings:
    min_expiration: int = setting(300, "Shortest poll duration accepted (seconds).", _positive)
    max_expiration: int = setting(2629746, "Longest poll duration accepted (seconds).", _positive)


@dataclass(frozen=True, kw_only=True)
class SchedulerSettings:
    interval: int = setting(10, "Seconds between checks for due scheduled statuses and ended polls.", _positive)


class MediaStorage(StrEnum):
    LOCAL = "local"
    S3 = "s3"


class MediaServe(StrEnum):
    PROXY = "proxy"
    REDIRECT = "redirect"


@dataclass(frozen=True, kw_only=True)
class MediaSettings:
    max_image_size: int = setting(16 * 1024 * 1024, "Largest image upload accepted (bytes).", _positive)
    max_image_pixels: int = setting(33177600, "Most pixels (width × height) an uploaded image may have.",
                                    _positive)
    unattached_ttl: int = setting(86400, "Seconds before an upload no post uses is deleted.", _positive)
    storage: MediaStorage = setting(MediaStorage.LOCAL, "Where uploads are kept: local (data_dir/media) or s3 "
                                    "(an S3-compatible bucket every host of the instance shares).")
    s3_endpoint: str = setting("", "S3 endpoint as host:port (e.g. s3.eu-central-1.amazonaws.com, minio.internal:9000).")
    s3_secure: bool = setting(True, "Talk to the S3 endpoint over https.")
    s3_region: str = setting("", "S3 region (empty: the endpoint's default).")
    s3_bucket: str = setting("", "S3 bucket for uploads (created if missing).")
    s3_access_key: str = setting("", "S3 access key.")
    s3_secret_key: str = setting("", "S3 secret key (also from CROSSTALK_MEDIA_S3_SECRET_KEY_FILE).")
    s3_serve: MediaServe = setting(MediaServe.PROXY, "How /media/ files come from the bucket: proxy (through this "
                                   "server; clients never reach the object store) or redirect (to a signed URL).")


@dataclass(frozen=True, kw_only=True)
class RateLimitSettings:
    """Mastodon's defaults; see "Rate limits" in the README for what each one counts."""
    enabled: bool = setting(True, "Apply the rate limits below (turn off only for tests and benchmarks).")
    window: int = setting(300, "Window of the two general API limits, in seconds.", _positive)
    account_requests: int = setting(1500, "API requests per window for each signed-in account.", _positive)
    address_requests: int = setting(
        300, "API requests per window for each client address without a valid user token (IPv6: per /64).",
        _positive)
    statuses_per_account: int = setting(300, "Posts and boosts each account may make per 3 hours.", _positive)
    media_per_account: int = setting(30, "Media uploads each account may make per 30 minutes.", _positive)
    deletions_per_account: int = setting(
        30, "Post deletions and un-boosts each account may make per 30 minutes.", _positive)
    sign_ups_per_address: int = setting(5, "Account sign-ups (POST /api/v1/accounts) per address per 30 minutes.",
                                        _positive)
    sign_in_failures_per_address: int = setting(
        25, "Failed sign-ins (login form, password grant) per client address per 5 minutes.", _positive)
    sign_in_failures_per_account: int = setting(
        25, "Failed sign-ins per account (or unknown login name) per hour.", _positive)
    group_joins_per_account: int = setting(
        30, "Group joins (and join requests) each local account may make per hour.", _positive)
    group_joins_per_group: int = setting(
        300, "Joins (and join requests) from local accounts each group takes per hour.", _positive)
    group_follows_per_domain: int = setting(
        60, "Follows of one group from one remote domain per hour; beyond it they are refused (boundary log).",
        _positive)


@dataclass(frozen=True, kw_only=True)
class HttpSettings:
    trusted_proxies: list[str] = setting(
        [], "Addresses or networks of the reverse proxies in front of us: only their X-Forwarded-For is "
        "believed, for rate limits and logs (e.g. 127.0.0.1/32, 10.0.0.0/8).", _networks)
    read_timeout: int = setting(
        30, "Seconds a client has to send a request's headers, and the longest pause allowed while it sends "
        "a body; slower clients are disconnected. Idle keep-alive connections close after this too.", _positive)
    max_body_size: int = setting(
        1024 * 1024, "Largest request body accepted, in bytes, except uploads (media, avatars and headers, "
        "limited by media.max_image_size).", _positive)


@dataclass(frozen=True, kw_only=True)
class LogSettings:
    format: LogFormat = setting(LogFormat.TEXT, "Log format.")
    level: LogLevel = setting(LogLevel.INFO, "Log level.")


@dataclass(frozen=True, kw_only=True)
class StreamingSettings:
    heartbeat_seconds: int = setting(
        10, "Seconds between keep-alive comments on server-sent event streams.", _positive)


@dataclass(frozen=True, kw_only=True)
class MetricsSettings:
    enabled: bool = setting(True, "Serve Prometheus metrics at /metrics.")
    port: int = setting(0, "Serve /metrics on this separate port instead (0 = the main port).", _port)
    allowed_addresses: list[str] = setting(["127.0.0.1/8", "::1"],
                                           "Client addresses or networks allowed to read /metrics.", _networks)


@dataclass(frozen=True, kw_only=True)
class FederationSettings:
    mode: FederationMode = setting(FederationMode.ALLOWLIST, "Who we federate with.")
    authorized_fetch: bool = setting(
        True, "Require a valid signature from an allowed domain for ActivityPub documents (secure mode).")
    retry_scale: float = setting(
        1.0, "Multiplier for delivery retry delays (1.0 = Mastodon's schedule of about two days).", _positive)
    delivery_claim_seconds: int = setting(
        120, "How long a worker holds the deliveries it took for an attempt: one that dies mid-attempt leaves "
        "them to any worker after this long. Keep it above a request's time limit (10 s) times the deliveries a "
        "worker may queue for one host.", _positive)
    allowed_private_addresses: list[str] = setting(
        [], "Private/loopback addresses or networks peers may live on (e.g. 10.0.0.0/8).", _networks)
    signing_processes: int = setting(
        -1, "Worker processes that sign outgoing deliveries (RSA), so signing runs beside the event loop: "
        "-1 = one fewer than the CPUs the server may use (none on a single CPU), 0 = sign on the event loop.",
        _signing_processes)


def _push_hosts(v: list[str]) -> str | None:
    for item in v:
        host = item.removeprefix("*.")
        if not host or "*" in host or "/" in host or " " in host or host.startswith("."):
            return f"has an invalid host {item!r} (a host name, or *.domain for its subdomains)"
    return None


DEFAULT_PUSH_HOSTS = [
    "fcm.googleapis.com",  # Chrome, Android (Firebase Cloud Messaging)
    "*.push.apple.com",  # Safari, iOS and macOS web push (web.push.apple.com)
    "updates.push.services.mozilla.com", "push.services.mozilla.com",  # Firefox
    "*.notify.windows.com",  # Edge (Windows Push Notification Services)
    "app.joinmastodon.org",  # the relays of the official Mastodon apps
    "fcm.distributor.unifiedpush.org",  # UnifiedPush's FCM gateway (Tusky and other UnifiedPush apps)
    "ntfy.sh",  # UnifiedPush through the public ntfy server
    "up.conversations.im",  # UnifiedPush through Conversations
]


@dataclass(frozen=True, kw_only=True)
class PushSettings:
    allowed_hosts: list[str] = setting(
        DEFAULT_PUSH_HOSTS, "Push services that Web Push notifications may be sent to (host names; *.domain "
        "for its subdomains). Subscriptions to other hosts are refused and logged in the boundary log.",
        _push_hosts)
    allowed_private_addresses: list[str] = setting(
        [], "Private/loopback addresses or networks a push service may live on (tests, development, an "
        "in-house push relay); without this, push endpoints resolving to such addresses are refused.", _networks)
    retry_scale: float = setting(
        1.0, "Multiplier for Web Push retry delays (1.0: five retries over about twenty minutes).", _positive)


@dataclass(frozen=True, kw_only=True)
class WebSettings:
    public_pages: bool = setting(True, "Serve HTML profile and post pages (public posts only) to visitors.")


@dataclass(frozen=True, kw_only=True)
class BoundaryLogSettings:
    retention_days: int = setting(90, "How long boundary-log entries are kept.", _positive)


def _database_url(v: str) -> str | None:
    if v and not v.startswith(("postgresql://", "postgres://")):
        return "must be a PostgreSQL URL (postgresql://user:password@host:5432/name), or empty for SQLite"
    return None


@dataclass(frozen=True, kw_only=True)
class DatabaseSettings:
    url: str = setting(
        "", "PostgreSQL to store everything in (postgresql://user:password@host:5432/name); empty keeps the "
        "embedded SQLite database in data_dir.", _database_url)
    pool_size: int = setting(10, "Connections each process keeps to PostgreSQL at most.", _positive)
    sqlite_inline_read_ms: float = setting(
        2.0, "SQLite: milliseconds a read may run on the event loop's thread before it is interrupted and run "
        "again on a reader thread (most reads take microseconds, less than the hand-over to a thread costs). "
        "0 sends every read to the reader threads.", _not_negative)
    sqlite_inline_write_ms: float = setting(
        2.0, "SQLite: statements of write transactions run on the event loop's thread; one that takes longer "
        "than this many milliseconds is sent to the writer's thread from then on, for a while. 0 sends every "
        "write statement to the writer's thread.", _not_negative)


@dataclass(frozen=True, kw_only=True)
class JobSettings:
    claim_seconds: int = setting(
        30, "How long a process may hold a claimed piece of background work (an event to dispatch, a "
        "periodic job) before another process may take it over.", _positive)
    paused: list[str] = setting(
        [], "Background jobs this process does not run (e.g. outbox, delivery, inbox, scheduled-statuses); "
        "another process sharing the database runs them.")


class UsernameMode(StrEnum):
    DERIVE = "derive"
    ASK = "ask"


class AccountCreation(StrEnum):
    JIT = "jit"
    PROVISIONED = "provisioned"


class SuspendedPosts(StrEnum):
    KEEP = "keep"
    HIDE = "hide"


def _claim_pairs(v: list[str]) -> str | None:
    for item in v:
        name, sep, claim = item.partition("=")
        if not sep or not name.strip() or not claim.strip():
            return f"entries must look like Name=claim, not {item!r}"
    return None


@dataclass(frozen=True, kw_only=True)
class AuthSettings:
    local_passwords: bool = setting(
        True, "Allow sign-in with a local password (the login form and the password grant); false leaves "
        "only single sign-on.")


@dataclass(frozen=True, kw_only=True)
class OidcSettings:
    enabled: bool = setting(False, "Sign in through an OpenID Connect provider.")
    issuer: str = setting("", "The provider's issuer URL; its /.well-known/openid-configuration is read.")
    client_id: str = setting("", "Client id registered at the provider.")
    client_secret: str = setting("", "Client secret (use CROSSTALK_OIDC_CLIENT_SECRET_FILE for a file).")
    scopes: list[str] = setting(["openid", "profile", "email"], "Scopes requested at sign-in.")
    button_label: str = setting("Sign in with single sign-on", "Text of the sign-in button.")
    subject_claim: str = setting(
        "sub", "Claim that names a person for good at this provider (Entra ID: oid); the account link key.")
    username_claim: str = setting("preferred_username", "Claim a new account's username is derived from.")
    username_mode: UsernameMode = setting(
        UsernameMode.DERIVE, "derive: username from the claim (a number is added on a clash); ask: the person "
        "chooses it at the first sign-in (prefilled from the claim).")
    display_name_claim: str = setting("name", "Claim for the display name (refreshed at every sign-in).")
    email_claim: str = setting("email", "Claim for the e-mail address.")
    field_claims: list[str] = setting(
        ["Department=department", "Title=job_title"],
        "Profile fields from claims, as Field name=claim (refreshed at every sign-in).", _claim_pairs)
    account_creation: AccountCreation = setting(
        AccountCreation.JIT, "jit: first sign-in creates the account; provisioned: only accounts made "
        "beforehand (SCIM, matched on userName or externalId) may sign in.")
    link_existing_by_email: bool = setting(
        False, "Link a first sign-in to an existing local account with the same, verified e-mail address "
        "(only if the provider is trusted to verify addresses).")
    groups_claim: str = setting("groups", "Claim holding groups or roles (Entra ID: roles, or groups).")
    admin_groups: list[str] = setting([], "Groups (names or ids) whose members are admins; checked at every "
                                      "sign-in and token refresh.")
    moderator_groups: list[str] = setting([], "Groups whose members are moderators.")
    allowed_groups: list[str] = setting(
        [], "If set, only members of these groups may sign in; leaving them suspends the account.")
    end_session: bool = setting(True, "Logging out also ends the session at the provider, when it has an "
                                "end_session_endpoint.")
    timeout_seconds: int = setting(10, "Time limit for each request to the provider.", _positive)


@dataclass(frozen=True, kw_only=True)
class ScimSettings:
    enabled: bool = setting(False, "Serve the SCIM 2.0 provisioning API at /scim/v2 (bearer tokens from "
                            "`crosstalk admin scim-token create`).")
    admin_groups: list[str] = setting([], "SCIM groups (displayName or externalId) whose members are admins.")
    moderator_groups: list[str] = setting([], "SCIM groups whose members are moderators.")
    max_results: int = setting(200, "Most resources one SCIM list answer holds.", _positive)


@dataclass(frozen=True, kw_only=True)
class AccountSettings:
    suspended_posts: SuspendedPosts = setting(
        SuspendedPosts.KEEP, "keep: a suspended account's posts stay visible; hide: they are hidden until "
        "it is reactivated.")


@dataclass(frozen=True, kw_only=True)
class AuditSettings:
    retention_days: int = setting(365, "How long audit-log entries are kept (at least 1).", _positive)


@dataclass(frozen=True, kw_only=True)
class TrendSettings:
    window_hours: int = setting(48, "Trending tags, links and posts are ranked by the activity of this many "
                                "recent hours (history shows 7 days).", _positive)
    min_accounts: int = setting(2, "A tag or link trends once this many accounts used it within the window; a "
                                "post once this many accounts favourited, boosted or reacted to it.", _positive)
    cache_seconds: int = setting(60, "How long computed trends are reused before they are counted again (0: "
                                 "counted on every request).", _not_negative)


def _bus_url(v: str) -> str | None:
    if v and not v.startswith(("redis://", "rediss://", "unix://", "nats://", "tls://")):
        return "must start with redis://, rediss://, unix:// or nats:// (or be empty for one process)"
    return None


@dataclass(frozen=True, kw_only=True)
class BusSettings:
    url: str = setting("", "Message bus between processes: redis://HOST:6379/0 or nats://HOST:4222. Empty: "
                       "one process, an in-process bus.", _bus_url)


@dataclass(frozen=True, kw_only=True)
class Settings:
    domain: str = setting("", "Public host name (may carry a port, e.g. 127.0.0.1:8001); used in every URL.",
                          _domain)
    scheme: Scheme = setting(Scheme.HTTPS, "URL scheme of the public URLs; http only with development = true.")
    development: bool = setting(False, "Development mode: allows plain http for our URLs and for peers.")
    host: str = setting("127.0.0.1", "Address to bind the HTTP server to.")
    port: int = setting(8080, "Port to bind the HTTP server to.", _port)
    data_dir: str = setting("./data", "Directory for media files, and for the SQLite database unless database.url "
                            "is set.")
    registrations: Registrations = setting(Registrations.CLOSED, "Who may sign up.")
    password_grant: bool = setting(False, "Allow the OAuth password grant (toot login_cli, scripts).")
    shutdown_grace_seconds: int = setting(
        25, "On SIGTERM, how long to let in-flight requests and deliveries finish before exiting.", _positive)
    shutdown_drain_seconds: float = setting(
        0.0, "On SIGTERM, how long to keep accepting requests while /readyz already answers 503, so that a "
        "load balancer checking readiness stops sending here before the listener closes (a few seconds "
        "more than its check interval; 0 closes at once, for platforms that stop routing first).",
        _not_negative)
    instance: InstanceSettings = field(default_factory=InstanceSettings)
    statuses: StatusSettings = field(default_factory=StatusSettings)
    polls: PollSettings = field(default_factory=PollSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    log: LogSettings = field(default_factory=LogSettings)
    streaming: StreamingSettings = field(default_factory=StreamingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    push: PushSettings = field(default_factory=PushSettings)
    web: WebSettings = field(default_factory=WebSettings)
    boundary_log: BoundaryLogSettings = field(default_factory=BoundaryLogSettings)
    jobs: JobSettings = field(default_factory=JobSettings)
    bus: BusSettings = field(default_factory=BusSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    oidc: OidcSettings = field(default_factory=OidcSettings)
    scim: ScimSettings = field(default_factory=ScimSettings)
    accounts: AccountSettings = field(default_factory=AccountSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    trends: TrendSettings = field(default_factory=TrendSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.domain}"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def db_path(self) -> Path:
        return self.data_path / "crosstalk.sqlite3"


@dataclass(frozen=True)
class Setting:
    """A row of the table as the loader and the README see it."""

    key: str  # dotted TOML key, e.g. "instance.title"
    kind: type  # str, int, float, bool or list (of str); an enum's values are its choices
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    check: Check | None = None
    enum: type[StrEnum] | None = None

    @property
    def env(self) -> str:
        return "CROSSTALK_" + self.key.upper().replace(".", "_")


def _rows(cls: type, prefix: str = "") -> list[Setting]:
    hints = typing.get_type_hints(cls)
    rows: list[Setting] = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            rows.extend(_rows(kind, f"{prefix}{f.name}."))  # type: ignore[arg-type]
            continue
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[operator]
        enum = kind if isinstance(kind, type) and issubclass(kind, StrEnum) else None
        base = str if enum else (list if typing.get_origin(kind) is list else kind)
        rows.append(Setting(f"{prefix}{f.name}", base, default, f.metadata["help"],
                            tuple(m.value for m in enum) if enum else (), f.metadata["check"], enum))
    return rows


SETTINGS: tuple[Setting, ...] = tuple(_rows(Settings))
_BY_KEY = {s.key: s for s in SETTINGS}


def _build(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            kwargs[f.name] = _build(kind, values, f"{prefix}{f.name}.")  # type: ignore[arg-type]
        else:
            kwargs[f.name] = values[f"{prefix}{f.name}"]
    return cls(**kwargs)


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
        if isinstance(raw, bool):
            raise ConfigError(f"setting {name}: expected a number, got {raw!r}")
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


def load_settings(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
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
        values[s.key] = s.enum(value) if s.enum else value

    values["domain"] = values["domain"].lower()
    if values["media.storage"] == MediaStorage.S3:
        for key in ("s3_endpoint", "s3_bucket", "s3_access_key", "s3_secret_key"):
            if not values[f"media.{key}"]:
                raise ConfigError(f"setting media.{key} ({_BY_KEY['media.' + key].env}): is required when "
                                  "media.storage is s3")
    if values["scheme"] == Scheme.HTTP and not values["development"]:
        raise ConfigError("setting scheme (CROSSTALK_SCHEME): http is only allowed with development = true "
                          "(CROSSTALK_DEVELOPMENT=true); use https in production")
    if values["oidc.enabled"] and not (values["oidc.issuer"] and values["oidc.client_id"]):
        raise ConfigError("setting oidc.enabled (CROSSTALK_OIDC_ENABLED): single sign-on needs oidc.issuer and "
                          "oidc.client_id (CROSSTALK_OIDC_ISSUER, CROSSTALK_OIDC_CLIENT_ID)")
    settings: Settings = _build(Settings, values)
    return settings


def settings_table_markdown() -> str:
    """The README's configuration reference, generated from the settings table."""
    rows = ["| Setting | Environment | Default | Meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default: Any = s.default if s.default not in ("", []) else "—"
        if isinstance(default, list):
            default = ", ".join(default)
        elif isinstance(default, bool):
            default = str(default).lower()
        elif isinstance(default, StrEnum):
            default = default.value
        choices = f" One of: {', '.join(s.choices)}." if s.choices else ""
        rows.append(f"| `{s.key}` | `{s.env}` | `{default}` | {s.help}{choices} |")
    return "\n".join(rows)
