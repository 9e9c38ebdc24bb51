"""Generated names and ids, Docker-style (a random adjective_surname for unnamed containers)."""

from __future__ import annotations

import secrets

_LEFT = (
    "able", "brave", "calm", "eager", "fair", "gentle", "happy", "jolly", "keen", "lucid",
    "merry", "nimble", "proud", "quiet", "sharp", "swift", "tidy", "vivid", "wise", "zesty",
)
_RIGHT = (
    "babbage", "curie", "dijkstra", "euler", "feynman", "gauss", "hopper", "kepler",
    "lamport", "lovelace", "noether", "pascal", "ritchie", "shannon", "thompson", "turing",
    "wirth", "hamilton", "knuth", "liskov",
)


def new_id() -> str:
    return secrets.token_hex(32)


def random_name() -> str:
    return f"{secrets.choice(_LEFT)}_{secrets.choice(_RIGHT)}_{secrets.token_hex(2)}"
