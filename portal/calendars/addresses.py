"""Which calendar addresses the portal fetches (SECURITY, "Reading other people's
calendars"): https only, and never an address on loopback, link-local or a private
network (the server would otherwise fetch its own internal services for whoever types
the address). CALENDAR_ALLOW_PRIVATE_URLS lifts the network rule, and then also
allows plain http to loopback (the tests' and ``make run``'s local servers).

Every hop of a redirect is checked the same way before it is followed, and the
connection goes to the address that passed (portal.calendars.transport).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from portal.calendars.errors import CalendarError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_address(url: str, *, allow_private: bool) -> list[IPAddress]:
    """The addresses ``url``'s host resolves to (in the resolver's order), once every
    one of them passed; else raise CalendarError ("bad_address", "refused_address",
    ...). The caller connects to one of them, never to the name (DNS rebinding)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise CalendarError("bad_address") from None
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        raise CalendarError("bad_address")
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise CalendarError("not_found_host") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0])
                                   for info in infos))
    if not addresses:
        raise CalendarError("not_found_host")
    if parts.scheme == "http" and not (allow_private and all(a.is_loopback for a in addresses)):
        raise CalendarError("not_https")
    if not allow_private and not all(_public(a) for a in addresses):
        raise CalendarError("refused_address")
    return addresses


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast
