"""LogQL's ``ip("...")`` matcher for label filters (``| addr = ip("10.0.0.0/8")``) and line filters
(``|= ip("192.168.4.5-192.168.4.20")``): a single address, a CIDR prefix or an inclusive range,
IPv4 or IPv6. A label matches when its value is an address inside; a line matches when any
address-looking token in it is inside."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CANDIDATE = re.compile(r"[0-9A-Fa-f:.]*[0-9A-Fa-f][0-9A-Fa-f:.]*")
_IPV4 = re.compile(r"(?<![0-9.])\d{1,3}(?:\.\d{1,3}){3}(?![0-9])")


@dataclass(frozen=True)
class IpMatcher:
    lo: int
    hi: int
    version: int

    def contains(self, value: str) -> bool:
        try:
            a = ipaddress.ip_address(value.strip())
        except ValueError:
            return False
        return a.version == self.version and self.lo <= int(a) <= self.hi

    def search(self, line: str) -> bool:
        if self.version == 4:
            return any(self.contains(m.group()) for m in _IPV4.finditer(line))
        return any(":" in m.group() and self.contains(m.group()) for m in _CANDIDATE.finditer(line))


def compile_ip(spec: str) -> IpMatcher:
    """Raises ValueError for anything but an address, a CIDR prefix or ``a-b``."""
    s = spec.strip()
    if "-" in s:
        a_text, b_text = s.split("-", 1)
        a, b = ipaddress.ip_address(a_text.strip()), ipaddress.ip_address(b_text.strip())
        if a.version != b.version or int(a) > int(b):
            raise ValueError(f"invalid IP range {spec!r}")
        return IpMatcher(int(a), int(b), a.version)
    if "/" in s:
        net = ipaddress.ip_network(s, strict=False)
        return IpMatcher(int(net.network_address), int(net.broadcast_address), net.version)
    a = ipaddress.ip_address(s)
    return IpMatcher(int(a), int(a), a.version)
