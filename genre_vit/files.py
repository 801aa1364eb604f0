"""Atomic file output: a reader sees the old file or the complete new one, never a half-written file."""

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(temporary_path)` for a file beside `path`, then rename it over `path`.

    The temporary file is removed if `write` fails, so an error leaves no partial output behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_temporary_beside(path)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _create_temporary_beside(path: Path) -> Path:
    """Create an empty, uniquely named file next to `path` with the permissions a plain `open(path, "w")` gives
    (0666 less the umask). `tempfile.mkstemp` would make it 0600, and the rename would carry that onto the output."""
    for _ in range(100):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}{path.suffix}")
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temporary
    raise FileExistsError(f"Could not create a temporary file beside {path}.")


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
