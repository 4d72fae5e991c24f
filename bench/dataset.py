"""Benchmark datasets: a SQLite file with the server's own schema, filled in bulk.

The server's `Database` is opened once to apply the real migrations; everything else is plain
`sqlite3.executemany` in large transactions, with the secondary indexes dropped during the load and
re-created afterwards from their original SQL (much faster than maintaining them row by row).

What is in a dataset (all deterministic for a given Spec):
- `users` local accounts (+ users rows sharing one precomputed scrypt hash) with skewed popularity;
  account 0 is "author", followed by exactly `author_followers` local accounts (the POST benchmark).
- ~`follows` follows per account, statuses with skewed activity: 80 % posts, 15 % replies (threads),
  5 % boosts; 78/12/10 % public/unlisted/private; some content warnings; text from a few hundred
  templates rendered once through `server.domain.text.render` (links, hashtags, a mention slot
  filled per status), with matching `mentions` and `status_tags` rows; ~0.5 favourites per status.
- `home_feed` as the server's fan-out would build it, but capped at the newest `feed_depth` entries
  per reader (like Mastodon's Redis feeds, capped at 800): 1M statuses x 200 followers would
  otherwise be ~200M rows.
- an `apps` row and bearer tokens (`token_hash` = sha256) for a sample of users; the plain tokens go
  to tokens.json next to the database.

Datasets are cached under bench/data/<key>/ (git-ignored); a directory counts only once meta.json
exists, so an interrupted generation is simply redone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any

from server.domain import text
from server.ids import iso
from server.services import secrets
from server.storage.db import Database
from server.storage.migrations import MIGRATIONS

GENERATOR_VERSION = 1
DB_NAME = "crosstalk.sqlite3"
PASSWORD = "bench password 1"
SCOPES = "read write follow"
# Every secondary index on these tables is dropped for the load and re-created from its own SQL.
BULK_TABLES = ("accounts", "users", "follows", "statuses", "mentions", "status_tags", "favourites",
               "home_feed", "tokens", "tags")
CHUNK = 100_000

_ACCOUNTS_FROM = datetime(2023, 1, 1, tzinfo=UTC).timestamp() * 1000
_FOLLOWS_FROM = datetime(2023, 12, 1, tzinfo=UTC).timestamp() * 1000
_STATUSES_FROM = datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000
_STATUSES_SPAN = 365 * 86400 * 1000

_MENTION_NAME = "zzmentionslot"
_MENTION_URL = "http://mention-slot.invalid/u"

_WORDS = (
    "the a our team meeting project update report office today tomorrow week quarter plan budget review "
    "draft policy release notes customers partners department board workshop training session slides "
    "agenda minutes feedback survey results data analysis proposal deadline schedule roadmap milestone "
    "launch pilot service support ticket incident outage fix deploy server network access account "
    "security audit compliance privacy guidance handbook wiki page document template form request approval "
    "lunch coffee kitchen parking building floor room desk remote hybrid travel visit conference talk "
    "panel keynote poster paper article blog newsletter announcement reminder thanks welcome congratulations "
    "everyone colleagues new old big small quick long short great good important urgent optional final "
    "first second next last is are was will be have has need needs please check see read share join "
    "bring send ask answer help discuss agree finish start open close move update and or but with for "
    "from about after before during on in at to of by this that these those it we you they"
).split()
_TAGS = ("announcement", "release", "security", "hiring", "events", "training", "research", "policy",
         "opensource", "accessibility", "climate", "health", "finance", "data", "design", "infrastructure",
         "community", "partners", "outage", "weekly", "TeamNews", "OpenData", "BoardMeeting", "Kudos",
         "AllHands", "Fediverse", "Python", "SQLite", "Mastodon", "Crosstalk")


@dataclass(frozen=True)
class Spec:
    users: int
    follows: int
    statuses: int
    feed_depth: int = 800
    author_followers: int = 1000
    token_users: int = 2000
    favourites_per_status: float = 0.5
    templates: int = 400
    seed: int = 1
    domain: str = "127.0.0.1:18080"

    @property
    def key(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]
        return f"u{self.users}-f{self.follows}-s{self.statuses}-d{self.feed_depth}-v{GENERATOR_VERSION}-{digest}"

    def with_statuses(self, statuses: int) -> Spec:
        return replace(self, statuses=statuses)


@dataclass
class Dataset:
    spec: Spec
    path: Path  # the data directory (CROSSTALK_DATA_DIR); the database is path / DB_NAME
    meta: dict[str, Any]
    tokens: list[dict[str, Any]] = field(repr=False)

    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def author(self) -> dict[str, Any]:
        return self.meta["author"]

    def token_of(self, account_id: int) -> str:
        return next(t["token"] for t in self.tokens if t["account_id"] == account_id)


def load(path: Path) -> Dataset | None:
    try:
        meta = json.loads((path / "meta.json").read_text())
        tokens = json.loads((path / "tokens.json").read_text())
    except (OSError, ValueError):
        return None
    if not (path / DB_NAME).exists():
        return None
    return Dataset(spec=Spec(**meta["spec"]), path=path, meta=meta, tokens=tokens)


def _migration_digests() -> dict[str, str]:
    return {str(v): hashlib.sha256(sql.encode()).hexdigest()[:16] for v, _, sql in MIGRATIONS}


def _stale(meta: dict[str, Any]) -> list[str]:
    """Migrations whose SQL changed since they were applied to the dataset (unknown counts as changed)."""
    applied = meta.get("migrations")
    if not isinstance(applied, dict):
        return ["(not recorded)"]
    current = _migration_digests()
    return [v for v, digest in applied.items() if current.get(v) != digest]


async def ensure(spec: Spec, root: Path, log: Callable[[str], None] = print, regenerate: bool = False) -> Dataset:
    """The cached dataset for `spec`, generated first if missing or if a migration it was built with has
    changed since; migrations added since are applied to the cache, once."""
    target = root / spec.key
    found = None if regenerate else load(target)
    if found is not None and (stale := _stale(found.meta)):
        log(f"dataset {spec.key}: schema migrations {', '.join(stale)} changed since it was built: rebuilding")
        found = None
    if found is None:
        await generate(spec, target, log)
        found = load(target)
        assert found is not None
    else:
        log(f"dataset {spec.key}: cached ({found.meta['counts']['statuses']:,} statuses)")
    db = Database(found.db_path, readers=1)
    await db.open()
    await db.close()
    if found.meta.get("migrations") != _migration_digests():
        found.meta["migrations"] = _migration_digests()
        (found.path / "meta.json").write_text(json.dumps(found.meta, indent=1))
    return found


async def generate(spec: Spec, target: Path, log: Callable[[str], None] = print) -> None:
    started = time.monotonic()
    work = target.with_name(target.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    work.mkdir(parents=True)
    log(f"dataset {spec.key}: generating {spec.users:,} users, ~{spec.follows} follows each, "
        f"{spec.statuses:,} statuses (feeds capped at {spec.feed_depth} entries per reader)")
    db = Database(work / DB_NAME, readers=1)
    await db.open()  # the server's own migrations
    await db.close()
    meta, tokens = await asyncio.to_thread(_fill, spec, work / DB_NAME, log)
    meta["generation_seconds"] = round(time.monotonic() - started, 1)
    meta["migrations"] = _migration_digests()
    meta["size_bytes"] = (work / DB_NAME).stat().st_size
    (work / "tokens.json").write_text(json.dumps(tokens))
    (work / "tokens.txt").write_text("".join(t["token"] + "\n" for t in tokens))
    (work / "meta.json").write_text(json.dumps(meta, indent=1))
    work.rename(target)
    log(f"dataset {spec.key}: done in {meta['generation_seconds']} s, {meta['size_bytes'] / 1e6:,.0f} MB")


# -- the bulk load -------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    return iso(datetime.fromtimestamp(second, UTC))[:-4]  # "YYYY-MM-DDTHH:MM:SS."


def _iso_ms(ms: float) -> str:
    """server.ids.iso of a millisecond timestamp, with the second's prefix cached (follows are 1 ms apart)."""
    second, micro = divmod(round(ms * 1000), 1_000_000)
    return f"{_iso_second(second)}{micro // 1000:03d}Z"


