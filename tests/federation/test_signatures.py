import base64
import datetime
import hashlib
import time
from email.utils import formatdate

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from httpsig import HeaderSigner, HeaderVerifier
from multidict import CIMultiDict, CIMultiDictProxy

from federation.signatures import (
    SignatureError,
    SignedRequest,
    generate_rsa_keypair,
    load_private_key,
    parse_signed_request,
    sign_cavage,
    sign_rfc9421,
    verify_signed_request,
)

INBOX = "https://remote.example/users/bob/inbox"
KEY_ID = "https://local.example/users/alice#main-key"
BODY = b'{"type":"Create","id":"https://local.example/a/1"}'
CT = {"Content-Type": "application/activity+json"}


def ci(headers: dict[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(headers))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def cavage_by_hand(
    priv: str,
    lines: list[tuple[str, str]],
    *,
    headers: dict[str, str],
    algorithm: str | None = "rsa-sha256",
    extra: str = "",
    names: str | None = None,
) -> dict[str, str]:
    """Build a draft-cavage Signature over arbitrary (name, value) lines."""
    data = "\n".join(f"{n}: {v}" for n, v in lines).encode()
    sig = load_private_key(priv).sign(data, padding.PKCS1v15(), hashes.SHA256())
    parts = [f'keyId="{KEY_ID}"']
    if algorithm is not None:
        parts.append(f'algorithm="{algorithm}"')
    parts.append(f'headers="{names if names is not None else " ".join(n for n, _ in lines)}"')
    parts.append(f'signature="{b64(sig)}"')
    return {**headers, "Signature": ",".join(parts) + extra}


class Msg:
    """Request shape http-message-signatures understands."""

    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method = method
        self.url = url
        self.headers = headers


class Resolver(HTTPSignatureKeyResolver):
    def __init__(self, priv: str, pub: str) -> None:
        self.priv, self.pub = priv, pub

    def resolve_public_key(self, key_id: str):
        return serialization.load_pem_public_key(self.pub.encode())

    def resolve_private_key(self, key_id: str):
        return serialization.load_pem_private_key(self.priv.encode(), password=None)


# --------------------------------------------------------------------------- keys


def test_keypair_shapes(keypair):
    priv, pub = keypair
    assert priv.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert pub.startswith("-----BEGIN PUBLIC KEY-----")  # SPKI
    assert load_private_key(priv).key_size == 2048
    assert load_private_key(priv) is load_private_key(priv)  # cached, not reparsed


# --------------------------------------------------------------------------- cavage interop


def test_sign_cavage_post_verifies_with_httpsig(keypair):
    priv, pub = keypair
    added = sign_cavage("POST", INBOX, dict(CT), BODY, KEY_ID, priv)
    assert set(added) == {"Date", "Host", "Digest", "Content-Digest", "Signature"}
    assert added["Host"] == "remote.example"
    digest = b64(hashlib.sha256(BODY).digest())
    assert added["Digest"] == f"SHA-256={digest}"
    assert added["Content-Digest"] == f"sha-256=:{digest}:"
    assert 'algorithm="rsa-sha256"' in added["Signature"]
    assert 'headers="(request-target) host date digest content-type"' in added["Signature"]
    # IMF-fixdate with a two-digit day (mastodon#9189).
    datetime.datetime.strptime(added["Date"], "%a, %d %b %Y %H:%M:%S GMT")
    assert added["Date"][5:7].isdigit()
    v = HeaderVerifier(
        {**CT, **added},
        pub,
        method="POST",
        path="/users/bob/inbox",
        sign_header="signature",
        required_headers=["(request-target)", "host", "date", "digest", "content-type"],
    )
    assert v.verify()


def test_sign_cavage_get_with_query_verifies_with_httpsig(keypair):
    priv, pub = keypair
    added = sign_cavage(
        "GET", "https://Remote.Example:8443/outbox?page=true&min_id=5", {}, None, KEY_ID, priv
    )
    assert added["Host"] == "remote.example:8443"
    assert "Digest" not in added
    assert 'headers="(request-target) host date"' in added["Signature"]
    v = HeaderVerifier(
        added,
        pub,
        method="GET",
        path="/outbox?page=true&min_id=5",
        sign_header="signature",
        required_headers=["(request-target)", "host", "date"],
    )
    assert v.verify()


def test_sign_cavage_post_needs_content_type(keypair):
    with pytest.raises(ValueError):
        sign_cavage("POST", INBOX, {}, BODY, KEY_ID, keypair[0])


@pytest.mark.parametrize("sign_header", ["signature", "authorization"])
def test_httpsig_signed_post_verifies_with_ours(keypair, sign_header):
    priv, pub = keypair
    headers = {
        "Host": "remote.example",
        "Date": formatdate(usegmt=True),
        "Digest": "SHA-256=" + b64(hashlib.sha256(BODY).digest()),
        **CT,
    }
    signer = HeaderSigner(
        KEY_ID,
        priv,
        algorithm="rsa-sha256",
        headers=["(request-target)", "host", "date", "digest", "content-type"],
        sign_header=sign_header,
    )
    signed = dict(signer.sign(headers, method="POST", path="/users/bob/inbox"))
    sr = parse_signed_request("POST", "/users/bob/inbox", ci(signed), BODY)
    assert sr.scheme == "cavage" and sr.key_id == KEY_ID
    verify_signed_request(sr, pub)


def test_ours_round_trip_cavage(keypair):
    priv, pub = keypair
    added = sign_cavage("POST", INBOX, dict(CT), BODY, KEY_ID, priv)
    sr = parse_signed_request("POST", "/users/bob/inbox", ci({**CT, **added}), BODY)
    assert isinstance(sr, SignedRequest)
    assert sr.covered == ("(request-target)", "host", "date", "digest", "content-type")
    verify_signed_request(sr, pub)
    # Plain dicts with odd casing work too (lookup is case-insensitive).
    sr = parse_signed_request(
        "POST", "/users/bob/inbox", {k.upper(): v for k, v in {**CT, **added}.items()}, BODY
    )
    verify_signed_request(sr, pub)


# --------------------------------------------------------------------------- RFC 9421 interop


def test_sign_rfc9421_post_verifies_with_http_message_signatures(keypair):
    priv, pub = keypair
    added = sign_rfc9421("POST", INBOX, dict(CT), BODY, KEY_ID, priv)
    assert added["Signature-Input"].startswith('sig1=("@method" "@target-uri" "content-digest");created=')
    assert f'keyid="{KEY_ID}"' in added["Signature-Input"]
    assert 'alg="rsa-v1_5-sha256"' in added["Signature-Input"]
    assert "Date" in added and "Content-Digest" in added
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=Resolver(priv, pub)
    )
    results = verifier.verify(
        Msg("POST", INBOX, {**CT, **added}),
        body=BODY,
        require_components=("@method", "@target-uri", "content-digest"),
    )
    assert results[0].parameters["keyid"] == KEY_ID
    assert results[0].label == "sig1"


