"""Before the tests: say clearly when PostgreSQL or Redis is not reachable, and where."""

import os
import socket
import sys
import time
from urllib.parse import urlsplit

TARGETS = {
    "PostgreSQL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shopbot"),
    "Redis": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
}


def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    deadline = time.monotonic() + 30
    missing = dict(TARGETS)
    while missing and time.monotonic() < deadline:
        missing = {name: url for name, url in missing.items() if not reachable(url)}
        if missing:
            time.sleep(1)
    for name, url in missing.items():
        print(
            f"{name} is not reachable at {urlsplit(url).netloc}; start it (see README, 'Tests').",
            file=sys.stderr,
        )
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
