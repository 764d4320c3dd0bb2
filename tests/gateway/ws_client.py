"""A WebSocket client for tests/api/gateway.rs: connects to URL (with
`Authorization: Bearer TOKEN` when a token is given), sends each MESSAGE
as text and prints every message received, one per line, then closes.
A refused handshake prints `refused STATUS`. Exits within 10 s."""

import sys

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


def main() -> None:
    url, token, *messages = sys.argv[1:]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with connect(url, additional_headers=headers, open_timeout=5, close_timeout=2) as ws:
            print(ws.recv(timeout=5), flush=True)
            for message in messages:
                ws.send(message)
                print(ws.recv(timeout=5), flush=True)
    except InvalidStatus as e:
        print(f"refused {e.response.status_code}", flush=True)


if __name__ == "__main__":
    main()
