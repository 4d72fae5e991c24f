"""Client addresses and address allow-lists: the one helper the rate limits (trusted proxies) and the
metrics endpoint (allowed scrapers) share."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: str | None) -> Address | None:
    """An address as peers and proxies write it ("v4", "v4:port", "v6", "[v6]:port", "v6%zone");
    an IPv4-mapped IPv6 address counts as the IPv4 one. None for anything else."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[v6]:port"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(values: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values]


def in_networks(address: Address | str | None, networks: Iterable[Network]) -> bool:
    """Is the address inside one of the networks? An unreadable address is in none."""
    parsed = parse_address(address) if isinstance(address, str) or address is None else address
    return parsed is not None and any(parsed in net for net in networks)