def test_sign_rfc9421_get_verifies_with_http_message_signatures(keypair):
    priv, pub = keypair
    url = "https://remote.example/users/bob?x=1"
    added = sign_rfc9421("GET", url, {}, None, KEY_ID, priv)
    assert added["Signature-Input"].startswith('sig1=("@method" "@target-uri");')
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=Resolver(priv, pub)
    )
    verifier.verify(Msg("GET", url, added), require_components=("@method", "@target-uri"))
    with pytest.raises(InvalidSignature):
        verifier.verify(Msg("GET", url + "&y=2", added))


def _hms_sign(priv, pub, method, url, body, components, **kw) -> dict[str, str]:
    msg = Msg(method, url, {"Host": "remote.example", **(CT if body is not None else {})})
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=Resolver(priv, pub)
    )
    signer.sign(msg, key_id=KEY_ID, label="sig1", covered_component_ids=components, body=body, **kw)
    return msg.headers


def test_http_message_signatures_post_verifies_with_ours(keypair):
    priv, pub = keypair
    headers = _hms_sign(priv, pub, "POST", INBOX, BODY, ("@method", "@target-uri", "content-digest"))
    sr = parse_signed_request("POST", "/users/bob/inbox", ci(headers), BODY)
    assert sr.scheme == "rfc9421" and sr.key_id == KEY_ID
    assert sr.covered == ("@method", "@target-uri", "content-digest")
    verify_signed_request(sr, pub)


