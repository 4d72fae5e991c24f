"""Raw RSA-2048 signature rates on one core: what signing (delivery) and verifying (inbox) cost
with `cryptography` alone, the ceiling the federation scenarios are compared with. Signs and
verifies a Mastodon-style (draft-cavage) signing string with PKCS#1 v1.5 / SHA-256, each for
--seconds (bounded), single-threaded; run it pinned to the server's CPU. Prints one JSON line.

    python -m bench.cryptorate --seconds 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGNING_STRING = (
    b"(request-target): post /users/alice/inbox\nhost: remote.example\ndate: Sun, 23 Nov 2025 20:00:00 GMT\n"
    b"digest: SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\ncontent-type: application/activity+json"
)


def _rate(fn: object, seconds: float, max_ops: int) -> float:
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while done < max_ops:
        for _ in range(20):
            fn()  # type: ignore[operator]
        done += 20
        if time.perf_counter() >= deadline:
            break
    return done / (time.perf_counter() - started)


def measure(seconds: float) -> dict[str, float]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    pad, sha = padding.PKCS1v15(), hashes.SHA256()
    signature = key.sign(SIGNING_STRING, pad, sha)
    _rate(lambda: key.sign(SIGNING_STRING, pad, sha), 0.3, 10_000)  # warm-up
    sign = _rate(lambda: key.sign(SIGNING_STRING, pad, sha), seconds, 1_000_000)
    verify = _rate(lambda: public.verify(signature, SIGNING_STRING, pad, sha), seconds, 5_000_000)
    return {"rsa2048_sign_per_s": round(sign, 1), "rsa2048_verify_per_s": round(verify, 1),
            "seconds_each": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement (upper bound)")
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(measure(min(args.seconds, 30.0))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
