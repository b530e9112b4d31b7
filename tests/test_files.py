"""twisted_sslfile._files: the one way secret files are written and read."""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator

from twisted.trial.unittest import SynchronousTestCase

from twisted_sslfile import _files
from twisted_sslfile._files import (
    InsecureFileWarning,
    UnsafeFileError,
    read_private_file,
    write_private_file,
)


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


class WritePrivateFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "secret")

    def test_new_file(self) -> None:
        self.assertEqual(write_private_file(self.path, b"data"), self.path)
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"data")
        self.assertEqual(mode_of(self.path), 0o600)
        self.assertEqual(os.listdir(self.directory), ["secret"])

    def test_replaces_a_wider_file_and_a_symlink(self) -> None:
        """
        The old file's mode is not inherited, and a symlink at the target
        name is replaced, not followed.
        """
        with open(self.path, "wb") as f:
            f.write(b"old")
        os.chmod(self.path, 0o644)
        write_private_file(self.path, b"new")
        self.assertEqual(mode_of(self.path), 0o600)
        victim = os.path.join(self.directory, "victim")
        with open(victim, "wb") as f:
            f.write(b"untouched")
        os.unlink(self.path)
        os.symlink(victim, self.path)
        write_private_file(self.path, b"newer")
        self.assertFalse(os.path.islink(self.path))
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), b"untouched")

    def test_mode_is_exact_whatever_the_umask(self) -> None:
        old = os.umask(0o077)
        try:
            write_private_file(self.path, b"cert", mode=0o644)
        finally:
            os.umask(old)
        self.assertEqual(mode_of(self.path), 0o644)

    def test_planted_temporary_name_is_not_followed(self) -> None:
        """
        Even a name someone guessed (here: forced) is created with O_EXCL and
        O_NOFOLLOW: the planted symlink stays, its target is not written, and
        the next random name is used.
        """
        victim = os.path.join(self.directory, "victim")
        with open(victim, "wb") as f:
            f.write(b"untouched")
        planted = os.path.join(self.directory, ".secret.planted.tmp")
        os.symlink(victim, planted)
        fresh = os.path.join(self.directory, ".secret.fresh.tmp")
        names: Iterator[str] = iter([planted, fresh])
        self.patch(_files, "_temporary_name", lambda directory, base: next(names))
        write_private_file(self.path, b"data")
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), b"untouched")
        self.assertTrue(os.path.islink(planted))
        self.assertFalse(os.path.exists(fresh))
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"data")

    def test_every_name_taken(self) -> None:
        taken = os.path.join(self.directory, ".taken")
        with open(taken, "wb"):
            pass
        self.patch(_files, "_temporary_name", lambda directory, base: taken)
        error = self.assertRaises(FileExistsError, write_private_file, self.path, b"x")
        self.assertIn(self.path, str(error))
        self.assertFalse(os.path.exists(self.path))

    def test_failure_leaves_the_old_file_and_no_temporary(self) -> None:
        write_private_file(self.path, b"old")

        def broken(fd: int, data: object) -> int:
            raise OSError(28, "No space left on device")

        self.patch(os, "write", broken)
        self.assertRaises(OSError, write_private_file, self.path, b"new")
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"old")
        self.assertEqual(os.listdir(self.directory), ["secret"])


class ReadPrivateFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "secret")
        with open(self.path, "wb") as f:
            f.write(b"0123456789")

    def read(self, mode: int, limit: int = 100) -> bytes:
        os.chmod(self.path, mode)
        return read_private_file(self.path, limit, "test file")

    def test_limit(self) -> None:
        self.assertEqual(self.read(0o600, 4), b"01234")

    def test_refused_modes(self) -> None:
        for mode in (0o620, 0o602, 0o666, 0o660):
            error = self.assertRaises(UnsafeFileError, self.read, mode)
            self.assertIsInstance(error, ValueError)
            self.assertEqual(error.path, self.path)
            self.assertIn(f"test file {self.path}", str(error))
            self.assertIn(f"chmod 600 {self.path}", str(error))

    def test_world_readable_warns(self) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.assertEqual(self.read(0o644), b"0123456789")
        [warning] = caught
        self.assertIs(warning.category, InsecureFileWarning)
        self.assertIn(f"chmod 600 {self.path}", str(warning.message))

    def test_quiet_modes(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for mode in (0o600, 0o400, 0o640, 0o440):
                self.assertEqual(self.read(mode), b"0123456789")

    def test_symlink_target_is_checked(self) -> None:
        """Secret volumes are symlinks: followed, and the target's mode counts."""
        link = os.path.join(self.directory, "link")
        os.symlink(self.path, link)
        os.chmod(self.path, 0o600)
        self.assertEqual(read_private_file(link, 100, "test file"), b"0123456789")
        os.chmod(self.path, 0o662)
        self.assertRaises(UnsafeFileError, read_private_file, link, 100, "test file")
