"""The `crosstalk` command: serve, migrate and admin tasks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import logging
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from server.ids import parse_id
from server.services.errors import ServiceError
from server.settings import ConfigError, Settings, load_settings
from server.storage.errors import DatabaseUnavailable
from server.version import VERSION

if TYPE_CHECKING:  # the commands import the server lazily: a CLI call starts fast
    from server.state import State

T = TypeVar("T")

EXIT_CONFIG = 2


def _run(coro: Awaitable[T]) -> T:
    try:
        import uvloop
        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]


def _setup_logging(settings: Settings) -> None:
    from server.logs import configure
    configure(settings.log.format, settings.log.level)


def _dev_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """`serve --dev`: a working local instance with no configuration at all."""
    if not getattr(args, "dev", False):
        return {}
    port = args.port or int(os.environ.get("CROSSTALK_PORT", "8080"))
    return {"development": True, "scheme": os.environ.get("CROSSTALK_SCHEME", "http"),
            "domain": os.environ.get("CROSSTALK_DOMAIN", f"localhost:{port}"),
            "password_grant": os.environ.get("CROSSTALK_PASSWORD_GRANT", "true")}


def _settings(args: argparse.Namespace) -> Settings:
    overrides = _dev_overrides(args)
    if getattr(args, "no_workers", False):
        from server.jobs.catalog import BACKGROUND_JOBS
        overrides["jobs.paused"] = ",".join(BACKGROUND_JOBS)
    for key in ("host", "port", "data_dir"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    return load_settings(args.config, overrides=overrides)


async def _with_state(settings: Settings, work: Callable[[State], Awaitable[T]]) -> T:
    """Run an admin command with the instance's parts. It records events but does not dispatch them:
    the serving process does (within a second)."""
    from server.app import build_state
    from server.storage.backend import database_for
    db = database_for(settings, readers=1)
    await db.open()
    state, _, node_lease = build_state(settings, db, serving=False)
    try:
        await node_lease.acquire()
        return await work(state)
    finally:
        await state.boundary.flush()
        await node_lease.release()
        await db.close()


def _settle_garbage_collector() -> None:
    """Once started: what start-up made (modules, routes, settings, 50,000-odd objects) lives as long as
    the process, so it is moved out of the collector's sight (gc.freeze); otherwise every full
    collection walks it again, a 13-28 ms pause of the event loop each time (seen as the slowest POSTs)."""
    gc.collect()
    gc.freeze()


def _check_data_dir(settings: Settings) -> None:
    path = settings.data_path
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A name of its own: processes sharing the directory (web and worker on one volume) start at once.
        with tempfile.TemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(f"setting data_dir (CROSSTALK_DATA_DIR): {path} is not writable ({exc.strerror})") from None


async def _serve(settings: Settings, dev: bool, web_routes: bool = True) -> None:
    from aiohttp import web

    from server.app import STATE, create_app
    from server.http.ops import metrics_app
    log = logging.getLogger("crosstalk")
    grace = float(settings.shutdown_grace_seconds)
    app = create_app(settings, web_routes=web_routes)
    state = app[STATE]
    # We wait for in-flight requests ourselves (see below); aiohttp's own wait is only the last second.
    # aiohttp's keep-alive timer also runs from the moment a connection opens until a request's headers
    # are complete, so it is our header timeout too: a client that trickles headers (or sends none) is
    # closed after http.read_timeout seconds. (Slow bodies: see body_middleware.)
    idle = float(settings.http.read_timeout)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0, keepalive_timeout=idle)
    try:
        await runner.setup()
    except Exception:
        # Start-up refused: stop what already started (workers read the database), close the database,
        # then report the error.
        await state.jobs.stop(1.0)
        await state.bus.close()
        await state.db.close()
        raise
    if dev:
        await _bootstrap_dev_admin(settings)
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024, reuse_address=True)
    await site.start()
    metrics_runner = None
    if settings.metrics.enabled and settings.metrics.port:
        metrics_runner = web.AppRunner(metrics_app(state), access_log=None, handle_signals=False,
                                       shutdown_timeout=1.0, keepalive_timeout=idle)
        await metrics_runner.setup()
        await web.TCPSite(metrics_runner, settings.host, settings.metrics.port, reuse_address=True).start()
    log.info("crosstalk %s started", VERSION, extra={
        "version": VERSION, "domain": settings.domain, "base_url": settings.base_url,
        "federation_mode": settings.federation.mode, "data_dir": str(settings.data_path.resolve()),
        "database": state.db.describe(), "listen": f"{settings.host}:{settings.port}",
        "development": settings.development,
        "metrics_port": settings.metrics.port or settings.port if settings.metrics.enabled else None})
    _settle_garbage_collector()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    drain = float(settings.shutdown_drain_seconds)
    if drain > 0:
        # Not ready any more, still listening: a load balancer's next readiness check takes this process
        # out before its listener closes, so no request is sent to a socket about to be reset.
        state.draining = True
        log.info("shutting down: not ready, still accepting requests", extra={"drain_seconds": drain})
        stop.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), drain)  # a second signal skips the rest of the drain
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


async def _bootstrap_dev_admin(settings: Settings) -> None:
    """In development mode, make sure there is a first user to log in with."""
    from server.services import accounts

    async def work(state: State) -> None:
        from server.storage import accounts as store
        if await store.count_local_users(state.db):
            return
        password = secrets.token_urlsafe(12)
        await accounts.create_user(state, "admin", "admin@localhost", password, admin=True, allow_reserved=True)
        print(f"\nCreated the first user: username 'admin', password '{password}'\n"
              f"Log in from any Mastodon app at {settings.base_url} (or: crosstalk admin reset-password admin)\n",
              flush=True)

    await _with_state(settings, work)


def cmd_serve(args: argparse.Namespace) -> int:
    # SQLite calls run on aiosqlite's threads, which need the GIL back to hand each result over; with the
    # default 5 ms switch interval every query can wait that long behind the busy event loop.
    sys.setswitchinterval(0.0005)
    settings = _settings(args)
    _check_data_dir(settings)
    _setup_logging(settings)
    _run(_serve(settings, args.dev))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Background work only (deliveries, inbound activities, scheduled posts, clean-ups), for processes
    that share the database with `serve --no-workers` ones; HTTP only for /livez, /readyz, /metrics."""
    sys.setswitchinterval(0.0005)
    settings = _settings(args)
    _check_data_dir(settings)
    _setup_logging(settings)
    _run(_serve(settings, dev=False, web_routes=False))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _check_data_dir(settings)

    async def work(state: State) -> int:
        return await state.db.schema_version()

    from server.storage.backend import database_for
    version = _run(_with_state(settings, work))
    print(f"{database_for(settings).describe()} is at schema version {version}")
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
    settings = _settings(args)
    password = _password(args.password, f"Password for {args.name}: ")
    from server.services import accounts

    async def work(state: State) -> Any:
        return await accounts.create_user(state, args.name, args.email, password, admin=args.admin)

    account = _run(_with_state(settings, work))
    print(f"created {'admin ' if args.admin else ''}user {account.username} (id {account.id})")
    return 0


