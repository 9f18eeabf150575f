"""What `--web` was told: where to listen, which roles get a link, how many rooms.

Loopback unless asked otherwise, and more insistently than `--ssh`: plain HTTP carries the
tokens in the clear, so a non-loopback address needs `--web-public` as well.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from engine import SwarmdeckError

LOOPBACK = "127.0.0.1"
ROLES = ("operator", "viewer")


class WebConfigError(SwarmdeckError):
    """A `--web*` option is unusable."""


@dataclass(frozen=True)
class WebConfig:
    host: str
    port: int
    max_clients: int = 16
    roles: tuple[str, ...] = ROLES
    """Roles that get a link: `attach --viewer --web` hands out a viewer link only."""
    grace: float = 2.0
    """Seconds a room has to quit after its browser went away, before SIGKILL."""


def parse_web_listen(text: str, public: bool = False) -> tuple[str, int]:
    """`PORT`, `:PORT` or `HOST:PORT` (`[::1]:PORT`); no host means 127.0.0.1. A host
    that is not loopback is refused unless `public`."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or LOOPBACK
    if not port.isdigit() or int(port) > 65535:
        raise WebConfigError(f"--web {text!r}: expected HOST:PORT or PORT")
    if not public and not is_loopback(host):
        raise WebConfigError(
            f"--web {text!r}: {host} is not a loopback address, and plain HTTP sends the "
            "tokens in the clear; add --web-public to listen there anyway"
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it could resolve anywhere
        return False


def web_config(
    listen: str, public: bool, max_clients: int, roles: tuple[str, ...] = ROLES
) -> WebConfig:
    """Checked before the engine starts, like `--ssh`'s options."""
    host, port = parse_web_listen(listen, public)
    if max_clients < 1:
        raise WebConfigError(f"--web-max-clients {max_clients}: at least 1")
    return WebConfig(host, port, max_clients, roles)
