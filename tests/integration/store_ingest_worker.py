"""One process of the concurrent-ingest test: ingest a blob from a file into a store.

``store_ingest_worker.py ROOT SOURCE DIGEST SIZE [pause]`` prints ``waiting`` when it has to
wait for another ingest of the same blob, ``locked exists=… resumed=…`` once it holds the
ingest, with ``pause`` ``half`` after writing half the blob (then waits for a line on stdin),
and finally ``result fetched=N`` with the number of bytes it read from SOURCE.
"""

from __future__ import annotations

import sys

from lorry.digest import Digest
from lorry.store import Store

CHUNK = 1 << 20


def main() -> None:
    """Script entry point."""
    root, source, digest, size = (
        sys.argv[1],
        sys.argv[2],
        Digest.parse(sys.argv[3]),
        int(sys.argv[4]),
    )
    pause = len(sys.argv) > 5 and sys.argv[5] == "pause"
    said: list[bool] = []

    def on_wait() -> None:
        if not said:
            said.append(True)
            print("waiting", flush=True)

    fetched = 0
    with Store.open(root) as store, store.content.writer(digest, size, on_wait=on_wait) as w:
        print(f"locked exists={w.exists} resumed={w.resumed}", flush=True)
        if not w.exists:
            with open(source, "rb") as f:
                f.seek(w.offset)
                while w.offset < size:
                    chunk = f.read(CHUNK)
                    fetched += len(chunk)
                    w.write(chunk)
                    if pause and w.offset >= size // 2:
                        pause = False
                        print("half", flush=True)
                        sys.stdin.readline()
        info = w.commit()
    print(f"result fetched={fetched} size={info.size}", flush=True)


if __name__ == "__main__":
    main()
