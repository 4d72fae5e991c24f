"""Crosstalk's federation protocol library: ActivityPub as Mastodon speaks it.

A standalone package the server drives; it has no storage, no SQL and no imports from
`server/`.  Modules:

- `signatures`: HTTP Signatures (draft-cavage and RFC 9421) signing and two-step
  verification (`parse_signed_request`, then `verify_signed_request` once the server
  has the key), RSA key generation (run it in an executor).
- `models`: lenient readers for the JSON-LD shapes peers send (`parse_activity`,
  `parse_note`, `parse_actor`, `parse_public_key`), AS2 constants and @context arrays.
- `addressing`: visibility ↔ to/cc as Mastodon maps them; inbox selection.
- `html`: sanitising remote HTML (nh3) and flattening it to text.
- `documents`: builders for WebFinger, host-meta, NodeInfo, actors, notes, activities
  and collections.
- `client`: `FederationClient`, signed fetches and deliveries with redirect, size,
  content-type and private-address (egress) checks, double-knock signature negotiation
  and WebFinger lookups.
"""
