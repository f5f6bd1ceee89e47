"""The HTTP transport every calendar request goes through (a secret iCalendar address,
and the CalDAV client's reads and writes): a ``requests`` session whose adapter

- checks each request's address (portal.calendars.addresses) as it is sent, so every
  hop of a redirect is checked, and connects to the very address that passed the
  check: the host is resolved once, and the connection never resolves it again (a
  name that answered a public address to the check and a private one to the
  connection would otherwise reach the portal's own network: DNS rebinding). The
  request keeps its host name in ``Host`` and, over https, in SNI and the certificate
  check;
- cuts every answer off at CALENDAR_MAX_BYTES (declared by Content-Length, or counted
  as it arrives: a chunked answer declares nothing), and at the read's deadline.
"""

from __future__ import annotations

import contextlib
import time
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from portal.calendars.addresses import check_address
from portal.calendars.errors import CalendarError


class CalendarAdapter(HTTPAdapter):
    """Pinned to the checked address, bounded in size and time (see the module)."""

    def __init__(self, *, max_bytes: int, allow_private: bool, deadline: float | None):
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.deadline = deadline
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert)
        [address, *_] = check_address(request.url, allow_private=self.allow_private)
        host = host_params["host"]
        host_params["host"] = str(address)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = host  # SNI
            pool_kwargs["assert_hostname"] = host  # the certificate names the host
        return host_params, pool_kwargs

    def send(self, request, *args, **kwargs):
        request = request.copy()  # a redirect's next hop copies the request: no Host
        request.headers["Host"] = urlsplit(request.url).netloc.rpartition("@")[2]
        return super().send(request, *args, **kwargs)

    def build_response(self, req, resp):
        response = super().build_response(req, resp)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            _close(resp)
            raise CalendarError("too_large")
        resp.stream = _bounded(resp, resp.stream, self.max_bytes, self.deadline)
        return response


def _bounded(raw, stream, max_bytes: int, deadline: float | None):
    """``raw.stream`` that raises once more than ``max_bytes`` (decoded) have arrived or
    the deadline has passed: requests reads every body through it."""

    def bounded_stream(*args, **kwargs):
        size = 0
        for chunk in stream(*args, **kwargs):
            size += len(chunk)
            if size > max_bytes:
                _close(raw)
                raise CalendarError("too_large")
            if deadline is not None and time.monotonic() > deadline:
                _close(raw)
                raise CalendarError("timeout")
            yield chunk

    return bounded_stream


def _close(raw) -> None:
    with contextlib.suppress(Exception):
        raw.close()


def session(*, max_bytes: int, allow_private: bool, deadline: float | None,
            max_redirects: int) -> requests.Session:
    """A session for one calendar read or write."""
    bounded = requests.Session()
    bounded.trust_env = False  # no proxies or .netrc from the environment
    bounded.max_redirects = max_redirects
    adapter = CalendarAdapter(max_bytes=max_bytes, allow_private=allow_private,
                              deadline=deadline)
    bounded.mount("https://", adapter)
    bounded.mount("http://", adapter)
    return bounded
