"""Loopback ICE candidates for aiortc: the one patch this project makes to a library.

Why: aioice (aiortc's ICE agent) leaves 127.0.0.1 out of its host candidates, so a
browser on the same machine as a server bound to loopback never connects; and a server
bound to loopback should advertise nothing else, or its LAN address leaks into every
answer. aioice has no option for either, so its host-address lookup is wrapped, once per
process, and the wrapper reads one setting. It applies to every aiortc peer in the
process, which is why the setting lives here and nowhere else.
"""

from __future__ import annotations

_loopback_only = False


def use_loopback_candidates(only: bool) -> None:
    """Offer 127.0.0.1 as a host candidate; `only`: offer nothing else."""
    import aioice.ice

    global _loopback_only
    _loopback_only = only
    original = aioice.ice.get_host_addresses
    if getattr(original, "_streamnst", False):
        return

    def addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if _loopback_only:
            return ["127.0.0.1"] if use_ipv4 else []
        found = original(use_ipv4, use_ipv6)
        return found + ["127.0.0.1"] if use_ipv4 and "127.0.0.1" not in found else found

    addresses._streamnst = True
    aioice.ice.get_host_addresses = addresses
