"""Output-path checks: every bad path is a ConfigError naming it, before any work is done."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fedfleet.errors import ConfigError
from fedfleet.paths import writable_dir, writable_file


def test_writable_dir_creates_missing_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    assert writable_dir(target) == target
    assert target.is_dir()
    assert list(target.iterdir()) == []  # the probe leaves nothing behind


def test_writable_file_keeps_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    assert writable_file(target) == target
    assert target.read_text() == "old"


@pytest.mark.parametrize(("check", "make_path", "reason"), [
    (writable_dir, lambda root: root / "file", "is a file"),
    (writable_dir, lambda root: root / "file" / "sub", "is a file"),
    (writable_dir, lambda root: Path("/proc/fedfleet-test"), "cannot create"),
    (writable_file, lambda root: root, "is a folder"),
    (writable_file, lambda root: root / "file" / "report.html", "is a file"),
    (writable_file, lambda root: Path("/proc/report.html"), "cannot write in /proc"),
], ids=["dir-is-file", "dir-parent-is-file", "dir-in-proc", "file-is-dir", "file-parent-is-file",
        "file-in-proc"])
def test_bad_output_paths_name_the_path(tmp_path: Path, check: Callable[[Path, str], Path],
                                        make_path: Callable[[Path], Path], reason: str) -> None:
    if make_path(tmp_path).parts[:2] == ("/", "proc") and not Path("/proc/self").exists():
        pytest.skip("no /proc on this system")
    (tmp_path / "file").write_text("x")
    path = make_path(tmp_path)
    with pytest.raises(ConfigError, match=reason) as info:
        check(path, "--out")
    message = str(info.value)
    assert message.startswith(f"--out {path}:")
    assert "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="cannot write in"):
            writable_dir(folder)
        with pytest.raises(ConfigError, match="cannot write in"):
            writable_file(folder / "report.html")
    finally:
        folder.chmod(0o700)
