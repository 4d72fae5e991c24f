"""The `crosstalk` command: serve, migrate and admin tasks."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from server.config import Config, ConfigError, load_config
from server.services.errors import ServiceError
from server.version import VERSION

EXIT_CONFIG = 2


def _run(coro: Awaitable[Any]) -> Any:
    try:
        import uvloop
        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]


def _setup_logging(config: Config) -> None:
    from server.logs import configure
    configure(config["log.format"], config["log.level"])


def _dev_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """`serve --dev`: a working local instance with no configuration at all."""
    if not getattr(args, "dev", False):
        return {}
    port = args.port or int(os.environ.get("CROSSTALK_PORT", "8080"))
    return {"development": True, "scheme": os.environ.get("CROSSTALK_SCHEME", "http"),
            "domain": os.environ.get("CROSSTALK_DOMAIN", f"localhost:{port}"),
            "password_grant": os.environ.get("CROSSTALK_PASSWORD_GRANT", "true")}


def _config(args: argparse.Namespace) -> Config:
    overrides = _dev_overrides(args)
    for key in ("host", "port", "data_dir"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    return load_config(args.config, overrides=overrides)


async def _with_state(config: Config, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from server.state import State
    from server.storage.db import Database
    db = Database(config.db_path, readers=1)
    await db.open()
    try:
        return await work(State(config, db))
    finally:
        await db.close()


def _check_data_dir(config: Config) -> None:
    path = config.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"setting data_dir (CROSSTALK_DATA_DIR): {path} is not writable ({exc.strerror})") from None


async def _serve(config: Config, dev: bool) -> None:
    from aiohttp import web

    from server.app import STATE, create_app
    from server.http.ops import metrics_app
    log = logging.getLogger("crosstalk")
    grace = float(config["shutdown_grace_seconds"])
    app = create_app(config)
    state = app[STATE]
    # We wait for in-flight requests ourselves (see below); aiohttp's own wait is only the last second.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    try:
        await runner.setup()
    except Exception:
        await state.db.close()  # start-up refused: close the database before the error is reported
        raise
    if dev:
        await _bootstrap_dev_admin(config)
    site = web.TCPSite(runner, config["host"], config["port"], backlog=1024, reuse_address=True)
    await site.start()
    metrics_runner = None
    if config["metrics.enabled"] and config["metrics.port"]:
        metrics_runner = web.AppRunner(metrics_app(state), access_log=None, handle_signals=False,
                                       shutdown_timeout=1.0)
        await metrics_runner.setup()
        await web.TCPSite(metrics_runner, config["host"], config["metrics.port"], reuse_address=True).start()
    log.info("crosstalk %s started", VERSION, extra={
        "version": VERSION, "domain": config.domain, "base_url": config.base_url,
        "federation_mode": config["federation.mode"], "data_dir": str(config.data_dir.resolve()),
        "listen": f"{config['host']}:{config['port']}", "development": config["development"],
        "metrics_port": config["metrics.port"] or config["port"] if config["metrics.enabled"] else None})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: finishing in-flight requests and deliveries", extra={"grace_seconds": grace})
    state.shutdown_deadline = deadline = time.monotonic() + grace
    _exit_after(grace + 5.0, log)
    state.stopping.set()  # /readyz answers 503; answers now carry Connection: close
    for server_site in list(runner.sites):
        await server_site.stop()  # no new connections
    # aiohttp's own shutdown stops reading from open connections at once, which would strand a
    # request still uploading its body; so first wait here, with connections open, for the
    # requests in flight to finish.
    while state.in_flight and time.monotonic() < deadline:  # noqa: ASYNC110 - a counter, polled only at shutdown
        await asyncio.sleep(0.05)
    if state.in_flight:
        log.warning("grace period over; cancelling requests still in flight", extra={"requests": state.in_flight})
    # Closes idle connections, runs on_shutdown/on_cleanup: workers stop, spawned tasks finish, the
    # database is closed.
    await runner.cleanup()
    if metrics_runner is not None:
        await metrics_runner.cleanup()
    log.info("stopped cleanly")


def _exit_after(seconds: float, log: logging.Logger) -> None:
    """Last resort if shutdown hangs (a blocked thread, a stuck database call): exit anyway."""
    def force() -> None:
        log.error("shutdown did not finish within the grace period; exiting")
        logging.shutdown()
        os._exit(1)
    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.start()


async def _bootstrap_dev_admin(config: Config) -> None:
    """In development mode, make sure there is a first user to log in with."""
    from server.services import accounts

    async def work(state: Any) -> None:
        from server.storage import accounts as store
        if await store.count_local_users(state.db):
            return
        password = secrets.token_urlsafe(12)
        await accounts.create_user(state, "admin", "admin@localhost", password, admin=True, allow_reserved=True)
        print(f"\nCreated the first user: username 'admin', password '{password}'\n"
              f"Log in from any Mastodon app at {config.base_url} (or: crosstalk admin reset-password admin)\n",
              flush=True)

    await _with_state(config, work)


def cmd_serve(args: argparse.Namespace) -> int:
    # SQLite calls run on aiosqlite's threads, which need the GIL back to hand each result over; with the
    # default 5 ms switch interval every query can wait that long behind the busy event loop.
    sys.setswitchinterval(0.0005)
    config = _config(args)
    _check_data_dir(config)
    _setup_logging(config)
    _run(_serve(config, args.dev))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    config = _config(args)
    _check_data_dir(config)

    async def work(state: Any) -> int:
        return await state.db.schema_version()

    version = _run(_with_state(config, work))
    print(f"database {config.db_path} is at schema version {version}")
    return 0


def _password(given: str | None, prompt: str) -> str:
    if given:
        return given
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        if line:
            return line
        raise ServiceError("no password given: pass --password or type it at the prompt")
    first = getpass.getpass(prompt)
    if first != getpass.getpass("Repeat: "):
        raise ServiceError("the passwords do not match")
    return first


def cmd_create_user(args: argparse.Namespace) -> int:
    config = _config(args)
    password = _password(args.password, f"Password for {args.name}: ")
    from server.services import accounts

    async def work(state: Any) -> Any:
        return await accounts.create_user(state, args.name, args.email, password, admin=args.admin)

    account = _run(_with_state(config, work))
    print(f"created {'admin ' if args.admin else ''}user {account.username} (id {account.id})")
    return 0


def cmd_list_users(args: argparse.Namespace) -> int:
    config = _config(args)
    from server.storage import accounts as store

    async def work(state: Any) -> Any:
        return await store.list_users(state.db)

    rows = _run(_with_state(config, work))
    print(f"{'ID':<20} {'USERNAME':<20} {'EMAIL':<30} {'ROLE':<6} CREATED")
    for user, account in rows:
        role = "admin" if user.admin else "user"
        print(f"{account.id:<20} {account.username:<20} {user.email:<30} {role:<6} {user.created_at[:10]}")
    return 0


def cmd_reset_password(args: argparse.Namespace) -> int:
    config = _config(args)
    generated = None
    password = args.password
    if not password:
        generated = password = secrets.token_urlsafe(12)
    from server.services import accounts

    async def work(state: Any) -> None:
        await accounts.reset_password(state, args.name, password)

    _run(_with_state(config, work))
    print(f"password of {args.name} changed; existing sessions and tokens were revoked")
    if generated:
        print(f"new password: {generated}")
    return 0


def cmd_create_token(args: argparse.Namespace) -> int:
    config = _config(args)
    from server.services import oauth

    async def work(state: Any) -> str:
        return await oauth.create_token_for_user(state, args.name, args.scopes)

    print(_run(_with_state(config, work)))
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    config = _config(args)
    from server.storage import federation as fed_store

    async def work(state: Any) -> Any:
        return await fed_store.delivery_summary(state.db)

    rows = _run(_with_state(config, work))
    if not rows:
        print("the delivery queue is empty")
        return 0
    print(f"{'HOST':<32} {'PENDING':>8} {'FAILED':>8} {'DONE':>8}  STATE / LAST ERROR")
    for host, pending, failed, done, last_error, unavailable in rows:
        note = "unavailable" if unavailable else (last_error or "")
        print(f"{host:<32} {pending:>8} {failed:>8} {done:>8}  {note[:80]}")
    return 0


def _cli_time(value: str | None, name: str, end_of_day: bool = False) -> Any:
    """An ISO 8601 date or date-time from the command line, in UTC unless it says otherwise.
    A bare date means the start of that day, or its end for an end time."""
    if not value:
        return None
    from datetime import UTC, datetime, timedelta
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(f"{name}: {value!r} is not a date (YYYY-MM-DD) or date and time (YYYY-MM-DDTHH:MM)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if end_of_day and len(value) == 10:
        when += timedelta(days=1, milliseconds=-1)
    return when


def cmd_announce(args: argparse.Namespace) -> int:
    config = _config(args)
    from server.services import announcements
    starts = _cli_time(args.starts_at, "--starts-at")
    ends = _cli_time(args.ends_at, "--ends-at", end_of_day=True)

    async def work(state: Any) -> Any:
        return await announcements.create(state, args.text, starts_at=starts, ends_at=ends, all_day=args.all_day)

    item = _run(_with_state(config, work))
    print(f"created announcement {item.id}")
    return 0


def cmd_list_announcements(args: argparse.Namespace) -> int:
    config = _config(args)
    from server.storage import announcements as store

    async def work(state: Any) -> Any:
        return await store.every(state.db)

    items = _run(_with_state(config, work))
    if not items:
        print("there are no announcements")
        return 0
    print(f"{'ID':<20} {'STARTS':<24} {'ENDS':<24} TEXT")
    for a in items:
        body = " ".join(a.text.split())
        print(f"{a.id:<20} {a.starts_at or '-':<24} {a.ends_at or '-':<24} {body[:60]}")
    return 0


def cmd_delete_announcement(args: argparse.Namespace) -> int:
    config = _config(args)
    from server.services import announcements
    if not args.id.isdigit():
        raise ServiceError(f"{args.id!r} is not an announcement id")

    async def work(state: Any) -> None:
        await announcements.delete(state, int(args.id))

    _run(_with_state(config, work))
    print(f"deleted announcement {args.id}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.services.backup import backup
    config = _config(args)
    manifest = backup(config, Path(args.path), sys.stderr, pages_per_step=args.pages_per_step)
    files = manifest["files"]
    print(f"backup of {config.domain} written to {args.path}: database {manifest['database']['bytes']} bytes "
          f"(schema version {manifest['schema_version']}), {files['count']} files, {files['bytes']} bytes")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.services.backup import restore
    config = _config(args)
    _check_data_dir(config)
    manifest = restore(config, Path(args.path), sys.stderr)
    print(f"restored the backup of {manifest.get('domain')} taken {manifest['created_at']} into {config.data_dir}; "
          "start the server (pending migrations are applied at start)")
    return 0


def cmd_export_user(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.services.export import export_user
    config = _config(args)
    output = Path(args.output or f"{args.name}-archive-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}.zip")

    async def work(state: Any) -> dict[str, int]:
        return await export_user(state, args.name, output)

    counts = _run(_with_state(config, work))
    print(f"wrote {output}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    from server.config import settings_table_markdown
    print(settings_table_markdown())
    return 0


def cmd_domain(args: argparse.Namespace) -> int:
    config = _config(args)
    from server.services import domains
    from server.storage import boundary as store

    def progress(done: int, total: int) -> None:
        print(f"purged {done}/{total} accounts of {args.domain}", file=sys.stderr, flush=True)

    csv_text = ""
    if args.domain_command == "import":  # read before the event loop starts
        with open(args.file, encoding="utf-8") as fh:
            csv_text = fh.read()

    async def work(state: Any) -> Any:
        action = args.domain_command
        if action == "allow":
            return await domains.allow(
                state, args.domain, include_subdomains=not args.no_subdomains, followers_only=args.followers_only,
                no_direct=args.no_direct, text_only=args.text_only, max_visibility_in=args.max_visibility_in,
                publish_policy=args.publish_policy, private_comment=args.comment, public_comment=args.public_comment)
        if action == "block":
            return await domains.block(
                state, args.domain, severity=args.severity, reject_media=args.reject_media,
                reject_reports=args.reject_reports, include_subdomains=not args.no_subdomains,
                private_comment=args.comment, public_comment=args.public_comment, progress=progress)
        if action == "remove":
            return await domains.remove(state, args.domain, args.kind)
        if action == "export":
            return domains.export_csv(await store.all_rules(state.db), args.kind)
        if action == "import":
            return await domains.import_csv(state, csv_text, args.kind, progress=None)
        return await store.all_rules(state.db)

    result = _run(_with_state(config, work))
    action = args.domain_command
    if action in ("allow", "block"):
        print(f"{action}ed {result.domain}" if action == "block" else f"allowed {result.domain}")
    elif action == "remove":
        print(f"removed {result} rule(s) for {args.domain}")
    elif action == "export":
        sys.stdout.write(result)
    elif action == "import":
        print(f"imported {result} {args.kind} rule(s)")
    else:
        print(f"federation mode: {config['federation.mode']}")
        print(f"{'KIND':<6} {'DOMAIN':<32} {'SEVERITY':<8} POLICY")
        for r in result:
            flags = [name for name in ("followers_only", "no_direct", "text_only", "reject_media", "reject_reports",
                                       "publish_policy") if getattr(r, name)]
            if r.max_visibility_in:
                flags.append(f"max_visibility_in={r.max_visibility_in}")
            if not r.include_subdomains:
                flags.append("exact_domain")
            severity = r.severity if r.kind == "block" else "-"
            print(f"{r.kind:<6} {r.domain:<32} {severity:<8} {' '.join(flags)}")
    return 0


def cmd_boundary_log(args: argparse.Namespace) -> int:
    config = _config(args)
    import msgspec

    from server.storage import boundary as store

    async def work(state: Any) -> Any:
        entries, after = [], 0
        while True:
            batch = await store.read_log(state.db, args.domain, args.since, 1000, after)
            entries.extend(batch)
            if len(batch) < 1000 or (args.limit and len(entries) >= args.limit):
                break
            after = batch[-1].id
        return entries[-args.limit:] if args.limit else entries

    entries = _run(_with_state(config, work))
    for e in entries:
        if args.json:
            print(msgspec.json.encode({k: v for k, v in msgspec.structs.asdict(e).items() if k != "id"}).decode())
        else:
            print(f"{e.at} {e.direction:<3} {e.event:<9} {e.outcome:<8} {e.domain:<28} {e.activity_type or '-':<10} "
                  f"{e.actor or '-'} {('(' + e.reason + ')') if e.reason else ''}".rstrip())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crosstalk", description="Crosstalk server and admin tool.")
    parser.add_argument("--version", action="version", version=f"crosstalk {VERSION}")
    parser.add_argument("--config", "-c", help="TOML configuration file (also CROSSTALK_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--dev", action="store_true",
                       help="development mode: http on localhost, password grant on, a first admin user created")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", dest="data_dir")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations and exit")
    migrate.set_defaults(func=cmd_migrate)

    admin = sub.add_parser("admin", help="administration tasks")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser("create-user", help="create a local user")
    create.add_argument("name")
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="else prompted for (or read from standard input)")
    create.add_argument("--admin", action="store_true")
    create.set_defaults(func=cmd_create_user)
    admin_sub.add_parser("list-users", help="list local users").set_defaults(func=cmd_list_users)
    reset = admin_sub.add_parser("reset-password", help="set a new password (generated if not given)")
    reset.add_argument("name")
    reset.add_argument("--password")
    reset.set_defaults(func=cmd_reset_password)
    domain = admin_sub.add_parser("domain", help="federation rules: allow, block, remove, list, export, import")
    domain_sub = domain.add_subparsers(dest="domain_command", required=True)
    allow = domain_sub.add_parser("allow", help="allow a partner domain (with optional per-partner policy)")
    allow.add_argument("domain")
    allow.add_argument("--followers-only", action="store_true", help="our posts reach it only as followers-only")
    allow.add_argument("--no-direct", action="store_true", help="no direct messages in either direction")
    allow.add_argument("--text-only", action="store_true", help="no media in either direction")
    allow.add_argument("--max-visibility-in", choices=["public", "unlisted", "private", "direct"],
                       help="the most public their posts may appear here")
    allow.add_argument("--publish-policy", action="store_true", help="publish this policy in NodeInfo")
    blk = domain_sub.add_parser("block", help="block a domain (suspend severs follows and purges its content)")
    blk.add_argument("domain")
    blk.add_argument("--severity", choices=["suspend", "limit", "noop"], default="suspend")
    blk.add_argument("--reject-media", action="store_true")
    blk.add_argument("--reject-reports", action="store_true")
    for sub in (allow, blk):
        sub.add_argument("--no-subdomains", action="store_true", help="the rule covers this exact domain only")
        sub.add_argument("--comment", default=None, help="private comment for admins")
        sub.add_argument("--public-comment", default=None)
        sub.set_defaults(func=cmd_domain)
    rm = domain_sub.add_parser("remove", help="remove a domain's rules")
    rm.add_argument("domain")
    rm.add_argument("--kind", choices=["allow", "block"])
    rm.set_defaults(func=cmd_domain)
    domain_sub.add_parser("list", help="list the rules").set_defaults(func=cmd_domain)
    export = domain_sub.add_parser("export", help="write rules as Mastodon-format CSV to standard output")
    export.add_argument("--kind", choices=["allow", "block"], default="block")
    export.set_defaults(func=cmd_domain)
    imp = domain_sub.add_parser("import", help="read rules from a Mastodon-format CSV file")
    imp.add_argument("file")
    imp.add_argument("--kind", choices=["allow", "block"], default="block")
    imp.set_defaults(func=cmd_domain)
    blog = admin_sub.add_parser("boundary-log", help="what crossed the boundary (append-only log)")
    blog.add_argument("--domain")
    blog.add_argument("--since", help="RFC 3339 time or date, e.g. 2026-11-01")
    blog.add_argument("--limit", type=int, default=0, help="only the last N entries")
    blog.add_argument("--json", action="store_true", help="one JSON object per line")
    blog.set_defaults(func=cmd_boundary_log)
    admin_sub.add_parser("deliveries", help="show the federation delivery queue per host").set_defaults(
        func=cmd_deliveries)
    token = admin_sub.add_parser("create-token", help="print a bearer token for scripts")
    token.add_argument("name")
    token.add_argument("--scopes", default="read write follow")
    token.set_defaults(func=cmd_create_token)
    announce = admin_sub.add_parser("announce", help="publish an announcement to every user")
    announce.add_argument("text", help="plain text; links, @mentions and #hashtags are linked")
    announce.add_argument("--starts-at", help="when the event starts (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)")
    announce.add_argument("--ends-at", help="when it ends; the announcement is hidden afterwards")
    announce.add_argument("--all-day", action="store_true", help="the event lasts whole days")
    announce.set_defaults(func=cmd_announce)
    admin_sub.add_parser("list-announcements", help="list announcements").set_defaults(func=cmd_list_announcements)
    unannounce = admin_sub.add_parser("delete-announcement", help="delete an announcement")
    unannounce.add_argument("id")
    unannounce.set_defaults(func=cmd_delete_announcement)
    backup = admin_sub.add_parser("backup", help="consistent copy of the database and media, safe while running")
    backup.add_argument("path", help="a new (or empty) directory to write the backup into")
    backup.add_argument("--pages-per-step", type=int, default=1024,
                        help="database pages (4 KiB) copied per step; progress is reported per step")
    backup.set_defaults(func=cmd_backup)
    restore = admin_sub.add_parser("restore", help="restore a backup into an empty data directory")
    restore.add_argument("path", help="a directory written by `crosstalk admin backup`")
    restore.set_defaults(func=cmd_restore)
    export = admin_sub.add_parser("export-user", help="write a user's data as an ActivityStreams archive (.zip)")
    export.add_argument("name")
    export.add_argument("--output", "-o", help="archive file (default NAME-archive-TIMESTAMP.zip)")
    export.set_defaults(func=cmd_export_user)
    admin_sub.add_parser("config-reference", help="print the settings as a Markdown table").set_defaults(
        func=cmd_config_reference)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for attr in ("dev", "port", "host", "data_dir"):
        if not hasattr(args, attr):
            setattr(args, attr, None if attr != "dev" else False)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"crosstalk: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ServiceError as exc:
        print(f"crosstalk: {exc.message.removeprefix('Validation failed: ')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