def test_http_message_signatures_get_and_path_forms_verify_with_ours(keypair):
    priv, pub = keypair
    url = "https://remote.example/users/bob?page=2"
    headers = _hms_sign(priv, pub, "GET", url, None, ("@method", "@target-uri"))
    verify_signed_request(parse_signed_request("GET", "/users/bob?page=2", ci(headers), None), pub)
    headers = _hms_sign(priv, pub, "GET", url, None, ("@method", "@authority", "@path", "@query"))
    verify_signed_request(parse_signed_request("GET", "/users/bob?page=2", ci(headers), None), pub)
    # @path without @query leaves the query unsigned: refuse.
    headers = _hms_sign(priv, pub, "GET", url, None, ("@method", "@authority", "@path"))
    with pytest.raises(SignatureError, match="@target-uri"):
        parse_signed_request("GET", "/users/bob?page=2", ci(headers), None)


def test_ours_round_trip_rfc9421_and_scheme_matters(keypair):
    priv, pub = keypair
    added = sign_rfc9421("POST", "http://127.0.0.1:8080/inbox", dict(CT), BODY, KEY_ID, priv)
    h = ci({**CT, **added})
    verify_signed_request(parse_signed_request("POST", "/inbox", h, BODY, scheme="http"), pub)
    with pytest.raises(SignatureError):  # https://... is a different @target-uri
        verify_signed_request(parse_signed_request("POST", "/inbox", h, BODY), pub)


# --------------------------------------------------------------------------- negative cases


@pytest.mark.parametrize("sign", [sign_cavage, sign_rfc9421])
def test_tampered_body_rejected(keypair, sign):
    priv, _ = keypair
    added = sign("POST", INBOX, dict(CT), BODY, KEY_ID, priv)
    with pytest.raises(SignatureError, match="Digest does not match"):
        parse_signed_request("POST", "/users/bob/inbox", ci({**CT, **added}), BODY + b" ")


def test_tampered_body_with_recomputed_digest_fails_verification(keypair):
    priv, pub = keypair
    added = sign_cavage("POST", INBOX, dict(CT), BODY, KEY_ID, priv)
    evil = b'{"type":"Delete"}'
    added["Digest"] = "SHA-256=" + b64(hashlib.sha256(evil).digest())
    sr = parse_signed_request("POST", "/users/bob/inbox", ci({**CT, **added}), evil)
    with pytest.raises(SignatureError, match="does not match the key"):
        verify_signed_request(sr, pub)


@pytest.mark.parametrize("sign", [sign_cavage, sign_rfc9421])
def test_wrong_key_rejected(keypair, other_keypair, sign):
    added = sign("POST", INBOX, dict(CT), BODY, KEY_ID, keypair[0])
    sr = parse_signed_request("POST", "/users/bob/inbox", ci({**CT, **added}), BODY)
    with pytest.raises(SignatureError):
        verify_signed_request(sr, other_keypair[1])
    with pytest.raises(SignatureError, match="unusable public key"):
        verify_signed_request(sr, "not a pem")


def test_tampered_path_rejected(keypair):
    priv, pub = keypair
    added = sign_cavage("POST", INBOX, dict(CT), BODY, KEY_ID, priv)
    sr = parse_signed_request("POST", "/users/eve/inbox", ci({**CT, **added}), BODY)
    with pytest.raises(SignatureError):
        verify_signed_request(sr, pub)


# Window: created up to 60 min in the future, or up to 65 min in the past (5 min validity
# plus 1 h clock-skew margin), exactly like Mastodon's signed_request.rb.
@pytest.mark.parametrize("sign", [sign_cavage, sign_rfc9421])
@pytest.mark.parametrize(
    ("offset", "ok"),
    [(0, True), (-64 * 60 - 59, True), (-65 * 60 - 2, False), (59 * 60 + 59, True), (60 * 60 + 2, False)],
)
def test_time_window_edges(keypair, sign, offset, ok):
    priv, pub = keypair
    now = time.time()
    added = sign("POST", INBOX, dict(CT), BODY, KEY_ID, priv, now=now + offset)
    h = ci({**CT, **added})
    if ok:
        verify_signed_request(parse_signed_request("POST", "/users/bob/inbox", h, BODY, now=now), pub)
    else:
        with pytest.raises(SignatureError, match="future|expired"):
            parse_signed_request("POST", "/users/bob/inbox", h, BODY, now=now)