def cmd_list_users(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from server.storage import accounts as store

    async def work(state: State) -> Any:
        from server.storage import identity
        users = await store.list_users(state.db)
        return users, await identity.roles_of(state.db, [u.account_id for u, _ in users])

    rows, roles = _run(_with_state(settings, work))
    print(f"{'ID':<20} {'USERNAME':<20} {'EMAIL':<30} {'ROLE':<9} CREATED")
    for user, account in rows:
        print(f"{account.id:<20} {account.username:<20} {user.email:<30} {roles[account.id]:<9} {user.created_at[:10]}")
    return 0


def cmd_reset_password(args: argparse.Namespace) -> int:
    settings = _settings(args)
    generated = None
    password = args.password
    if not password:
        generated = password = secrets.token_urlsafe(12)
    from server.services import accounts

    async def work(state: State) -> None:
        await accounts.reset_password(state, args.name, password)

    _run(_with_state(settings, work))
    print(f"password of {args.name} changed; existing sessions and tokens were revoked")
    if generated:
        print(f"new password: {generated}")
    return 0


def cmd_create_token(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from server.services import oauth

    async def work(state: State) -> str:
        return await oauth.create_token_for_user(state, args.name, args.scopes)

    print(_run(_with_state(settings, work)))
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from server.storage import deliveries as delivery_store

    async def work(state: State) -> Any:
        return await delivery_store.delivery_summary(state.db)

    rows = _run(_with_state(settings, work))
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
    settings = _settings(args)
    from server.services import announcements
    starts = _cli_time(args.starts_at, "--starts-at")
    ends = _cli_time(args.ends_at, "--ends-at", end_of_day=True)

    async def work(state: State) -> Any:
        return await announcements.create(state, args.text, starts_at=starts, ends_at=ends, all_day=args.all_day)

    item = _run(_with_state(settings, work))
    print(f"created announcement {item.id}")
    return 0


def cmd_list_announcements(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from server.storage import announcements as store

    async def work(state: State) -> Any:
        return await store.every(state.db)

    items = _run(_with_state(settings, work))
    if not items:
        print("there are no announcements")
        return 0
    print(f"{'ID':<20} {'STARTS':<24} {'ENDS':<24} TEXT")
    for a in items:
        body = " ".join(a.text.split())
        print(f"{a.id:<20} {a.starts_at or '-':<24} {a.ends_at or '-':<24} {body[:60]}")
    return 0


def cmd_delete_announcement(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from server.services import announcements
    announcement_id = parse_id(args.id)
    if announcement_id is None:
        raise ServiceError(f"{args.id!r} is not an announcement id")

    async def work(state: State) -> None:
        await announcements.delete(state, announcement_id)

    _run(_with_state(settings, work))
    print(f"deleted announcement {args.id}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.services.backup import backup
    settings = _settings(args)
    manifest = backup(settings, Path(args.path), sys.stderr, pages_per_step=args.pages_per_step)
    files = manifest["files"]
    print(f"backup of {settings.domain} written to {args.path}: database {manifest['database']['bytes']} bytes "
          f"(schema version {manifest['schema_version']}), {files['count']} files, {files['bytes']} bytes")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.services.backup import restore
    settings = _settings(args)
    _check_data_dir(settings)
    manifest = restore(settings, Path(args.path), sys.stderr)
    print(f"restored the backup of {manifest.get('domain')} taken {manifest['created_at']} into {settings.data_path}; "
          "start the server (pending migrations are applied at start)")
    return 0


def cmd_migrate_to_postgres(args: argparse.Namespace) -> int:
    """Copy this instance's SQLite database into an empty PostgreSQL one (server/storage/transfer.py)."""
    from server.services.backup import Progress
    from server.storage.transfer import TransferError, describe_target, migrate_to_postgres
    settings = _settings(args)
    url = args.database_url or settings.database.url
    if not url:
        raise ConfigError("give the target with --database-url postgresql://USER@HOST:5432/DATABASE "
                          "(or set database.url, CROSSTALK_DATABASE_URL)")
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"--database-url must be a postgresql:// URL, not {url.split('://', 1)[0]}://...")
    _setup_logging(settings)
    target = describe_target(url)
    print(f"copying {settings.db_path} into the PostgreSQL database {target}", file=sys.stderr)
    show = Progress(sys.stderr)

    def progress(table: str, done: int, total: int) -> None:
        show(table, done, total, "rows", final=done == total)

    try:
        report = _run(migrate_to_postgres(settings.db_path, url, progress, allow_running=args.allow_running))
    except TransferError as exc:
        print(f"crosstalk: migrate-to-postgres: {exc}", file=sys.stderr)
        return 1
    except DatabaseUnavailable as exc:
        print(f"crosstalk: configuration error: --database-url: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"copied {report.rows} rows in {len(report.tables)} tables into {target} in {report.seconds:.1f}s; "
          "every table's row count matches SQLite's")
    print("next: set database.url (CROSSTALK_DATABASE_URL) to that database and start the server; the SQLite file "
          f"is left as it was. Media files stay in {settings.data_path / 'media'} (every web process needs them: "
          "share the directory or move to S3 storage, see README 'Scaling out')")
    return 0


def cmd_export_user(args: argparse.Namespace) -> int:
    from pathlib import Path

    from server.services.export import export_user
    settings = _settings(args)
    output = Path(args.output or f"{args.name}-archive-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}.zip")

    async def work(state: State) -> dict[str, int]:
        return await export_user(state, args.name, output)

    counts = _run(_with_state(settings, work))
    print(f"wrote {output}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    from server.settings import settings_table_markdown
    print(settings_table_markdown())
    return 0


def cmd_domain(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from server.services import audit, domains
    from server.storage import boundary as store

    def progress(done: int, total: int) -> None:
        print(f"purged {done}/{total} accounts of {args.domain}", file=sys.stderr, flush=True)

    csv_text = ""
    if args.domain_command == "import":  # read before the event loop starts
        with open(args.file, encoding="utf-8") as fh:
            csv_text = fh.read()

    async def work(state: State) -> Any:
        action = args.domain_command
        if action == "allow":
            return await domains.allow(
                state, audit.CLI, args.domain, include_subdomains=not args.no_subdomains, followers_only=args.followers_only,
                no_direct=args.no_direct, text_only=args.text_only, max_visibility_in=args.max_visibility_in,
                publish_policy=args.publish_policy, private_comment=args.comment, public_comment=args.public_comment)
        if action == "block":
            return await domains.block(
                state, audit.CLI, args.domain, severity=args.severity, reject_media=args.reject_media,
                reject_reports=args.reject_reports, include_subdomains=not args.no_subdomains,
                private_comment=args.comment, public_comment=args.public_comment, progress=progress)
        if action == "remove":
            return await domains.remove(state, audit.CLI, args.domain, args.kind)
        if action == "export":
            return domains.export_csv(await store.all_rules(state.db), args.kind)
        if action == "import":
            return await domains.import_csv(state, audit.CLI, csv_text, args.kind, progress=None)
        return await store.all_rules(state.db)

    result = _run(_with_state(settings, work))
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
        print(f"federation mode: {settings.federation.mode}")
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
    settings = _settings(args)
    import msgspec

    from server.storage import boundary as store

    async def work(state: State) -> Any:
        entries, after = [], 0
        while True:
            batch = await store.read_log(state.db, args.domain, args.since, 1000, after)
            entries.extend(batch)
            if len(batch) < 1000 or (args.limit and len(entries) >= args.limit):
                break
            after = batch[-1].id
        return entries[-args.limit:] if args.limit else entries

    entries = _run(_with_state(settings, work))
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
    serve.add_argument("--no-workers", action="store_true", dest="no_workers",
                       help="leave background work (deliveries, inbound activities, scheduled posts, clean-ups) "
                            "to `crosstalk worker` processes")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run background work only (with `serve --no-workers` processes)")
    worker.add_argument("--host")
    worker.add_argument("--port", type=int, help="port of /livez, /readyz and /metrics")
    worker.set_defaults(func=cmd_worker)

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
    for rule_parser in (allow, blk):
        rule_parser.add_argument("--no-subdomains", action="store_true", help="the rule covers this exact domain only")
        rule_parser.add_argument("--comment", default=None, help="private comment for admins")
        rule_parser.add_argument("--public-comment", default=None)
        rule_parser.set_defaults(func=cmd_domain)
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
    to_pg = admin_sub.add_parser(
        "migrate-to-postgres", help="copy this instance's SQLite database into an empty PostgreSQL database")
    to_pg.add_argument("--database-url", help="the target, postgresql://USER[:PASSWORD]@HOST:5432/DATABASE "
                       "(default: database.url)")
    to_pg.add_argument("--allow-running", action="store_true",
                       help="copy even though a server seems to run on the SQLite database (its later writes are lost)")
    to_pg.set_defaults(func=cmd_migrate_to_postgres)
    export = admin_sub.add_parser("export-user", help="write a user's data as an ActivityStreams archive (.zip)")
    export.add_argument("name")
    export.add_argument("--output", "-o", help="archive file (default NAME-archive-TIMESTAMP.zip)")
    export.set_defaults(func=cmd_export_user)
    admin_sub.add_parser("config-reference", help="print the settings as a Markdown table").set_defaults(
        func=cmd_config_reference)
    from server.cli_identity import add_commands
    add_commands(admin_sub)
    from server.cli_groups import add_commands as add_group_commands
    add_group_commands(admin_sub)
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
    except DatabaseUnavailable as exc:
        print(f"crosstalk: configuration error: setting database.url (CROSSTALK_DATABASE_URL): {exc}",
              file=sys.stderr)
        return EXIT_CONFIG
    except ServiceError as exc:
        print(f"crosstalk: {exc.message.removeprefix('Validation failed: ')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
