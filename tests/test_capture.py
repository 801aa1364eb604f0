"""The page's own microphone capture: pieces put back in order, nothing lost or doubled, limits kept."""

import threading

import numpy as np
import pytest

from genre_vit.capture import CapturedAudio, CaptureError, CaptureRegistry

CAPTURE_ID = "0123456789abcdef0123456789abcdef"


def pieces(count: int, size: int = 100) -> list[np.ndarray]:
    return [np.arange(index * size, (index + 1) * size, dtype=np.float32) for index in range(count)]


def test_pieces_out_of_order_and_repeated_come_back_once_in_order():
    capture = CapturedAudio(48000, max_seconds=10)
    parts = pieces(5)
    capture.add(1, parts[1])
    assert capture.take().size == 0  # piece 0 is still missing
    capture.add(0, parts[0])
    capture.add(0, parts[0])  # a retry of a piece that already came
    capture.add(3, parts[3])
    np.testing.assert_array_equal(capture.take(), np.concatenate(parts[:2]))
    capture.add(4, parts[4], final=True)
    assert not capture.complete
    capture.add(2, parts[2])
    np.testing.assert_array_equal(capture.take(), np.concatenate(parts[2:]))
    assert capture.complete
    capture.add(1, parts[1])  # long taken: ignored
    assert capture.take().size == 0


def test_the_end_of_a_recording_waits_for_its_last_pieces():
    capture = CapturedAudio(48000, max_seconds=10)
    parts = pieces(3)
    capture.add(0, parts[0])
    late = threading.Timer(0.2, lambda: (capture.add(2, parts[2], final=True), capture.add(1, parts[1])))
    late.start()
    assert capture.wait_until_complete(5.0)
    np.testing.assert_array_equal(capture.take(), np.concatenate(parts))
    assert not CapturedAudio(48000, 10).wait_until_complete(0.05)


def test_limits_and_bad_pieces_are_refused():
    capture = CapturedAudio(8000, max_seconds=0.05)  # 400 samples
    capture.add(0, np.zeros(300, np.float32))
    with pytest.raises(CaptureError, match="longer than the live limit"):
        capture.add(1, np.zeros(200, np.float32))
    with pytest.raises(CaptureError, match="NaN"):
        capture.add(1, np.array([np.nan], np.float32))
    with pytest.raises(CaptureError, match="not a microphone"):
        CapturedAudio(1000, 10)
    registry = CaptureRegistry(max_captures=1)
    with pytest.raises(CaptureError, match="not a capture id"):
        registry.add("../../etc", 0, np.zeros(10, np.float32), 48000, 10, False)
    registry.add(CAPTURE_ID, 0, np.zeros(10, np.float32), 48000, 10, False)
    with pytest.raises(CaptureError, match="cannot change its sampling rate"):
        registry.add(CAPTURE_ID, 1, np.zeros(10, np.float32), 44100, 10, False)
    with pytest.raises(CaptureError, match="Too many recordings"):
        registry.add("f" * 32, 0, np.zeros(10, np.float32), 48000, 10, False)
    registry.remove(CAPTURE_ID)
    assert registry.get(CAPTURE_ID) is None


def test_an_idle_capture_is_dropped():
    registry = CaptureRegistry(idle_seconds=0.0)
    registry.add(CAPTURE_ID, 0, np.zeros(10, np.float32), 48000, 10, False)
    registry.add("f" * 32, 0, np.zeros(10, np.float32), 48000, 10, False)
    assert registry.get(CAPTURE_ID) is None and registry.get("f" * 32) is not None