def test_cavage_created_and_expires_are_honoured(keypair):
    priv, pub = keypair
    now = int(time.time())
    lines = [
        ("(request-target)", "get /actor"),
        ("host", "remote.example"),
        ("(created)", str(now - 30)),
        ("(expires)", str(now - 3700)),
    ]
    signed = cavage_by_hand(
        priv,
        lines,
        headers={"Host": "remote.example"},
        algorithm="hs2019",
        extra=f",created={now - 30},expires={now - 3700}",
    )
    with pytest.raises(SignatureError, match="expired"):  # expired 1 h 1 min ago
        parse_signed_request("GET", "/actor", ci(signed), None, now=now)
    lines[3] = ("(expires)", str(now + 600))
    signed = cavage_by_hand(
        priv,
        lines,
        headers={"Host": "remote.example"},
        algorithm="hs2019",
        extra=f",created={now - 30},expires={now + 600}",
    )
    sr = parse_signed_request("GET", "/actor", ci(signed), None, now=now)
    assert sr.created == now - 30
    verify_signed_request(sr, pub)


def test_rfc9421_expires_is_honoured(keypair):
    priv, pub = keypair
    now = datetime.datetime.now(datetime.UTC)
    headers = _hms_sign(
        priv,
        pub,
        "GET",
        "https://remote.example/actor",
        None,
        ("@method", "@target-uri"),
        created=now - datetime.timedelta(minutes=20),
        expires=now - datetime.timedelta(minutes=61),
    )
    with pytest.raises(SignatureError, match="expired"):
        parse_signed_request("GET", "/actor", ci(headers), None)


def test_bad_date_header_rejected(keypair):
    priv, _ = keypair
    added = sign_cavage("GET", "https://remote.example/actor", {"Date": "yesterday-ish"}, None, KEY_ID, priv)
    with pytest.raises(SignatureError, match="invalid Date"):
        parse_signed_request("GET", "/actor", ci(added), None)


def test_missing_pieces_rejected(keypair):
    priv, _ = keypair
    added = sign_cavage("GET", "https://remote.example/actor", {}, None, KEY_ID, priv)
    with pytest.raises(SignatureError, match="not signed"):
        parse_signed_request("GET", "/actor", ci({"Host": "remote.example"}), None)
    no_date = {k: v for k, v in added.items() if k != "Date"}
    with pytest.raises(SignatureError, match="'date' is missing"):
        parse_signed_request("GET", "/actor", ci(no_date), None)
    no_key = {**added, "Signature": added["Signature"].replace(f'keyId="{KEY_ID}",', "")}
    with pytest.raises(SignatureError, match="keyId"):
        parse_signed_request("GET", "/actor", ci(no_key), None)
    no_sig = {**added, "Signature": added["Signature"].split(",signature=")[0]}
    with pytest.raises(SignatureError, match="no signature"):
        parse_signed_request("GET", "/actor", ci(no_sig), None)
    bad_b64 = {**added, "Signature": added["Signature"].split(",signature=")[0] + ',signature="%%%"'}
    with pytest.raises(SignatureError, match="base64"):
        parse_signed_request("GET", "/actor", ci(bad_b64), None)
    with pytest.raises(SignatureError, match="malformed"):
        parse_signed_request("GET", "/actor", ci({**added, "Signature": 'keyId="x" garbage'}), None)


def test_get_without_host_rejected(keypair):
    priv, _ = keypair
    date = formatdate(usegmt=True)
    signed = cavage_by_hand(
        priv, [("(request-target)", "get /actor"), ("date", date)], headers={"Date": date}
    )
    with pytest.raises(SignatureError, match="GET must cover host"):
        parse_signed_request("GET", "/actor", ci(signed), None)


def test_post_without_digest_rejected(keypair):
    priv, _ = keypair
    date = formatdate(usegmt=True)
    lines = [("(request-target)", "post /inbox"), ("host", "remote.example"), ("date", date)]
    signed = cavage_by_hand(priv, lines, headers={"Date": date, "Host": "remote.example"})
    with pytest.raises(SignatureError, match="POST must cover digest"):
        parse_signed_request("POST", "/inbox", ci(signed), BODY)


def test_must_cover_date_and_target(keypair):
    priv, _ = keypair
    date = formatdate(usegmt=True)
    signed = cavage_by_hand(
        priv,
        [("(request-target)", "get /actor"), ("host", "remote.example")],
        headers={"Host": "remote.example"},
    )
    with pytest.raises(SignatureError, match="date or \\(created\\)"):
        parse_signed_request("GET", "/actor", ci(signed), None)
    signed = cavage_by_hand(
        priv, [("host", "remote.example"), ("date", date)], headers={"Host": "remote.example", "Date": date}
    )
    with pytest.raises(SignatureError, match="request-target"):
        parse_signed_request("GET", "/actor", ci(signed), None)


