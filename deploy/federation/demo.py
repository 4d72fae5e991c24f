"""Watch two organisations federate: alice@eng follows bob@partner, bob posts, alice sees it and
replies, bob is notified. Run by compose.federation.yaml's `demo` service (over HTTPS through both
reverse proxies, trusting the internal CA); only the standard library is needed.

    python3 demo.py ENG_URL PARTNER_URL [CA_FILE]

Users and passwords come from DEMO_ENG_USER / DEMO_PARTNER_USER / DEMO_PASSWORD.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any


class Api:
    def __init__(self, base: str, context: ssl.SSLContext | None) -> None:
        self.base, self.context, self.token = base.rstrip("/"), context, ""

    def call(self, method: str, path: str, **form: str) -> Any:
        data = urllib.parse.urlencode(form).encode() if form else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=15, context=self.context) as answer:
            return json.load(answer)

    def log_in(self, username: str, password: str) -> None:
        app = self.call("POST", "/api/v1/apps", client_name="federation demo", redirect_uris="urn:ietf:wg:oauth:2.0:oob",
                        scopes="read write follow")
        token = self.call("POST", "/oauth/token", grant_type="password", client_id=app["client_id"],
                          client_secret=app["client_secret"], username=f"{username}@demo.test", password=password,
                          scope="read write follow")
        self.token = token["access_token"]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except urllib.error.URLError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.5)
    raise SystemExit(f"FAILED: {what} did not happen within {timeout:.0f}s (last: {last!r})")


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    eng_url, partner_url = argv[1], argv[2]
    context = ssl.create_default_context(cafile=argv[3]) if len(argv) > 3 else None
    eng_user = os.environ.get("DEMO_ENG_USER", "alice")
    partner_user = os.environ.get("DEMO_PARTNER_USER", "bob")
    password = os.environ.get("DEMO_PASSWORD", "correct horse battery")
    partner_domain = urllib.parse.urlsplit(partner_url).netloc
    eng_domain = urllib.parse.urlsplit(eng_url).netloc

    eng, partner = Api(eng_url, context), Api(partner_url, context)
    wait_for("both instances answering", lambda: eng.call("GET", "/readyz") and partner.call("GET", "/readyz"))
    eng.log_in(eng_user, password)
    partner.log_in(partner_user, password)
    print(f"[1/5] signed in as {eng_user}@{eng_domain} and {partner_user}@{partner_domain}", flush=True)

    remote = wait_for(f"{eng_domain} resolving {partner_user}@{partner_domain}", lambda: eng.call(
        "GET", "/api/v1/accounts/search?" + urllib.parse.urlencode(
            {"q": f"{partner_user}@{partner_domain}", "resolve": "true"})))[0]
    eng.call("POST", f"/api/v1/accounts/{remote['id']}/follow")
    wait_for("the follow being accepted", lambda: eng.call(
        "GET", f"/api/v1/accounts/relationships?id[]={remote['id']}")[0]["following"])
    print(f"[2/5] {eng_user} follows {remote['acct']} (WebFinger, signed Follow, Accept)", flush=True)

    text = f"Hello from {partner_domain} at {time.strftime('%H:%M:%S')}"
    post = partner.call("POST", "/api/v1/statuses", status=text)
    seen = wait_for(f"the post reaching {eng_domain}", lambda: [
        s for s in eng.call("GET", "/api/v1/timelines/home") if s["uri"] == post["uri"]])[0]
    print(f"[3/5] {partner_user} posted; it arrived in {eng_user}'s home timeline: {seen['content']}", flush=True)

    reply = eng.call("POST", "/api/v1/statuses", status=f"@{partner_user}@{partner_domain} received, thanks!",
                     in_reply_to_id=seen["id"])
    wait_for(f"the reply reaching {partner_domain}", lambda: [
        s for s in partner.call("GET", f"/api/v1/statuses/{post['id']}/context")["descendants"]
        if s["uri"] == reply["uri"]])
    print(f"[4/5] {eng_user} replied; the reply is in the thread on {partner_domain}", flush=True)

    wait_for("the mention notification", lambda: [
        n for n in partner.call("GET", "/api/v1/notifications") if n["type"] == "mention"])
    print(f"[5/5] {partner_user} was notified of the mention. Federation works end to end.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
