"""A fake SendGrid on a local port: answers `POST /v3/mail/send` with queued statuses (then
202, with an `X-Message-Id`), records every request, and counts the messages it accepted by
the `message_key` custom argument casedesk sends with each one."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeSendGrid:
    url: str = ""
    statuses: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_next: Callable[[], None] | None = None
    dropped: threading.Event = field(default_factory=threading.Event)

    def respond_with(self, *statuses: int) -> None:
        self.statuses.extend(statuses)

    def drop_next(self, then: Callable[[], None]) -> None:
        """The next request is read, `then` is called (a fault test kills the worker that
        sent it), and the connection closes with no answer: nothing accepted."""
        self.dropped.clear()
        self.on_next = then

    def accepted_keys(self) -> Counter[str]:
        """How many times each message key was accepted (a 202)."""
        with self.lock:
            return Counter(
                r["json"].get("custom_args", {}).get("message_key", "")
                for r in self.requests
                if r["status"] == 202
            )


def _handler(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with fake.lock:
                then, fake.on_next = fake.on_next, None
                if then is not None:
                    then()
                    fake.requests.append({"path": self.path, "json": json.loads(body), "status": 0})
                    fake.dropped.set()
                    self.close_connection = True
                    return
                status = fake.statuses.pop(0) if fake.statuses else 202
                fake.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(body),
                        "status": status,
                    }
                )
                number = len(fake.requests)
            answer = (
                b"" if status == 202 else json.dumps({"errors": [{"message": "nope"}]}).encode()
            )
            self.send_response(status)
            if status == 202:
                self.send_header("X-Message-Id", f"sg-{number}")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def running_fake_sendgrid() -> Iterator[FakeSendGrid]:
    fake = FakeSendGrid()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
