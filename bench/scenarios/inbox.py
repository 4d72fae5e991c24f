"""Signed Create(Note) activities POSTed to the shared inbox /inbox by a fake remote actor whose key the
instance fetches once from a loopback sink: how many are accepted (202) per second, and how many
notes are stored per second (the inbox worker applies them after the answer, so the two differ),
against the raw RSA-2048 verify rate and the hello-world baseline measured in the same run.

The actor is followed by a few local accounts and one note in four also mentions a local user, so
every note is relevant and is stored (and fanned out to its followers' home feeds). Requests are
signed before the clock starts (signing is the sender's cost), each sent once."""

from __future__ import annotations

import asyncio
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any

from bench import load as loads
from bench import procs
from bench.context import CROSSTALK_PORT, LOAD_CPU, Context, Result
from bench.rawload import write_requests
from bench.scenarios._federation import FEDERATION_ENV, add_remote_accounts, db_value, sink_stats, wait_until
from federation.signatures import generate_rsa_keypair, sign_cavage
from server.ids import iso, new_id

NAME = "inbox"
DESCRIPTION = "signed Create(Note) to /inbox: accepted/s (202) and stored/s vs RSA verify rate and hello-world"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
LOCAL_FOLLOWERS = 10
WARMUP = 50
_TEXTS = ("Our quarterly report is out, thanks to everyone who helped with the draft.",
          "Reminder: the security audit starts next week, please check the handbook.",
          "New blog post on accessibility in our design system, feedback welcome!",
          "The conference talk slides are online now, see the link on the wiki.")


def _activity(i: int, actor_uri: str, mention: tuple[str, str] | None, published: str) -> bytes:
    """A Mastodon-shaped Create(Note), public, to the actor's followers (and a mentioned local user)."""
    note_id = f"{actor_uri}/statuses/{i}"
    text = _TEXTS[i % len(_TEXTS)]
    content = f"<p>{text} ({i})</p>"
    cc = [f"{actor_uri}/followers"]
    tags: list[dict[str, Any]] = []
    if i % 3 == 0:
        tags.append({"type": "Hashtag", "href": "http://remote.invalid/tags/fediverse", "name": "#fediverse"})
        content = content[:-4] + ' <a href="http://remote.invalid/tags/fediverse" rel="tag">#fediverse</a></p>'
    if mention is not None:
        uri, name = mention
        cc.append(uri)
        tags.append({"type": "Mention", "href": uri, "name": name})
        content = f'<p><span class="h-card"><a href="{uri}" class="u-url mention">@{name.split("@")[1]}</a></span> ' \
                  + content[3:]
    note = {"id": note_id, "type": "Note", "attributedTo": actor_uri, "content": content, "published": published,
            "url": note_id, "to": [PUBLIC], "cc": cc, "tag": tags, "sensitive": False}
    activity = {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{note_id}/activity", "type": "Create",
                "actor": actor_uri, "published": published, "to": [PUBLIC], "cc": cc, "object": note}
    return json.dumps(activity, separators=(",", ":")).encode()


def _sign_chunk(job: dict[str, Any]) -> list[bytes]:
    """Signed raw requests for activities job["start"]..job["stop"] (runs in a worker process)."""
    out = []
    url = f"http://{job['domain']}/inbox"
    for i in range(job["start"], job["stop"]):
        mention = job["mentions"][i % len(job["mentions"])] if i % 4 == 0 else None
        # Each note a millisecond apart: remote notes published over 5 s ago get ids of their own time
        # with a random 16-bit low part, so many notes of the very same millisecond would collide.
        published = iso(datetime.fromtimestamp((job["published_ms"] + i) / 1000, UTC))
        body = _activity(i, job["actor_uri"], mention, published)
        headers = {"Content-Type": "application/activity+json"}
        headers.update(sign_cavage("POST", url, headers, body, job["key_id"], job["private_pem"]))
        out.append(loads.raw_request("POST", "/inbox", job["domain"], headers, body))
    return out


def _presign(count: int, first: int, common: dict[str, Any]) -> list[bytes]:
    workers = max(1, min(2, procs.cpus()))
    step = (count + workers * 4 - 1) // (workers * 4)
    jobs = [{**common, "start": s, "stop": min(first + count, s + step)} for s in range(first, first + count, step)]
    with ProcessPoolExecutor(workers) as pool:
        return [raw for chunk in pool.map(_sign_chunk, jobs) for raw in chunk]


