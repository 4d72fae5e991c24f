"""xtalk: read and write on a Crosstalk (or any Mastodon-compatible) instance from the terminal."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import msgspec

from clients.cli import config as cfg
from clients.cli import login as flows
from clients.cli.api import (
    ApiError,
    AuthError,
    Client,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    normalise_base_url,
)
from clients.cli.render import Renderer, colour_wanted, terminal_width

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130

EPILOG = """\
exit codes:
  0  success
  1  other error (not logged in, nothing to post, bad local file, ...)
  2  command-line usage error
  3  network failure (instance unreachable, timeout)
  4  authentication: token missing, expired or revoked (401) or not allowed (403)
  5  not found (404/410)
  6  rejected by the server as invalid (422/400); the server's message is shown
  7  rate limited (429); --wait sleeps until the limit resets instead
  8  server error (5xx)
  130 interrupted

Credentials live in $XDG_CONFIG_HOME/xtalk/config.json (mode 0600); tokens are never printed.
NO_COLOR disables colour; colour is only used on a terminal.
"""

VISIBILITIES = ("public", "unlisted", "private", "direct", "local")
TIMELINES = ("home", "local", "federated", "tag", "list")


class UsageError(Exception):
    pass


class Context:
    """What every command gets: parsed options, the selected profile, output helpers."""

    def __init__(self, args: argparse.Namespace, stdout: TextIO, stderr: TextIO, stdin: TextIO) -> None:
        self.args = args
        self.stdout, self.stderr, self.stdin = stdout, stderr, stdin
        self.json = bool(getattr(args, "json", False))
        self.wait = bool(getattr(args, "wait", False))
        self.profile_name: str | None = getattr(args, "profile", None) or os.environ.get("XTALK_PROFILE") or None
        self.config: cfg.Config | None = None
        self.profile: cfg.Profile | None = None
        colour = colour_wanted(stdout, False if getattr(args, "no_color", False) else None)
        self.render = Renderer(width=terminal_width(), colour=colour, expand=bool(getattr(args, "expand", False)))

    def load_profile(self) -> tuple[str, cfg.Profile]:
        self.config = cfg.load()
        name, profile = cfg.select(self.config, self.profile_name)
        self.profile_name, self.profile = name, profile
        return name, profile

    def client(self, base_url: str | None = None, token: str | None = None) -> Client:
        if base_url is None:
            _, profile = self.load_profile()
            base_url, token = profile.base_url, profile.token
        return Client(base_url, token, wait_on_rate_limit=self.wait, notice=self.note)

    def out(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def note(self, text: str) -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def progress(self, text: str) -> None:
        """A self-overwriting status line on a terminal; silent when stderr is a file or pipe."""
        if self.stderr.isatty():
            self.stderr.write("\r\x1b[K" + text)
            self.stderr.flush()

    def progress_done(self) -> None:
        if self.stderr.isatty():
            self.stderr.write("\r\x1b[K")
            self.stderr.flush()

    def emit_json(self, value: Any) -> None:
        self.stdout.write(msgspec.json.encode(value).decode() + "\n")
        self.stdout.flush()

    def emit_list(self, items: list[Any], show: Callable[[Any], str]) -> None:
        if self.json:
            for item in items:
                self.emit_json(item)
        elif items:
            self.out("\n\n".join(show(item) for item in items))


# -- account commands --------------------------------------------------------------------------------

def _host(base_url: str) -> str:
    return urlsplit(base_url).netloc


async def cmd_login(ctx: Context, args: argparse.Namespace) -> int:
    try:
        base = normalise_base_url(args.url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    app = None
    async with Client(base, wait_on_rate_limit=ctx.wait, notice=ctx.note) as api:
        if args.token is not None:
            token = ctx.stdin.readline().strip() if args.token == "-" else args.token.strip()
            if not token:
                raise UsageError("--token needs a token (or '-' to read it from standard input)")
        elif args.password:
            username = args.username or _prompt(ctx, "Username or e-mail: ")
            if ctx.stdin.isatty():
                password = getpass.getpass("Password: ", stream=ctx.stderr)
            else:
                password = ctx.stdin.readline().rstrip("\n")
            token, app = await flows.login_password(api, username, password)
        elif args.browser:
            token, app = await flows.login_browser(api, ctx.stderr, wait_seconds=args.timeout)
        else:
            token, app = await flows.login_oob(api, ctx.stdin, ctx.stderr)
        api.token = token
        try:
            me = await api.verify_credentials()
        except AuthError:
            raise flows.LoginError("the server rejected this token (wrong, expired or revoked)") from None
    name = args.name or f"{me['username']}@{_host(base)}"
    config = cfg.load()
    config.profiles[name] = cfg.Profile(base_url=base, token=token, acct=f"{me['acct']}",
                                        account_id=str(me["id"]),
                                        client_id=app.client_id if app else None,
                                        client_secret=app.client_secret if app else None)
    config.default = name
    cfg.save(config)
    if ctx.json:
        ctx.emit_json(me)
    else:
        ctx.out(f"Logged in as @{me['username']}@{_host(base)} (profile {name!r}, now the default).")
    return EXIT_OK


def _prompt(ctx: Context, question: str) -> str:
    ctx.stderr.write(question)
    ctx.stderr.flush()
    answer = ctx.stdin.readline().strip()
    if not answer:
        raise UsageError("no answer given")
    return answer


async def cmd_logout(ctx: Context, args: argparse.Namespace) -> int:
    if args.name:
        ctx.profile_name = args.name
    name, profile = ctx.load_profile()
    assert ctx.config is not None
    async with Client(profile.base_url, profile.token) as api:
        try:
            await api.revoke(profile.client_id, profile.client_secret)
        except ApiError as exc:
            ctx.note(f"xtalk: could not revoke the token on the server ({exc.message}); forgetting it anyway")
    del ctx.config.profiles[name]
    if ctx.config.default == name:
        ctx.config.default = next(iter(sorted(ctx.config.profiles)), None)
    cfg.save(ctx.config)
    ctx.out(f"Logged out of {name!r}." + (f" Default profile is now {ctx.config.default!r}."
                                         if ctx.config.default else ""))
    return EXIT_OK


async def cmd_whoami(ctx: Context, args: argparse.Namespace) -> int:
    async with ctx.client() as api:
        me = await api.verify_credentials()
    assert ctx.profile is not None
    if ctx.json:
        ctx.emit_json(me)
    else:
        ctx.out(f"@{me['username']}@{_host(ctx.profile.base_url)} "
                f"(profile {ctx.profile_name!r} on {ctx.profile.base_url})")
    return EXIT_OK


async def cmd_profiles(ctx: Context, args: argparse.Namespace) -> int:
    config = cfg.load()
    if args.default:
        if args.default not in config.profiles:
            raise cfg.ConfigError(f"no profile named {args.default!r}")
        config.default = args.default
        cfg.save(config)
    rows = cfg.describe(config)
    if ctx.json:
        for row in rows:
            ctx.emit_json(row)
    elif not rows:
        ctx.out("No profiles; run: xtalk login https://your.instance")
    else:
        for row in rows:
            ctx.out(f"{'*' if row['default'] else ' '} {row['name']}  @{row['acct']}  {row['base_url']}")
    return EXIT_OK


# -- reading -------------------------------------------------------------------------------------------

async def _timeline_source(api: Client, kind: str, name: str | None) -> tuple[str, dict[str, Any], str, dict[str, str]]:
    """(path, query, stream, stream params) for a timeline."""
    if kind == "home":
        return "/api/v1/timelines/home", {}, "user", {}
    if kind == "local":
        return "/api/v1/timelines/public", {"local": "true"}, "public:local", {}
    if kind == "federated":
        return "/api/v1/timelines/public", {}, "public", {}
    if kind == "tag":
        tag = (name or "").lstrip("#")
        return f"/api/v1/timelines/tag/{tag}", {}, "hashtag", {"tag": tag}
    list_id = await api.list_id(name or "")
    return f"/api/v1/timelines/list/{list_id}", {}, "list", {"list": list_id}


async def _paged(ctx: Context, api: Client, path: str, params: dict[str, Any], all_pages: bool,
                 show: Callable[[Any], str]) -> list[Any]:
    """Print pages as they arrive (so `--all` on a long history starts at once); returns what was seen."""
    seen: list[Any] = []
    pages = 0
    async for items in api.pages(path, params, all_pages=all_pages):
        pages += 1
        if all_pages:
            ctx.progress(f"page {pages}, {len(seen) + len(items)} items…")
        if items:
            if not ctx.json and seen:
                ctx.out("")
            ctx.progress_done()
            ctx.emit_list(items, show)
        seen.extend(items)
    ctx.progress_done()
    return seen


async def cmd_timeline(ctx: Context, args: argparse.Namespace) -> int:
    kind = args.kind or "home"
    if kind in ("tag", "list") and not args.name:
        raise UsageError(f"`xtalk timeline {kind}` needs a NAME")
    if kind not in ("tag", "list") and args.name:
        raise UsageError(f"unexpected argument {args.name!r} for the {kind} timeline")
    async with ctx.client() as api:
        path, query, stream, stream_params = await _timeline_source(api, kind, args.name)
        query["limit"] = args.limit
        if not args.follow:
            items = await _paged(ctx, api, path, query, args.all, ctx.render.status)
            if not items and not ctx.json:
                ctx.note("No posts.")
            return EXIT_OK
        first = (await api.request("GET", path, params=query)).data or []
        return await _follow(ctx, api, list(reversed(first)), stream, stream_params, kind)


async def _follow(ctx: Context, api: Client, backlog: list[Any], stream: str, params: dict[str, str],
                  label: str) -> int:
    """Print the backlog oldest first, then new posts as the streaming API delivers them."""
    seen: set[str] = set()
    for status in backlog:
        seen.add(str(status.get("id")))
        _show_streamed(ctx, status)
    delay = 1.0
    while True:
        def connected() -> None:
            ctx.note(f"Streaming the {label} timeline (Ctrl-C to stop)…")
        try:
            async for event, payload in api.stream(stream, params, on_connect=connected):
                delay = 1.0
                if event in ("update", "status.update") and isinstance(payload, dict):
                    key = str(payload.get("id"))
                    if event == "update" and key in seen:
                        continue
                    seen.add(key)
                    _show_streamed(ctx, payload, edited=event == "status.update")
                elif event == "delete" and not ctx.json:
                    ctx.out(ctx.render.style.dim(f"(post {payload} was deleted)"))
            ctx.note("xtalk: the stream ended; reconnecting…")
        except NotFoundError:
            raise NotFoundError("this server has no streaming API") from None
        except NetworkError as exc:
            ctx.note(f"xtalk: {exc.message}; reconnecting in {delay:.0f} s…")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


def _show_streamed(ctx: Context, status: dict[str, Any], edited: bool = False) -> None:
    if ctx.json:
        ctx.emit_json(status)
    else:
        ctx.out((ctx.render.style.dim("(edited)\n") if edited else "") + ctx.render.status(status) + "\n")


_STATUS_PATH_ID = re.compile(r"/(?:statuses|notice|objects|@[^/]+|p/[^/]+)/([A-Za-z0-9_-]+)/?$")


async def _resolve_status_id(api: Client, ref: str) -> str:
    """A status id, or the URL of a post (this instance's or, through search, any other's)."""
    if "://" not in ref:
        return ref
    parts = urlsplit(ref)
    match = _STATUS_PATH_ID.search(parts.path)
    if parts.netloc == _host(api.base_url) and match:
        return match.group(1)
    found = await api.search(ref, kind="statuses", resolve=True, limit=1)
    statuses = found.get("statuses") or []
    if not statuses:
        raise NotFoundError(f"no post found at {ref}")
    return str(statuses[0]["id"])


async def cmd_thread(ctx: Context, args: argparse.Namespace) -> int:
    async with ctx.client() as api:
        status_id = await _resolve_status_id(api, args.ref)
        focus = await api.status(status_id)
        context = await api.context(status_id)
    if ctx.json:
        for status in [*context.get("ancestors", []), focus, *context.get("descendants", [])]:
            ctx.emit_json(status)
    else:
        ctx.out(ctx.render.thread(focus, context))
    return EXIT_OK


async def cmd_notifications(ctx: Context, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.type:
        params["types[]"] = args.type
    async with ctx.client() as api:
        items = await _paged(ctx, api, "/api/v1/notifications", params, args.all, ctx.render.notification)
    if not items and not ctx.json:
        ctx.note("No notifications.")
    return EXIT_OK


async def cmd_show(ctx: Context, args: argparse.Namespace) -> int:
    async with ctx.client() as api:
        account = await api.find_account(args.handle)
        if ctx.json:
            ctx.emit_json(account)
            return EXIT_OK
        relationship = await api.relationship(str(account["id"]))
    ctx.out(ctx.render.account(account, relationship))
    return EXIT_OK


async def cmd_search(ctx: Context, args: argparse.Namespace) -> int:
    async with ctx.client() as api:
        results = await api.search(args.query, kind=args.type, resolve=True, limit=args.limit)
    if ctx.json:
        ctx.emit_json(results)
    else:
        ctx.out(ctx.render.search(results))
    return EXIT_OK


# -- writing -------------------------------------------------------------------------------------------

def _compose(ctx: Context, text: str | None, use_editor: bool, initial: str = "") -> str:
    """TEXT, else $EDITOR (on a terminal or with --editor), else standard input."""
    if text is not None:
        return text
    if use_editor or ctx.stdin.isatty():
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.NamedTemporaryFile("w+", suffix=".txt", prefix="xtalk-", delete=False) as fh:
            fh.write(initial)
            path = fh.name
        try:
            result = subprocess.run([*shlex.split(editor), path], check=False)
            if result.returncode != 0:
                raise UsageError(f"the editor ({editor}) exited with code {result.returncode}; nothing posted")
            return Path(path).read_text(encoding="utf-8").rstrip()
        finally:
            Path(path).unlink(missing_ok=True)
    return ctx.stdin.read().rstrip()


async def cmd_post(ctx: Context, args: argparse.Namespace) -> int:
    media_files = [Path(p) for p in args.media or []]
    alts = args.alt or []
    if len(alts) > len(media_files):
        raise UsageError("more --alt texts than --media files")
    for path in media_files:
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
    text = _compose(ctx, args.text, args.editor)
    if not text.strip() and not media_files:
        raise UsageError("nothing to post (empty text)")
    async with ctx.client() as api:
        media_ids = []
        for i, path in enumerate(media_files):
            ctx.note(f"Uploading {path.name} ({path.stat().st_size // 1024 or 1} KiB)…")
            media = await api.upload_media(path, alts[i] if i < len(alts) else None)
            media_ids.append(str(media["id"]))
        status = await api.post_status(text, in_reply_to_id=args.reply_to, visibility=args.visibility,
                                       spoiler_text=args.cw, media_ids=media_ids,
                                       sensitive=True if args.sensitive else None, language=args.language,
                                       idempotency_key=args.idempotency_key)
    if ctx.json:
        ctx.emit_json(status)
    else:
        ctx.out(ctx.render.status(status))
    return EXIT_OK


async def cmd_edit(ctx: Context, args: argparse.Namespace) -> int:
    async with ctx.client() as api:
        current = await api.status(args.id)
        source = await api.status_source(args.id)
        text = _compose(ctx, args.text, args.editor, initial=str(source.get("text", "")))
        if not text.strip() and not current.get("media_attachments"):
            raise UsageError("nothing to post (empty text)")
        spoiler = args.cw if args.cw is not None else str(source.get("spoiler_text", ""))
        media_ids = [str(m["id"]) for m in current.get("media_attachments") or []]
        status = await api.edit_status(args.id, text, spoiler_text=spoiler, media_ids=media_ids)
    if ctx.json:
        ctx.emit_json(status)
    else:
        ctx.out(ctx.render.status(status))
    return EXIT_OK


async def cmd_delete(ctx: Context, args: argparse.Namespace) -> int:
    async with ctx.client() as api:
        status = await api.delete_status(args.id)
    if ctx.json:
        ctx.emit_json(status)
    else:
        ctx.out(f"Deleted post {args.id}.")
    return EXIT_OK


STATUS_ACTIONS = {
    "fav": ("favourite", "unfavourite", "Favourited", "Unfavourited"),
    "boost": ("reblog", "unreblog", "Boosted", "Unboosted"),
    "bookmark": ("bookmark", "unbookmark", "Bookmarked", "Removed the bookmark from"),
}


def status_action(command: str) -> Callable[[Context, argparse.Namespace], Awaitable[int]]:
    do, undo, done, undone = STATUS_ACTIONS[command]

    async def run(ctx: Context, args: argparse.Namespace) -> int:
        async with ctx.client() as api:
            status_id = await _resolve_status_id(api, args.id)
            status = await api.status_action(status_id, undo if args.undo else do)
        if ctx.json:
            ctx.emit_json(status)
        else:
            ctx.out(f"{undone if args.undo else done} post {status_id}.")
        return EXIT_OK
    return run


ACCOUNT_ACTIONS = {
    "follow": "Following", "unfollow": "No longer following", "block": "Blocked", "unblock": "Unblocked",
    "mute": "Muted", "unmute": "Unmuted",
}


def account_action(command: str) -> Callable[[Context, argparse.Namespace], Awaitable[int]]:
    async def run(ctx: Context, args: argparse.Namespace) -> int:
        async with ctx.client() as api:
            account = await api.find_account(args.handle)
            relationship = await api.account_action(str(account["id"]), command)
        if ctx.json:
            ctx.emit_json(relationship)
        elif command == "follow" and relationship.get("requested") and not relationship.get("following"):
            ctx.out(f"Follow request sent to @{account['acct']} (the account approves followers).")
        else:
            ctx.out(f"{ACCOUNT_ACTIONS[command]} @{account['acct']}.")
        return EXIT_OK
    return run


# -- argument parsing ----------------------------------------------------------------------------------

def _common() -> argparse.ArgumentParser:
    """Options accepted before or after the command; SUPPRESS keeps a subcommand from resetting them."""
    common = argparse.ArgumentParser(add_help=False)
    s = argparse.SUPPRESS
    common.add_argument("--profile", "-P", default=s, metavar="NAME",
                        help="account profile to use (default: the last login; env XTALK_PROFILE)")
    common.add_argument("--json", action="store_true", default=s,
                        help="print the raw API entities as JSON (one document per line for lists)")
    common.add_argument("--wait", action="store_true", default=s,
                        help="when rate limited, wait for the limit to reset instead of failing")
    common.add_argument("--no-color", action="store_true", default=s, help="never use colour")
    common.add_argument("--expand", action="store_true", default=s,
                        help="show content hidden behind content warnings")
    return common


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="xtalk", parents=[common], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read and post on a Crosstalk (or Mastodon-compatible) instance from the terminal.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Callable[[Context, argparse.Namespace], Awaitable[int]], help_text: str,
            ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p

    p = add("login", cmd_login, "log in to an instance and save the account as a profile")
    p.add_argument("url", help="instance address, e.g. https://social.example.org")
    p.add_argument("--name", help="profile name (default: user@host)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--browser", action="store_true",
                     help="open a browser and receive the answer on a loopback redirect (no code to paste)")
    how.add_argument("--password", action="store_true",
                     help="log in with username and password (servers that allow the password grant)")
    how.add_argument("--token", metavar="TOKEN",
                     help="store an existing access token ('-' reads it from standard input)")
    p.add_argument("--username", help="with --password: the username or e-mail (prompted for otherwise)")
    p.add_argument("--timeout", type=float, default=300.0, help="with --browser: seconds to wait (300)")

    p = add("logout", cmd_logout, "revoke the token and forget the profile")
    p.add_argument("name", nargs="?", help="profile (default: the current one)")
    add("whoami", cmd_whoami, "show the account of the current profile")
    p = add("profiles", cmd_profiles, "list saved profiles")
    p.add_argument("--default", metavar="NAME", help="make NAME the default profile")

    p = add("timeline", cmd_timeline, "read a timeline: home, local, federated, tag NAME or list NAME")
    p.add_argument("kind", nargs="?", choices=TIMELINES, metavar="{home,local,federated,tag,list}")
    p.add_argument("name", nargs="?", help="hashtag or list name")
    p.add_argument("--limit", "-n", type=_positive, default=20, help="posts per page (20)")
    p.add_argument("--all", action="store_true", help="walk every page (Link headers)")
    p.add_argument("--follow", "-f", action="store_true", help="then stream new posts until interrupted")

    p = add("thread", cmd_thread, "show a post with its ancestors and replies")
    p.add_argument("ref", metavar="ID_OR_URL")

    p = add("notifications", cmd_notifications, "list notifications")
    p.add_argument("--limit", "-n", type=_positive, default=20)
    p.add_argument("--all", action="store_true", help="walk every page (Link headers)")
    p.add_argument("--type", action="append", metavar="TYPE",
                   help="only this type (mention, favourite, reblog, follow, ...); repeatable")

    p = add("show", cmd_show, "show an account: @user or @user@domain")
    p.add_argument("handle", metavar="@user@domain")

    p = add("search", cmd_search, "search accounts, hashtags and posts")
    p.add_argument("query")
    p.add_argument("--type", choices=("statuses", "accounts", "hashtags"))
    p.add_argument("--limit", "-n", type=_positive, default=None)

    p = add("post", cmd_post, "write a post (TEXT, or standard input, or $EDITOR)")
    p.add_argument("text", nargs="?", metavar="TEXT")
    p.add_argument("--reply-to", metavar="ID")
    p.add_argument("--visibility", choices=VISIBILITIES)
    p.add_argument("--cw", metavar="TEXT", help="content warning shown instead of the text")
    p.add_argument("--sensitive", action="store_true", help="mark media as sensitive")
    p.add_argument("--media", action="append", metavar="FILE", help="attach a file; repeatable")
    p.add_argument("--alt", action="append", metavar="TEXT",
                   help="description of the matching --media file; repeatable, in the same order")
    p.add_argument("--language", metavar="ISO639")
    p.add_argument("--idempotency-key", metavar="KEY", help="retrying with the same key never posts twice")
    p.add_argument("--editor", action="store_true", help="compose in $EDITOR even when standard input is not a terminal")

    p = add("edit", cmd_edit, "edit one of your posts (TEXT, or standard input, or $EDITOR)")
    p.add_argument("id")
    p.add_argument("text", nargs="?", metavar="TEXT")
    p.add_argument("--cw", metavar="TEXT", help="new content warning ('' removes it)")
    p.add_argument("--editor", action="store_true", help="compose in $EDITOR, starting from the current text")

    p = add("delete", cmd_delete, "delete one of your posts")
    p.add_argument("id")

    for name, verb in (("fav", "favourite"), ("boost", "boost"), ("bookmark", "bookmark")):
        p = add(name, status_action(name), f"{verb} a post (--undo reverses it)")
        p.add_argument("id", metavar="ID_OR_URL")
        p.add_argument("--undo", action="store_true")

    for name in ACCOUNT_ACTIONS:
        p = add(name, account_action(name), f"{name} an account")
        p.add_argument("handle", metavar="@user@domain")
    return parser


def describe_error(ctx: Context, exc: ApiError) -> str:
    """The one line printed on stderr for each class of failure."""
    if isinstance(exc, AuthError) and exc.status == 401 and ctx.profile is not None:
        return (f"the server rejected the saved login for profile {ctx.profile_name!r} (token expired or "
                f"revoked); log in again with: xtalk login {ctx.profile.base_url} --name {ctx.profile_name}")
    if isinstance(exc, AuthError) and exc.status == 403:
        return f"not allowed: {exc.message}"
    if isinstance(exc, NotFoundError):
        return f"not found: {exc.message}"
    if isinstance(exc, ValidationError):
        return f"the server refused: {exc.message}"
    if isinstance(exc, RateLimitedError):
        if exc.retry_after is not None:
            at = time.strftime("%H:%M:%S", time.localtime(time.time() + exc.retry_after))
            return f"rate limited; retry in {exc.retry_after:.0f} s (at {at}), or pass --wait"
        return "rate limited; retry later, or pass --wait"
    if exc.status and exc.status >= 500:
        return f"server error {exc.status}: {exc.message}"
    return exc.message


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure:
            reconfigure(errors="replace")
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = Context(args, sys.stdout, sys.stderr, sys.stdin)
    try:
        return asyncio.run(args.handler(ctx, args))
    except KeyboardInterrupt:
        # Interrupting --follow is how it is meant to end.
        return EXIT_OK if getattr(args, "follow", False) else EXIT_INTERRUPTED
    except ApiError as exc:
        ctx.note(f"xtalk: {describe_error(ctx, exc)}")
        return exc.exit_code
    except cfg.ConfigError as exc:
        ctx.note(f"xtalk: {exc}")
        return EXIT_ERROR
    except UsageError as exc:
        ctx.note(f"xtalk: {exc}")
        return EXIT_ERROR
    except BrokenPipeError:
        # `xtalk timeline | head`: the reader went away; not an error worth a traceback.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        except OSError:
            pass
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
