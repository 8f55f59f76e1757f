"""The host's side of the UART test protocol (templates/c/uart/rnnq_frame.h): frames, CRC-32,
a raw serial port (stdlib termios, no dependency) and requests that survive a lost or broken
frame.

A frame is 0xA5 0x5A | type u8 | seq u8 | length u16 | payload | CRC-32 u32, little-endian,
the CRC (IEEE 802.3, reflected; zlib's) over type to the payload's end. Every request gets a
new sequence number and its reply carries it back. The host repeats a request, unchanged,
when the reply does not come in time, comes broken (bad CRC: the decoder drops the sync byte
and hunts for the next frame) or the board answers NAK (it got a broken frame); the board
answers a repeat from the reply it kept, without running the request again.
"""

from __future__ import annotations

import os
import select
import struct
import termios
import time
from dataclasses import dataclass

from rnnq.ir import RnnqError

SYNC = b"\xa5\x5a"
OVERHEAD = 10  # sync, type, seq, length, CRC
NAK = 0x7F
ERROR = 0xFF
DEFAULT_BAUD = 115200
#: the longest payload the host accepts (the firmware says its own in HELLO)
MAX_PAYLOAD = 4096


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 if c & 1 else 0)
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32(data: bytes, crc: int = 0) -> int:
    """CRC-32 (IEEE 802.3, reflected): crc32(b"123456789") == 0xCBF43926; continues from crc."""
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ _TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


