"""Which network a visitor comes from, for counting what one visitor may do.

An IPv4 address is usually one household or one carrier's shared address, so
it counts as itself. An IPv6 client is handed a whole /64 by its provider and
can pick a fresh address in it for every request: counting per address would
let one person look like millions, so IPv6 counts per /64. Anything that is not
an address (a test client, a misconfigured proxy) counts as itself.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

IPV6_PREFIX = 64


def client_network(address: str | None) -> str:
    """``address`` as the network it is counted by: "192.0.2.7" or "2001:db8:1:2::/64"."""
    text = (address or "").strip()
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return text or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:  # ::ffff:192.0.2.7 is an IPv4 client
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)


def network_key(address: str | None, secret: str) -> str | None:
    """What is stored to count a network's holds: an HMAC of it, so the database keeps
    no address (a copy of it can't be turned back into where visitors were).

    None for this machine itself (loopback) or no address at all: that is where every
    visitor seems to come from when a proxy on this machine is not trusted
    (``PROXY_FIX_X_FOR`` = 0, which ``flask check`` warns about), and one count for the
    whole internet would turn everyone away."""
    try:
        if not address or ipaddress.ip_address(address.strip()).is_loopback:
            return None
    except ValueError:
        pass
    network = client_network(address)
    return hmac.new(secret.encode(), f"network:{network}".encode(),
                    hashlib.sha256).hexdigest()[:32]
