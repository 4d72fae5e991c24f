"""Container health check: `python3 -m server.healthcheck [livez|readyz]` exits 0 when the local
server answers 200. Standard library only, so it starts fast every time the runtime calls it."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    endpoint = argv[1] if len(argv) > 1 else "readyz"
    if endpoint not in ("livez", "readyz"):
        print(f"usage: python3 -m server.healthcheck [livez|readyz], not {endpoint!r}", file=sys.stderr)
        return 2
    host = os.environ.get("CROSSTALK_HOST", "127.0.0.1")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{os.environ.get('CROSSTALK_PORT', '8080')}/{endpoint}"
    try:
        with urllib.request.urlopen(url, timeout=4) as answer:
            print(answer.read(500).decode(errors="replace"))
            return 0
    except urllib.error.HTTPError as exc:
        print(f"{url}: {exc.code} {exc.read(500).decode(errors='replace')}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