def encode(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    """One frame's bytes."""
    body = struct.pack("<BBH", ftype, seq & 0xFF, len(payload)) + payload
    return SYNC + body + struct.pack("<I", crc32(body))


class Decoder:
    """Frames out of a byte stream that may hold noise, broken frames or half a frame: feed
    bytes as they come, get the intact frames. `dropped` counts frames skipped as broken."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.buf = bytearray()
        self.max_payload = max_payload
        self.dropped = 0

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        out = []
        while True:
            i = self.buf.find(SYNC)
            if i < 0:  # keep a trailing 0xA5: it may start the next sync pair
                del self.buf[: max(0, len(self.buf) - 1)]
                return out
            del self.buf[:i]
            if len(self.buf) < 6:
                return out
            ftype, seq, n = struct.unpack_from("<BBH", self.buf, 2)
            if n > self.max_payload:
                self.dropped += 1
                del self.buf[:1]
                continue
            if len(self.buf) < OVERHEAD + n:
                return out
            body = bytes(self.buf[2 : 6 + n])
            (crc,) = struct.unpack_from("<I", self.buf, 6 + n)
            if crc != crc32(body):
                self.dropped += 1
                del self.buf[:1]  # resync: the next sync pair may lie inside this one
                continue
            out.append(Frame(ftype, seq, body[4:]))
            del self.buf[: OVERHEAD + n]


def parse_spec(on: str) -> tuple[str, int]:
    """'serial:PORT[,BAUD]' -> (PORT, BAUD)."""
    rest = on.removeprefix("serial:")
    port, _, baud = rest.partition(",")
    if not port:
        raise RnnqError(f"--on {on}: name the port, e.g. serial:/dev/ttyACM0[,115200]")
    if not baud:
        return port, DEFAULT_BAUD
    if not baud.isdigit() or not hasattr(termios, f"B{int(baud)}"):
        raise RnnqError(f"--on {on}: {baud!r} is not a baud rate this system's serial "
                        "driver knows (e.g. 115200)")
    return port, int(baud)


class Port:
    """A serial port in raw mode (8N1, no flow control, no echo), non-blocking."""

    def __init__(self, path: str, baud: int) -> None:
        self.where = f"serial:{path}"
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise RnnqError(f"{self.where}: no such port (is the board plugged in?)") from None
        except PermissionError:
            raise RnnqError(f"{self.where}: permission denied (on Linux: add yourself to the "
                            "dialout group)") from None
        except OSError as e:
            raise RnnqError(f"{self.where}: cannot open it ({e.strerror})") from None
        if not os.isatty(self.fd):
            os.close(self.fd)
            raise RnnqError(f"{self.where}: not a serial port (a tty device)")
        attrs = termios.tcgetattr(self.fd)
        speed = getattr(termios, f"B{baud}")
        attrs[0] = 0  # iflag: no break, parity, CR/NL or flow-control processing
        attrs[1] = 0  # oflag: bytes out as they are
        attrs[2] = termios.CS8 | termios.CREAD | termios.CLOCAL
        attrs[3] = 0  # lflag: no echo, no line editing, no signals
        attrs[4] = attrs[5] = speed
        attrs[6][termios.VMIN] = 0
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        termios.tcflush(self.fd, termios.TCIOFLUSH)

    def write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self.fd], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return  # the reply's timeout says the rest
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                continue

    def read(self, deadline: float) -> bytes:
        """What arrives before the deadline (b"" if nothing)."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return b""
        try:
            return os.read(self.fd, 4096)
        except (BlockingIOError, OSError):  # EIO: the other end of a pty is gone for now
            time.sleep(0.01)
            return b""

    def close(self) -> None:
        os.close(self.fd)


class Link:
    """Requests and their replies over a port, repeated until they get through."""

    ATTEMPTS = 4

    def __init__(self, port: Port, baud: int) -> None:
        self.port = port
        self.baud = baud
        self.decoder = Decoder()
        self.seq = 0
        self.retransmits = 0
        #: the firmware's longest payload (its default until HELLO says)
        self.max_payload = 1024
        #: a hook for tests: each frame's bytes before they are sent (to corrupt one)
        self.tamper = None

    def request(self, ftype: int, payload: bytes, timeout_s: float, what: str,
                attempts: int | None = None, reply_max: int | None = None) -> bytes | None:
        """The reply's payload; None if no reply came in `attempts` tries of timeout_s each
        (plus the line's time for the request and a reply of up to reply_max bytes)."""
        self.seq = (self.seq + 1) & 0xFF
        frame = encode(ftype, self.seq, payload)
        longest = self.max_payload if reply_max is None else reply_max
        wire_s = 2 * 10 * (len(frame) + OVERHEAD + longest) / self.baud  # 10 bits a byte, x2
        tries = attempts or self.ATTEMPTS
        timeouts = naks = 0
        while True:
            deadline = time.monotonic() + timeout_s + wire_s
            data = self.tamper(frame) if self.tamper else frame
            self.port.write(data, deadline)
            reply = self._reply(ftype, deadline, what)
            if isinstance(reply, bytes):
                return reply
            if reply == "nak":
                naks += 1
                if naks > 4 * tries:  # a line this noisy will not carry the data
                    return None
            else:
                timeouts += 1
                if timeouts >= tries:
                    return None
                # The board may be waiting for the rest of a frame whose length byte was
                # corrupted: zeros (never a sync pair) complete it; its CRC fails, the board
                # answers NAK and hunts for the next frame, this request repeated.
                flush = bytes(self.max_payload + OVERHEAD)
                self.port.write(flush, time.monotonic() + 2 * 10 * len(flush) / self.baud + 0.1)
            self.retransmits += 1

    def _reply(self, ftype: int, deadline: float, what: str) -> bytes | str | None:
        """This request's reply; "nak" when the board got a broken frame, None on a timeout
        (repeat the request either way)."""
        while time.monotonic() < deadline:
            for f in self.decoder.feed(self.port.read(deadline)):
                if f.type == NAK:
                    return "nak"
                if f.seq != self.seq:
                    continue  # a late reply to an earlier, repeated request
                if f.type == ERROR:
                    raise RnnqError(f"{self.port.where}: the board refused {what}: "
                                    f"{f.payload.decode('ascii', 'replace')}")
                if f.type != ftype | 0x80:
                    raise RnnqError(f"{self.port.where}: the board answered {what} with frame "
                                    f"type {f.type:#04x}: not rnnq's UART firmware?")
                return f.payload
        return None