def test_digest_must_be_sha256(keypair):
    priv, _ = keypair
    date = formatdate(usegmt=True)
    digest = "SHA-512=" + b64(hashlib.sha512(BODY).digest())
    lines = [
        ("(request-target)", "post /inbox"),
        ("host", "remote.example"),
        ("date", date),
        ("digest", digest),
    ]
    signed = cavage_by_hand(priv, lines, headers={"Date": date, "Host": "remote.example", "Digest": digest})
    with pytest.raises(SignatureError, match="SHA-256"):
        parse_signed_request("POST", "/inbox", ci(signed), BODY)


@pytest.mark.parametrize("algorithm", ["hs2019", "HS2019", None])
def test_hs2019_and_missing_algorithm_accepted(keypair, algorithm):
    priv, pub = keypair
    date = formatdate(usegmt=True)
    lines = [("(request-target)", "get /actor"), ("host", "remote.example"), ("date", date)]
    signed = cavage_by_hand(
        priv, lines, headers={"Date": date, "Host": "remote.example"}, algorithm=algorithm
    )
    sr = parse_signed_request("GET", "/actor", ci(signed), None)
    assert sr.algorithm == "hs2019"
    verify_signed_request(sr, pub)


def test_hs2019_default_headers_are_created_only(keypair):
    priv, _ = keypair
    now = int(time.time())
    signed = cavage_by_hand(
        priv, [("(created)", str(now))], headers={}, algorithm=None, names="", extra=f",created={now}"
    )
    signed["Signature"] = signed["Signature"].replace(',headers=""', "")
    # Default coverage for hs2019 is "(created)": no target, so it's refused.
    with pytest.raises(SignatureError, match="request-target"):
        parse_signed_request("GET", "/actor", ci(signed), None)


def test_hs2019_with_ed25519_key(keypair):
    key = ed25519.Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    date = formatdate(usegmt=True)
    lines = [("(request-target)", "get /actor"), ("host", "remote.example"), ("date", date)]
    sig = key.sign("\n".join(f"{n}: {v}" for n, v in lines).encode())
    header = (
        f'keyId="{KEY_ID}",algorithm="hs2019",headers="(request-target) host date",signature="{b64(sig)}"'
    )
    sr = parse_signed_request(
        "GET", "/actor", ci({"Host": "remote.example", "Date": date, "Signature": header}), None
    )
    verify_signed_request(sr, pub.decode())
    rsa_like = SignedRequest(
        **{**{f: getattr(sr, f) for f in sr.__struct_fields__}, "algorithm": "rsa-sha256"}
    )
    with pytest.raises(SignatureError, match="key type"):
        verify_signed_request(rsa_like, pub.decode())


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "rsa-sha512", "ecdsa-sha256"])
def test_other_algorithms_rejected(keypair, algorithm):
    priv, _ = keypair
    date = formatdate(usegmt=True)
    lines = [("(request-target)", "get /actor"), ("host", "remote.example"), ("date", date)]
    signed = cavage_by_hand(
        priv, lines, headers={"Date": date, "Host": "remote.example"}, algorithm=algorithm
    )
    with pytest.raises(SignatureError, match="unsupported signature algorithm"):
        parse_signed_request("GET", "/actor", ci(signed), None)


def test_query_string_legacy_fallback(keypair):
    priv, pub = keypair
    date = formatdate(usegmt=True)
    h = {"Date": date, "Host": "remote.example"}
    # Modern peers sign the query string...
    modern = cavage_by_hand(
        priv,
        [("(request-target)", "get /outbox?page=2"), ("host", "remote.example"), ("date", date)],
        headers=h,
    )
    sr = parse_signed_request("GET", "/outbox?page=2", ci(modern), None)
    assert len(sr.candidates) == 2
    verify_signed_request(sr, pub)
    # ...legacy ones sign the path alone: accepted through the second candidate.
    legacy = cavage_by_hand(
        priv, [("(request-target)", "get /outbox"), ("host", "remote.example"), ("date", date)], headers=h
    )
    verify_signed_request(parse_signed_request("GET", "/outbox?page=2", ci(legacy), None), pub)
    # A different query is still a mismatch.
    other = cavage_by_hand(
        priv,
        [("(request-target)", "get /outbox?page=3"), ("host", "remote.example"), ("date", date)],
        headers=h,
    )
    with pytest.raises(SignatureError):
        verify_signed_request(parse_signed_request("GET", "/outbox?page=2", ci(other), None), pub)


