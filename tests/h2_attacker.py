"""HTTP/2 clients that withhold what a gRPC client never would, written frame by frame.

grpc's own clients always finish what they start, and h2load can only send a whole body
(with END_STREAM). These open gRPC calls and then stop: before the request message,
half-way through it, before the end of their HEADERS, or before the connection preface.
The `h2` library (python-hyper) encodes the frames and HPACK; nothing here waits for the
server to be nice.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import HeadersFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def grpc_message(payload: bytes) -> bytes:
    """A gRPC length-prefixed message: not compressed, 4-byte big-endian length."""
    return struct.pack(">?I", False, len(payload)) + payload


def request_headers(port: int, path: str, token: str | None) -> list[tuple[bytes, bytes]]:
    headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
               (b":authority", f"127.0.0.1:{port}".encode()), (b"content-type", b"application/grpc"),
               (b"te", b"trailers")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return headers


class Withholder:
    """`connections` HTTP/2 connections, each opening `streams` calls of `path` that send
    `body` (b"": nothing after the HEADERS) and never end their request stream unless
    `end_stream`. Tracks how each call ended: its grpc-status, or "reset"."""

    def __init__(self, port: int, path: str, *, connections: int, streams: int, token: str | None = None,
                 body: bytes = b"", end_stream: bool = False) -> None:
        self.port = port
        self.statuses: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)
        self._expected = connections * streams
        self._seen: set[tuple[int, int]] = set()  # (reader thread, stream id)
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        headers = request_headers(port, path, token)
        for _ in range(connections):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
            conn.initiate_connection()
            for _ in range(streams):
                stream_id = conn.get_next_available_stream_id()
                conn.send_headers(stream_id, headers, end_stream=end_stream and not body)
                if body:
                    conn.send_data(stream_id, body, end_stream=end_stream)
            sock.sendall(conn.data_to_send())
            self._sockets.append(sock)
            thread = threading.Thread(target=self._read, args=(sock, conn), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, sock: socket.socket, conn: h2.connection.H2Connection) -> None:
        sock.settimeout(None)
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                return
            for event in events:
                if isinstance(event, h2.events.TrailersReceived | h2.events.ResponseReceived):
                    status = dict(event.headers).get(b"grpc-status")
                    if status is not None:  # trailers, or a trailers-only answer
                        self._end(event.stream_id, status.decode())
                elif isinstance(event, h2.events.StreamReset):
                    self._end(event.stream_id, "reset")
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            try:
                sock.sendall(conn.data_to_send())
            except OSError:
                return

    def _end(self, stream: int, status: str) -> None:
        """The first word on a stream: the server's status, else its reset (a status
        is followed by RST_STREAM when the client has not ended its side)."""
        with self._ended:
            if (id(threading.current_thread()), stream) in self._seen:
                return
            self._seen.add((id(threading.current_thread()), stream))
            self.statuses[status] += 1
            self._ended.notify_all()

    @property
    def ended(self) -> int:
        with self._lock:
            return sum(self.statuses.values())

    def wait_all_ended(self, timeout: float) -> bool:
        with self._ended:
            return self._ended.wait_for(lambda: sum(self.statuses.values()) >= self._expected, timeout)

    def close(self) -> None:
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Withholder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_silent(port: int, count: int) -> list[socket.socket]:
    """TCP connections that never send the HTTP/2 preface."""
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def open_unfinished_headers(port: int, path: str, count: int) -> list[socket.socket]:
    """Connections that send the preface, their SETTINGS and half a HEADERS block: a
    HEADERS frame without END_HEADERS and no CONTINUATION ever after. HTTP/2 forbids any
    other frame on the connection meanwhile (RFC 9113 section 6.10), so it is stuck."""
    encoder = hpack.Encoder()
    block = encoder.encode(request_headers(port, path, None))
    frame = HeadersFrame(1, data=block[: len(block) // 2])  # no END_HEADERS flag
    settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(PREFACE + settings + frame.serialize())
        sockets.append(sock)
    return sockets


def closed_by_peer(sockets: Iterable[socket.socket], timeout: float) -> int:
    """How many of the sockets the server closed within timeout, all together (each is
    read to EOF)."""
    deadline = time.monotonic() + timeout
    closed = 0
    for sock in sockets:
        try:
            while True:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                if not sock.recv(65536):
                    closed += 1
                    break
        except (TimeoutError, OSError):
            pass
    return closed


# -- the attacker in a process of its own ------------------------------------------------
# In the test's own process its frame parsing would take the GIL from the server under
# test, and a slower server would be the test's doing, not the attack's.

def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m tests.h2_attacker")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--connections", type=int, default=11)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--token")
    parser.add_argument("--body-hex", default="")
    parser.add_argument("--end-stream", action="store_true")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--forever", action="store_true",
                        help="open them again each time they have all ended, until killed (benchmarks)")
    args = parser.parse_args(argv)
    first = True
    while True:
        with Withholder(args.port, args.path, connections=args.connections, streams=args.streams,
                        token=args.token, body=bytes.fromhex(args.body_hex), end_stream=args.end_stream) as attack:
            if first:
                print("open", flush=True)
                first = False
            attack.wait_all_ended(args.timeout)
            if not args.forever:
                print(json.dumps(dict(attack.statuses)), flush=True)
                return 0


class AttackProcess:
    """`python -m tests.h2_attacker ...` started, waited for until its streams are open."""

    def __init__(self, port: int, path: str, *, connections: int, streams: int, token: str | None = None,
                 body: bytes = b"", end_stream: bool = False, timeout: float = 30.0, forever: bool = False) -> None:
        import subprocess
        import sys
        from pathlib import Path

        args = [sys.executable, "-m", "tests.h2_attacker", "--port", str(port), "--path", path,
                "--connections", str(connections), "--streams", str(streams), "--body-hex", body.hex(),
                "--timeout", str(timeout)]
        if token is not None:
            args += ["--token", token]
        if end_stream:
            args.append("--end-stream")
        if forever:
            args.append("--forever")
        self.process = subprocess.Popen(args, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "open"

    def statuses(self, timeout: float = 60.0) -> Counter[str]:
        """How the calls ended, once every one has (or the attacker's timeout passed)."""
        import json

        out, _ = self.process.communicate(timeout=timeout)
        return Counter(json.loads(out.strip().splitlines()[-1]))

    def __enter__(self) -> AttackProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


if __name__ == "__main__":
    raise SystemExit(main())
