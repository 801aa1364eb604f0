"""Microphone audio that a page sends in numbered pieces, put back together in order, with nothing lost.

A browser page captures its microphone itself and posts the samples every half second, each post numbered. Posts
can arrive out of order (several requests in flight) or twice (a retry); `CapturedAudio` keeps each piece once and
hands out the samples in order, only as far as no piece is missing. `CaptureRegistry` holds the captures of a
server by id, bounded in number, length and idle time.
"""

import re
import threading
import time

import numpy as np

CAPTURE_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
"""What a capture id looks like (the page makes a random one per recording)."""


class CaptureError(ValueError):
    """A post that cannot be accepted; the message says why."""


class CapturedAudio:
    """The pieces of one recording: `(samples,)` float32 mono at `sampling_rate` Hz, numbered from 0.

    Args:
        sampling_rate: the page's capture rate, in Hz (its AudioContext's).
        max_seconds: pieces past this length are refused (`CaptureError`).
    """

    def __init__(self, sampling_rate: int, max_seconds: float):
        if not 8_000 <= sampling_rate <= 192_000:
            raise CaptureError(f"A capture rate of {sampling_rate} Hz is not a microphone's.")
        self.sampling_rate = int(sampling_rate)
        self.max_samples = int(max_seconds * sampling_rate)
        self._pieces: dict[int, np.ndarray] = {}
        self._next_piece = 0  # the first piece not yet handed out
        self._samples = 0  # samples received, in order or not
        self._final_piece: int | None = None
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.last_activity = time.monotonic()

    def add(self, number: int, samples: np.ndarray, final: bool = False) -> None:
        """Keep piece `number` (a repeat of one already kept is ignored); `final`: no piece follows it."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not np.isfinite(samples).all():
            raise CaptureError("The capture holds NaN or infinite samples.")
        with self._lock:
            self.last_activity = time.monotonic()
            if number < self._next_piece or number in self._pieces:
                return
            if self._final_piece is not None and number > self._final_piece:
                raise CaptureError("A piece came after the capture's last one.")
            if self._samples + samples.size > self.max_samples:
                raise CaptureError("The recording is longer than the live limit.")
            self._pieces[number] = samples
            self._samples += samples.size
            if final:
                self._final_piece = number
            self._arrived.notify_all()

    def take(self) -> np.ndarray:
        """The samples that arrived in order since the last `take` (empty where the next piece is still missing)."""
        with self._lock:
            ready = []
            while self._next_piece in self._pieces:
                ready.append(self._pieces.pop(self._next_piece))
                self._next_piece += 1
            return np.concatenate(ready) if ready else np.zeros(0, np.float32)

    @property
    def complete(self) -> bool:
        """Whether the last piece has arrived and every piece before it has been taken."""
        with self._lock:
            return self._final_piece is not None and self._next_piece > self._final_piece

    def wait_until_complete(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the final piece and every piece before it; True if they all came."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                pieces = set(self._pieces) | set(range(self._next_piece))
                if self._final_piece is not None and set(range(self._final_piece + 1)) <= pieces:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._arrived.wait(remaining)


class CaptureRegistry:
    """The captures of a server by id, at most `max_captures` at once; one idle for `idle_seconds` is dropped."""

    def __init__(self, max_captures: int = 32, idle_seconds: float = 120.0):
        self.max_captures = max_captures
        self.idle_seconds = idle_seconds
        self._captures: dict[str, CapturedAudio] = {}
        self._lock = threading.Lock()

    def add(
        self, capture_id: str, number: int, samples: np.ndarray, sampling_rate: int, max_seconds: float, final: bool
    ) -> None:
        """Keep piece `number` of capture `capture_id` (created by its first piece)."""
        if not CAPTURE_ID.match(capture_id):
            raise CaptureError("That is not a capture id.")
        with self._lock:
            now = time.monotonic()
            for old in [key for key, value in self._captures.items() if now - value.last_activity > self.idle_seconds]:
                del self._captures[old]
            capture = self._captures.get(capture_id)
            if capture is None:
                if len(self._captures) >= self.max_captures:
                    raise CaptureError("Too many recordings at once; try again in a minute.")
                capture = self._captures[capture_id] = CapturedAudio(sampling_rate, max_seconds)
        if sampling_rate != capture.sampling_rate:
            raise CaptureError("A capture cannot change its sampling rate.")
        capture.add(number, samples, final)

    def get(self, capture_id: str | None) -> CapturedAudio | None:
        with self._lock:
            return self._captures.get(capture_id) if capture_id else None

    def remove(self, capture_id: str) -> None:
        with self._lock:
            self._captures.pop(capture_id, None)


__all__ = ["CAPTURE_ID", "CaptureError", "CaptureRegistry", "CapturedAudio"]