def test_rfc9421_structural_rules(keypair):
    priv, pub = keypair
    added = sign_rfc9421("POST", INBOX, dict(CT), BODY, KEY_ID, priv)
    base = {**CT, **added}

    def parse(**changes):
        return parse_signed_request("POST", "/users/bob/inbox", ci({**base, **changes}), BODY)

    parse()
    with pytest.raises(SignatureError, match="exactly one"):
        parse(
            **{
                "Signature-Input": added["Signature-Input"]
                + ", "
                + added["Signature-Input"].replace("sig1", "sig2"),
                "Signature": added["Signature"] + ", " + added["Signature"].replace("sig1", "sig2"),
            }
        )
    with pytest.raises(SignatureError, match="created"):
        parse(**{"Signature-Input": added["Signature-Input"].replace(";created=", ";nope=")})
    with pytest.raises(SignatureError, match="keyid"):
        parse(**{"Signature-Input": added["Signature-Input"].replace(";keyid=", ";nope=")})
    with pytest.raises(SignatureError, match="algorithm"):
        parse(**{"Signature-Input": added["Signature-Input"].replace("rsa-v1_5-sha256", "hmac-sha256")})
    with pytest.raises(SignatureError, match="labels differ"):
        parse(Signature=added["Signature"].replace("sig1=", "other="))
    with pytest.raises(SignatureError, match="without Signature"):
        parse_signed_request("POST", "/", ci({"Signature-Input": added["Signature-Input"]}), BODY)
    with pytest.raises(SignatureError, match="malformed"):
        parse(**{"Signature-Input": 'sig1=("@method"'})
    with pytest.raises(SignatureError, match="Content-Digest does not match"):
        parse(**{"Content-Digest": "sha-256=:" + b64(hashlib.sha256(b"x").digest()) + ":"})

    now = datetime.datetime.now(datetime.UTC)
    headers = _hms_sign(priv, pub, "POST", INBOX, None, ("@method", "@target-uri"), created=now)
    with pytest.raises(SignatureError, match="content-digest"):
        parse_signed_request("POST", "/users/bob/inbox", ci(headers), b"")
    headers = _hms_sign(priv, pub, "GET", INBOX, None, ("@target-uri",), created=now)
    with pytest.raises(SignatureError, match="@method"):
        parse_signed_request("GET", "/users/bob/inbox", ci(headers), None)
    headers = _hms_sign(priv, pub, "GET", INBOX, None, ("@method", "@authority"), created=now)
    with pytest.raises(SignatureError, match="@target-uri"):
        parse_signed_request("GET", "/users/bob/inbox", ci(headers), None)


def test_rfc9421_sha512_content_digest_accepted(keypair):
    priv, pub = keypair
    digest = "sha-512=:" + b64(hashlib.sha512(BODY).digest()) + ":"
    msg = Msg("POST", INBOX, {"Host": "remote.example", **CT, "Content-Digest": digest})
    HTTPMessageSigner(signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=Resolver(priv, pub)).sign(
        msg,
        key_id=KEY_ID,
        label="sig1",
        covered_component_ids=("@method", "@target-uri", "content-digest"),
        use_existing_digest=True,
    )
    verify_signed_request(parse_signed_request("POST", "/users/bob/inbox", ci(msg.headers), BODY), pub)


def test_generate_keypair_is_distinct():
    a, b = generate_rsa_keypair(), generate_rsa_keypair()
    assert a[0] != b[0] and a[1] != b[1]


def test_rfc9421_non_canonical_spacing_goes_through_general_parser(keypair):
    """Extra whitespace is legal structured-field syntax; the signature base uses the
    canonical serialisation, so it still verifies."""
    priv, pub = keypair
    added = sign_rfc9421("POST", INBOX, dict(CT), BODY, KEY_ID, priv)
    loose = {
        **CT,
        **added,
        "Signature-Input": added["Signature-Input"].replace('" "', '"   "'),
        "Signature": "  " + added["Signature"],
    }
    verify_signed_request(parse_signed_request("POST", "/users/bob/inbox", ci(loose), BODY), pub)
    # Two Signature-Input field lines are two signatures: refused.
    h = CIMultiDict({**CT, **added})
    h.add("Signature-Input", added["Signature-Input"].replace("sig1", "sig2"))
    with pytest.raises(SignatureError, match="exactly one"):
        parse_signed_request("POST", "/users/bob/inbox", CIMultiDictProxy(h), BODY)
