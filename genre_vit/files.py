"""Atomic file output: a reader sees the old file or the complete new one, never a half-written file."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary_path)` for a file beside `path`, then rename it over `path`.

    The temporary file is removed if `write` fails, so an error leaves no partial output behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(descriptor)
    temporary = Path(temporary)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text to `path` atomically."""
    return write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def save_figure_atomic(figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib Figure to `path` atomically; the format follows the suffix (.png, .svg, .pdf)."""
    path = Path(path)
    image_format = path.suffix.lstrip(".").lower() or "png"
    return write_atomic(
        path, lambda temporary: figure.savefig(temporary, format=image_format, dpi=dpi, bbox_inches="tight")
    )


__all__ = ["save_figure_atomic", "write_atomic", "write_text_atomic"]
