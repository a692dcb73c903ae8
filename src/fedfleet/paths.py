"""Checks on output paths, made before any work, so a bad ``--out`` is one line and not a traceback later.

Each check raises :class:`~fedfleet.errors.ConfigError` with a message of the form
``"<what> <path>: <reason>; <what to do>"``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fedfleet.errors import ConfigError


def os_reason(exc: OSError) -> str:
    """The operating system's reason for ``exc``, in words ("Permission denied", "No space left on device")."""
    return exc.strerror or type(exc).__name__


def _folder_problem(folder: Path) -> str | None:
    """Why files cannot be written in ``folder`` (created if missing), or None when they can."""
    if folder.exists() and not folder.is_dir():
        return f"{folder} is a file, not a folder"
    blocking = next((parent for parent in folder.parents if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        return f"{blocking} is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot create {folder} ({os_reason(exc)})"
    try:
        # A real write, not os.access: it also catches read-only mounts, and root ignores permission bits.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"cannot write in {folder} ({os_reason(exc)})"
    return None


def writable_dir(path: str | Path, what: str = "--out") -> Path:
    """Create the folder ``path`` (and its parents) if needed and check that files can be written in it.

    Parameters
    ----------
    path : str or Path
        The output folder.
    what : str
        How the user named it, e.g. ``"--out"``; starts the error message.

    Returns
    -------
    Path
        ``path``, existing and writable.

    Raises
    ------
    ConfigError
        ``path`` is a file, a parent is a file, or the folder cannot be created or written to
        (no permission, read-only file system, ``/proc``).
    """
    folder = Path(path)
    problem = _folder_problem(folder)
    if problem is not None:
        raise ConfigError(f"{what} {folder}: {problem}; give a new or an existing writable folder")
    return folder


def writable_file(path: str | Path, what: str = "--out") -> Path:
    """Check that the file ``path`` can be written (creating its parent folders), without changing it.

    Parameters
    ----------
    path : str or Path
        The output file; an existing file is overwritten later by the caller.
    what : str
        How the user named it, e.g. ``"--out"``; starts the error message.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ConfigError
        ``path`` is a folder, its folder cannot be created or written to, or an existing file is read-only.
    """
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"{what} {file}: is a folder; give a file name, e.g. {file / 'report.html'}")
    problem = _folder_problem(file.parent)
    if problem is None and file.exists():
        try:
            with file.open("a"):  # append mode: opens for writing without truncating
                pass
        except OSError as exc:
            problem = f"cannot write it ({os_reason(exc)})"
    if problem is not None:
        raise ConfigError(f"{what} {file}: {problem}; give a writable file")
    return file


def write_output(path: str | Path, content: str | bytes) -> Path:
    """Write ``content`` to ``path``; a failed write (disk full, ``/dev/full``) raises an OSError naming ``path``.

    ``Path.write_text`` raises the error of a failed ``write`` without a file name, which the CLI
    would show as a traceback; this one carries ``path`` so the CLI prints one line.
    """
    file = Path(path)
    try:
        if isinstance(content, bytes):
            file.write_bytes(content)
        else:
            file.write_text(content, encoding="utf-8")
    except OSError as exc:
        if exc.filename is not None:
            raise
        raise OSError(exc.errno, os_reason(exc), str(file)) from exc
    return file