def _snowflake(ms: float, low: int) -> int:
    return (int(ms) << 16) | (low & 0xFFFF)


def _chunks(rows: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _insert(conn: sqlite3.Connection, sql: str, rows: Iterable[Any]) -> int:
    """executemany in one transaction per chunk."""
    n = 0
    for chunk in _chunks(rows):
        conn.execute("BEGIN")
        conn.executemany(sql, chunk)
        conn.execute("COMMIT")
        n += len(chunk)
    return n


def _weights(n: int, exponent: float, rng: random.Random) -> list[float]:
    """Cumulative Zipf-like weights over a random permutation of 0..n-1 (popularity, activity)."""
    ranks = list(range(n))
    rng.shuffle(ranks)
    cum, total = [], 0.0
    for i in range(n):
        total += 1.0 / (ranks[i] + 1) ** exponent
        cum.append(total)
    return cum


def _templates(spec: Spec, rng: random.Random) -> list[tuple[str, str, list[str], bool]]:
    """(source, html, tags, has_mention) rendered once by the server's own text renderer."""
    base_url = f"http://{spec.domain}"
    resolved: dict[tuple[str, str | None], text.MentionTarget] = {
        (_MENTION_NAME, None): text.MentionTarget(url=_MENTION_URL, username=_MENTION_NAME)}
    out = []
    for _ in range(spec.templates):
        paragraphs = []
        for _p in range(1 if rng.random() < 0.8 else 2):
            words = rng.choices(_WORDS, k=rng.randint(6, 40))
            words[0] = words[0].capitalize()
            paragraphs.append(" ".join(words) + rng.choice(".!?."))
        body = "\n\n".join(paragraphs)
        mention = rng.random() < 0.15
        if mention:
            body = f"@{_MENTION_NAME} {body}"
        if rng.random() < 0.2:
            body += f" https://example.org/docs/{rng.randrange(10_000)}"
        if rng.random() < 0.3:
            body += " " + " ".join("#" + t for t in rng.sample(_TAGS, rng.randint(1, 3)))
        rendered = text.render(body, base_url, spec.domain, resolved)
        out.append((body, rendered.html, rendered.tags, mention))
    return out


def _drop_indexes(conn: sqlite3.Connection) -> list[str]:
    marks = ",".join("?" * len(BULK_TABLES))
    rows = conn.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                        f" AND tbl_name IN ({marks})", BULK_TABLES).fetchall()
    for name, _ in rows:
        conn.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in rows]