async def run(ctx: Context) -> dict[str, Any]:
    res = Result()
    ds = await ctx.dataset()
    count = int(os.environ.get("BENCH_INBOX_COUNT", 0)) or (3_000 if ctx.small else 15_000)  # more, for profiles
    crypto = await ctx.crypto_rates()
    base = await ctx.baseline()
    data_dir = ctx.private_copy(ds, "inbox")
    db_path = data_dir / "crosstalk.sqlite3"
    port = procs.free_ports(1, avoid={CROSSTALK_PORT})[0]
    host = f"127.0.0.1:{port}"
    actor_uri = f"http://{host}/users/mallory"
    key_id = f"{actor_uri}#main-key"
    private_pem, public_pem = await asyncio.to_thread(generate_rsa_keypair)

    # The actor as a stub (no key yet: the instance fetches it from the sink on the first request),
    # followed by a few local accounts; notes mention other local users.
    actor_id = new_id()
    followers = [t["account_id"] for t in ds.tokens[1:1 + LOCAL_FOLLOWERS]]
    mentions = [(f"http://{ds.spec.domain}/users/{t['username']}", f"@{t['username']}@{ds.spec.domain}")
                for t in ds.tokens[100:120]]
    await asyncio.to_thread(add_remote_accounts, db_path, [
        {"id": actor_id, "username": "mallory", "domain": host, "uri": actor_uri, "inbox_url": f"{actor_uri}/inbox",
         "fetched_at": "2020-01-01T00:00:00.000Z"}], [(f, actor_id) for f in followers])

    work = ctx.work_root / "inbox"
    work.mkdir(parents=True, exist_ok=True)
    (work / "actors.json").write_text(json.dumps({"mallory": public_pem}))
    common = {"domain": ds.spec.domain, "actor_uri": actor_uri, "key_id": key_id, "private_pem": private_pem,
              "mentions": mentions, "published_ms": int(time.time() * 1000) - 600_000}
    started = asyncio.get_running_loop().time()
    warm = await asyncio.get_running_loop().run_in_executor(None, _presign, WARMUP, 0, common)
    signed = await asyncio.get_running_loop().run_in_executor(None, _presign, count, WARMUP, common)
    ctx.log(f"inbox: {WARMUP + count:,} requests signed in {asyncio.get_running_loop().time() - started:.1f} s")
    write_requests(str(work / "warm.bin"), [(r, "warm") for r in warm])
    write_requests(str(work / "requests.bin"), [(r, "create") for r in signed])

    def stored() -> int:
        return db_value(db_path, "SELECT count(*) FROM statuses WHERE account_id = ?", (actor_id,))

    def progress() -> tuple[int, int]:
        """(notes stored, activities received and not yet applied). The pending ones are counted first:
        counted after, a batch stored and marked applied between the two reads would be missed by the
        count of notes and yet not be pending (seen: 14,963 of 15,000 "stored", none lost)."""
        pending = db_value(db_path, "SELECT count(*) FROM inbox_activities WHERE processed_at IS NULL")
        return stored(), pending

    async with ctx.sink([port], actors_file=work / "actors.json") as sink, \
            ctx.crosstalk(ds, data_dir=data_dir, env=FEDERATION_ENV) as server:
        # Warm-up: the key is fetched once, statement caches fill; wait until these are applied.
        warm_run = await loads.raw_load(server.port, work / "warm.bin", connections=4, duration=30,
                                        max_requests=WARMUP, cpu=LOAD_CPU)
        if warm_run["statuses"] != {"202": WARMUP}:
            raise RuntimeError(f"warm-up inbox POSTs were not all accepted: {warm_run['statuses']}\n"
                               f"{server.log_tail()}")
        n, _, ok = await wait_until(stored, lambda v: v >= WARMUP, 60)
        if not ok:
            raise RuntimeError(f"only {n} of {WARMUP} warm-up notes stored after 60 s:\n{server.log_tail()}")
        fetches = db_value(db_path, "SELECT count(*) FROM accounts WHERE id = ? AND public_key_pem != ''", (actor_id,))

        cpu0 = server.cpu_seconds()
        sent = await loads.raw_load(server.port, work / "requests.bin", connections=ctx.connections,
                                    duration=2 * ctx.duration, max_requests=count, cpu=LOAD_CPU)
        at_end, end_seen, _ = await wait_until(stored, lambda v: True, 5)
        accept_cpu = server.cpu_seconds() - cpu0
        (total, _), done_seen, complete = await wait_until(progress, lambda v: v[1] == 0, 300, interval=0.1)
        cpu_all = server.cpu_seconds() - cpu0
        errors = db_value(db_path, "SELECT count(*) FROM inbox_activities WHERE error IS NOT NULL")
        first_error = db_value(db_path, "SELECT min(error) FROM inbox_activities WHERE error IS NOT NULL")

        def feed_rows_now() -> int:
            return db_value(db_path, "SELECT count(*) FROM home_feed WHERE status_id IN"
                                     " (SELECT id FROM statuses WHERE account_id = ?)", (actor_id,))

        # The home feeds are filled after each note's commit (the outbox's fan-out): wait for them too,
        # so that the CPU per activity can be given with the fan-out's share.
        feed_rows, feeds_seen, _ = await wait_until(feed_rows_now, lambda v: v >= total * LOCAL_FOLLOWERS, 120,
                                                    interval=0.2)
        cpu_with_feeds = server.cpu_seconds() - cpu0
        sink_info = await sink_stats(sink.url)
        rss = server.rss_mb()

    accepted = sent["statuses"].get("202", 0)
    if sent["non_2xx"] or sent["errors"]:
        raise RuntimeError(f"inbox POSTs: {sent['statuses']}, {sent['errors']} socket errors")
    notes = total - WARMUP
    first = sent["first_sent_at"]
    accept_s = sent["last_ok_at"] - first
    accept_rate = accepted / accept_s
    process_rate = notes / (done_seen - first)
    stored_during = at_end - WARMUP
    after_rate = (notes - stored_during) / (done_seen - end_seen) if done_seen > end_seen else 0.0
    verify = crypto["rsa2048_verify_per_s"]
    ctx.log(f"inbox: {accept_rate:,.0f} accepted/s; {notes:,} of {accepted:,} stored in {done_seen - first:.1f} s "
            f"= {process_rate:,.0f}/s; raw verify {verify:,.0f}/s")

    res.add("activities", accepted, "", f"signed Create(Note) accepted (of {count:,} pre-signed, each sent once)")
    res.add("accept_rate", round(accept_rate), "/s", f"accepted (202) per second, {ctx.connections} connections")
    res.add("accept_p50_ms", sent["p50_ms"], "ms", "inbox POST p50")
    res.add("accept_p99_ms", sent["p99_ms"], "ms", "inbox POST p99")
    res.add("stored_during_accepts", stored_during, "", "notes stored while the POSTs were coming in")
    res.add("process_rate", round(process_rate), "/s", "notes stored per second, first POST → last note stored")
    res.add("process_rate_alone", round(after_rate), "/s", "notes stored per second once the POSTs had stopped")
    res.add("all_stored_s", round(done_seen - first, 1), "s", "first POST → every note stored")
    res.add("cpu_ms_per_activity", round(cpu_all * 1000 / max(1, notes), 2), "ms", "server CPU per activity (accept + store)")
    res.add("feeds_done_s", round(feeds_seen - first, 1), "s",
            "first POST → every note in its followers' home feeds (the fan-out after each commit)")
    res.add("cpu_ms_per_activity_with_feeds", round(cpu_with_feeds * 1000 / max(1, notes), 2), "ms",
            "server CPU per activity, accept + store + home-feed fan-out")
    res.add("accept_cpu_ms", round(accept_cpu * 1000 / max(1, accepted), 2), "ms",
            "server CPU per accepted POST (incl. the storing done meanwhile)")
    res.add("verify_rate", round(verify), "/s", "raw RSA-2048 verify, cryptography, one core")
    res.add("accept_vs_verify_pct", round(100 * accept_rate / verify, 1), "%", "accept rate as % of raw verify rate")
    res.add("process_vs_verify_pct", round(100 * process_rate / verify, 1), "%", "stored rate as % of raw verify rate")
    res.add("baseline_rps", round(base["load"]["rps"]), "req/s", "hello-world baseline req/s (wrk)")
    res.add("accept_vs_baseline_pct", round(100 * accept_rate / base["load"]["rps"], 1), "%",
            "accept rate as % of hello-world req/s")
    res.add("feed_rows", feed_rows, "", f"home-feed rows for the notes ({LOCAL_FOLLOWERS} local followers)")
    res.add("stored_pct", round(100 * notes / accepted, 2) if accepted else 0.0, "%", "accepted notes stored")
    res.add("errors", errors, "", "inbox activities that failed to apply")
    res.add("rss_mb", round(rss, 1), "MB", "server RSS at the end")
    res.note(f"one actor on a loopback sink (key fetched {sink_info.get('actor_fetches')} time(s); stored key: "
             f"{bool(fetches)}), followed by {LOCAL_FOLLOWERS} local accounts; 1 note in 4 mentions a local user, 1 in "
             "3 has a hashtag; draft-cavage signatures made before the clock starts; server pinned to CPU 0, the "
             f"client (bench/rawload.py, {ctx.connections} connections) and the sink to CPU 1")
    if errors:
        res.note(f"first error: {first_error}")
    res.raw = {"sent": {k: v for k, v in sent.items() if k != "by_label"}, "crypto": crypto, "sink": sink_info,
               "complete": complete}
    return res.as_dict()
