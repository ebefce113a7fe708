"""``make bench``: runs every side-by-side benchmark with its default arguments.

Extra arguments (``make bench ARGS="--series 2000 --scrapes 20 --repeat 1"``) are passed to each.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import remote_write


def main(argv: list[str]) -> int:
    print("== remote-write ingest (bench/remote_write.py) ==")
    return remote_write.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