def _fill(spec: Spec, db_path: Path, log: Callable[[str], None]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rng = random.Random(spec.seed)
    t0 = time.monotonic()

    def step(what: str) -> None:
        log(f"  {what} ({time.monotonic() - t0:.1f} s)")

    U, S = spec.users, spec.statuses
    base_url = f"http://{spec.domain}"
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("PRAGMA temp_store = MEMORY")
    index_sql = _drop_indexes(conn)

    # Accounts and users.
    names = ["author"] + [f"user{i:05d}" for i in range(1, U)]
    account_ms = [_ACCOUNTS_FROM + i * (300 * 86400 * 1000 / U) for i in range(U)]
    account_ids = [_snowflake(ms, i) for i, ms in enumerate(account_ms)]
    uris = [f"{base_url}/users/{n}" for n in names]
    urls = [f"{base_url}/@{n}" for n in names]

    # Follows: skewed popularity; the author is followed by exactly author_followers accounts.
    popular = _weights(U, 0.9, rng)
    everyone = range(U)
    following: list[list[int]] = []
    fans = min(spec.author_followers, U - 1)
    for i in range(U):
        want = min(spec.follows, U - 2)
        chosen: set[int] = set()
        if 1 <= i <= fans:
            chosen.add(0)
        while len(chosen) < want:
            for t in rng.choices(everyone, cum_weights=popular, k=int((want - len(chosen)) * 1.3) + 4):
                if t != i and t != 0 and len(chosen) < want:
                    chosen.add(t)
        following.append(sorted(chosen))
    followers: list[list[int]] = [[] for _ in range(U)]
    for i, targets in enumerate(following):
        for t in targets:
            followers[t].append(i)
    step(f"follow graph: {sum(map(len, following)):,} follows")

    # Statuses, first as plain arrays (counts must be known before the rows are written).
    templates = _templates(spec, rng)
    active = _weights(U, 0.7, rng)
    authors = rng.choices(everyone, cum_weights=active, k=S)
    step_ms = max(_STATUSES_SPAN / max(S, 1), 4)
    ms = [_STATUSES_FROM + i * step_ms + rng.random() * step_ms / 2 for i in range(S)]
    ids = [_snowflake(m, i) for i, m in enumerate(ms)]
    kind = bytearray(S)  # 0 post, 1 reply, 2 boost
    target = [-1] * S
    thread = list(range(S))
    visibility = bytearray(S)  # 0 public, 1 unlisted, 2 private
    template = [0] * S
    mention = [-1] * S
    replies = [0] * S
    reblogs = [0] * S
    originals: list[int] = []  # non-boost statuses so far
    public: list[int] = []  # public non-boost statuses so far
    boosted: set[tuple[int, int]] = set()
    for i in range(S):
        a = authors[i]
        roll = rng.random()
        if roll < 0.05 and public:
            t = public[len(public) - 1 - rng.randrange(min(len(public), 20_000))]
            if authors[t] != a and (a, t) not in boosted:
                boosted.add((a, t))
                kind[i], target[i] = 2, t
                reblogs[t] += 1
                continue
        if roll < 0.20 and originals:
            t = originals[len(originals) - 1 - rng.randrange(min(len(originals), 5_000))]
            kind[i], target[i], thread[i] = 1, t, thread[t]
            replies[t] += 1
        v = rng.random()
        visibility[i] = 0 if v < 0.78 else 1 if v < 0.90 else 2
        if kind[i] == 1 and visibility[target[i]] == 2:
            visibility[i] = 2
        template[i] = rng.randrange(len(templates))
        if templates[template[i]][3]:
            m = rng.randrange(U)
            mention[i] = m if m != a else (m + 1) % U
        originals.append(i)
        if visibility[i] == 0:
            public.append(i)
    favourites = [0] * S
    faved: set[tuple[int, int]] = set()
    if originals:
        for _ in range(int(S * spec.favourites_per_status)):
            pair = (rng.randrange(U), originals[rng.randrange(len(originals))])
            if pair not in faved:
                faved.add(pair)
                favourites[pair[1]] += 1
    statuses_count = [0] * U
    last_status = [-1] * U
    for i, a in enumerate(authors):
        statuses_count[a] += 1
        last_status[a] = i
    step(f"statuses planned: {S:,} ({kind.count(1):,} replies, {kind.count(2):,} boosts)")

    now_iso = _iso_ms(_STATUSES_FROM + _STATUSES_SPAN)
    pw_hash = secrets.hash_password_sync(PASSWORD)
    _insert(conn, "INSERT INTO accounts (id, username, domain, display_name, note, uri, url, inbox_url,"
                  " shared_inbox_url, outbox_url, followers_url, following_url, featured_url, key_id, created_at,"
                  " updated_at, last_status_at, last_status_id, statuses_count, followers_count, following_count)"
                  " VALUES (?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((account_ids[i], names[i], names[i].replace("user", "User ").title(),
              f"<p>Benchmark account {names[i]}</p>", uris[i], urls[i], f"{uris[i]}/inbox", f"{base_url}/inbox",
              f"{uris[i]}/outbox", f"{uris[i]}/followers", f"{uris[i]}/following",
              f"{uris[i]}/collections/featured", f"{uris[i]}#main-key", _iso_ms(account_ms[i]), now_iso,
              _iso_ms(ms[last_status[i]])[:10] if last_status[i] >= 0 else None,
              ids[last_status[i]] if last_status[i] >= 0 else None, statuses_count[i],
              len(followers[i]), len(following[i])) for i in range(U)))
    _insert(conn, "INSERT INTO users (account_id, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
            ((account_ids[i], f"{names[i]}@bench.test", pw_hash, _iso_ms(account_ms[i])) for i in range(U)))
    follow_rows = (
        (_snowflake(_FOLLOWS_FROM + k, 0), account_ids[i], account_ids[t], f"{uris[i]}#follows/{k}",
         _iso_ms(_FOLLOWS_FROM + k))
        for k, (i, t) in enumerate((i, t) for i in range(U) for t in following[i]))
    n_follows = _insert(conn, "INSERT INTO follows (id, account_id, target_account_id, uri, created_at)"
                              " VALUES (?, ?, ?, ?, ?)", follow_rows)
    step("accounts, users, follows written")

    tag_ids = {name.lower(): _snowflake(_ACCOUNTS_FROM, k) for k, name in enumerate(
        {t.lower(): t for tpl in templates for t in tpl[2]})}
    _insert(conn, "INSERT INTO tags (id, name) VALUES (?, ?)", ((v, k) for k, v in tag_ids.items()))
    app_id = _snowflake(_ACCOUNTS_FROM, 0xFFFF)
    conn.execute("INSERT INTO apps (id, name, website, client_id, client_secret_hash, redirect_uris, scopes,"
                 " created_at) VALUES (?, 'Crosstalk bench', NULL, 'crosstalk-bench', ?, ?, ?, ?)",
                 (app_id, hashlib.sha256(rng.randbytes(32)).hexdigest(), "urn:ietf:wg:oauth:2.0:oob", SCOPES,
                  now_iso))

    vis_names = ("public", "unlisted", "private")

    def status_rows() -> Iterator[tuple[Any, ...]]:
        for i in range(S):
            a, sid = authors[i], ids[i]
            created = _iso_ms(ms[i])
            if kind[i] == 2:
                yield (sid, f"{uris[a]}/statuses/{sid}/activity", f"{urls[a]}/{sid}", account_ids[a], 1, None, None,
                       ids[target[i]], None, "", "", "", "public", 0, None, None, created, 0, 0, 0)
                continue
            source, html_text, _, has_mention = templates[template[i]]
            if has_mention:
                m = mention[i]
                html_text = html_text.replace(_MENTION_URL, urls[m]).replace(_MENTION_NAME, names[m])
                source = source.replace(_MENTION_NAME, names[m])
            cw = "Long post" if i % 50 == 7 else ""
            t = target[i]
            yield (sid, f"{uris[a]}/statuses/{sid}", f"{urls[a]}/{sid}", account_ids[a], 1,
                   ids[t] if t >= 0 else None, account_ids[authors[t]] if t >= 0 else None, None,
                   ids[thread[i]], html_text, source, cw, vis_names[visibility[i]], int(bool(cw)), "en",
                   app_id if i % 2 else None, created, replies[i], reblogs[i], favourites[i])

    _insert(conn, "INSERT INTO statuses (id, uri, url, account_id, local, in_reply_to_id, in_reply_to_account_id,"
                  " reblog_of_id, thread_id, content, source_text, spoiler_text, visibility, sensitive, language,"
                  " app_id, created_at, replies_count, reblogs_count, favourites_count)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", status_rows())
    n_mentions = _insert(conn, "INSERT INTO mentions (status_id, account_id) VALUES (?, ?)",
                         ((ids[i], account_ids[mention[i]]) for i in range(S) if mention[i] >= 0))
    tag_rows = sorted((tag_ids[tg.lower()], ids[i]) for i in range(S) if kind[i] != 2
                      for tg in templates[template[i]][2])
    n_tags = _insert(conn, "INSERT INTO status_tags (tag_id, status_id) VALUES (?, ?)", tag_rows)
    fav_rows = sorted(faved, key=lambda p: p[1])
    n_favs = _insert(conn, "INSERT INTO favourites (id, account_id, status_id, created_at) VALUES (?, ?, ?, ?)",
                     ((_snowflake(ms[s] + 60_000, k), account_ids[a], ids[s], _iso_ms(ms[s] + 60_000))
                      for k, (a, s) in enumerate(fav_rows)))
    del faved, fav_rows, tag_rows
    step("statuses, mentions, tags, favourites written")

    # Home feeds: what the server's fan-out would have written (author + local followers), newest
    # first, stopping at feed_depth entries per reader.
    depth = spec.feed_depth
    feeds: list[list[int]] = [[] for _ in range(U)]
    readers = [[*followers[a], a] for a in range(U)]
    open_feeds = U
    for i in range(S - 1, -1, -1):
        if open_feeds == 0:
            break
        lst = readers[authors[i]]
        if not lst:
            continue
        sid, full = ids[i], False
        for r in lst:
            feed = feeds[r]
            if len(feed) < depth:
                feed.append(sid)
                if len(feed) == depth:
                    open_feeds -= 1
            else:
                full = True
        if full:
            readers[authors[i]] = [r for r in lst if len(feeds[r]) < depth]
    n_feed = _insert(conn, "INSERT INTO home_feed (account_id, status_id) VALUES (?, ?)",
                     ((account_ids[r], sid) for r in range(U) for sid in reversed(feeds[r])))
    full_feeds = U - open_feeds
    del feeds, readers
    step(f"home feeds written: {n_feed:,} rows, {full_feeds:,} of {U:,} feeds at the {depth} cap")

    # Tokens for a sample of users (always the author), and which of them follow the author.
    sample = sorted({0, *rng.sample(range(1, U), min(spec.token_users, U) - 1)})
    tokens = []
    author_fans = set(followers[0])
    for k, i in enumerate(sample):
        token = base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=")
        tokens.append({"account_id": account_ids[i], "username": names[i], "token": token,
                       "follows_author": i in author_fans})
        conn.execute("INSERT INTO tokens (id, token_hash, app_id, account_id, scopes, created_at)"
                     " VALUES (?, ?, ?, ?, ?, ?)",
                     (_snowflake(_FOLLOWS_FROM - 1000 + k, k), secrets.token_hash(token), app_id,
                      account_ids[i], SCOPES, now_iso))

    for sql in index_sql:
        conn.execute(sql)
    step(f"{len(index_sql)} indexes re-created")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    step("analyzed")
    meta = {
        "spec": asdict(spec),
        "generator_version": GENERATOR_VERSION,
        "counts": {"accounts": U, "follows": n_follows, "statuses": S, "replies": kind.count(1),
                   "boosts": kind.count(2), "mentions": n_mentions, "status_tags": n_tags, "favourites": n_favs,
                   "home_feed": n_feed, "feeds_at_cap": full_feeds, "tokens": len(tokens)},
        "author": {"id": account_ids[0], "username": names[0], "followers": len(followers[0]),
                   "token": tokens[0]["token"]},
        "notes": f"home_feed keeps the newest {depth} entries per reader (like Mastodon's capped Redis feeds)",
    }
    return meta, tokens
