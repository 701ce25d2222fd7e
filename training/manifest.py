"""A bundle's manifest, ``checksums.json``: the size and SHA-256 of every file, written when the
bundle is saved and checked when it is loaded, before anything is parsed.

A truncated, altered or missing file is then a :class:`core.errors.ModelBundleError` naming the
file, never a crash inside a parser (LightGBM aborts the whole process on a damaged model text).

The manifest is written last, so a bundle whose saving was interrupted has none. Bundles saved
before manifests existed have none either: they load with a warning (their files are parsed
defensively but cannot be verified), so models already registered keep working.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ModelBundleError
from core.files import atomic_write_text

log = logging.getLogger(__name__)

MANIFEST = "checksums.json"
FORMAT = 1
ALGORITHM = "sha256"


def digest(data: bytes) -> str:
    """The SHA-256 of ``data`` as hex."""
    return hashlib.sha256(data).hexdigest()


def write_manifest(folder: Path, names: Iterable[str]) -> Path:
    """Write ``checksums.json`` listing size and SHA-256 of each of ``names`` in ``folder``."""
    files = {}
    for name in sorted(names):
        data = (folder / name).read_bytes()
        files[name] = {"bytes": len(data), ALGORITHM: digest(data)}
    path = folder / MANIFEST
    atomic_write_text(path, json.dumps({"format": FORMAT, "algorithm": ALGORITHM, "files": files}, indent=2))
    return path


@dataclass(frozen=True)
class BundleFiles:
    """The files of one bundle folder, each read once and, where a manifest exists, verified.

    Attributes:
        folder: the folder on disk.
        origin: what messages call the bundle (the folder, or where it was downloaded from).
        expected: ``{name: {"bytes": n, "sha256": hex}}`` from the manifest; None without one.
    """

    folder: Path
    origin: str
    expected: dict[str, dict] | None
    _verified: dict[str, bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, folder: Path, required: Iterable[str], optional: Iterable[str], origin: str | None = None,
             ) -> BundleFiles:
        """Check the folder and its manifest; verify every listed file before anything is parsed.

        Raises:
            ModelBundleError: no such folder, a required file missing, an unreadable manifest, a
                bundle file not listed in it, or a listed file missing, of another size or with
                another checksum.
        """
        folder = Path(folder)
        origin = origin or str(folder)
        if not folder.is_dir():
            what = "is a file, not a bundle folder" if folder.exists() else "does not exist"
            raise ModelBundleError(f"model bundle {origin} {what}")
        files = cls(folder, origin, _read_manifest(folder, origin))
        if files.expected is None:
            log.warning("model bundle %s has no %s (saved before checksums were written): its files cannot be "
                        "verified; save it again (retrain) to add them", origin, MANIFEST)
            files._require_present(required)
        else:
            files._verify(required, optional)
        return files

    def where(self, name: str) -> str:
        """How messages name file ``name`` of this bundle."""
        return f"{self.origin.rstrip('/')}/{name}"

    def exists(self, name: str) -> bool:
        return (self.folder / name).is_file()

    def read(self, name: str) -> bytes:
        """The bytes of ``name``: with a manifest, the very bytes that were verified."""
        return self._verified[name] if name in self._verified else self._bytes(name)

    # -- checks ----------------------------------------------------------------------
    def _require_present(self, required: Iterable[str]) -> None:
        missing = [n for n in required if not self.exists(n)]
        if missing:
            raise ModelBundleError(f"model bundle {self.origin} is incomplete: missing {', '.join(missing)}")

    def _verify(self, required: Iterable[str], optional: Iterable[str]) -> None:
        assert self.expected is not None
        unlisted = [n for n in required if n not in self.expected]
        unlisted += [n for n in optional if n not in self.expected and self.exists(n)]
        if unlisted:
            raise ModelBundleError(f"{self.where(unlisted[0])}: not listed in {MANIFEST} (the bundle was changed "
                                   "after it was saved)")
        missing = [n for n in self.expected if not self.exists(n)]
        if missing:
            raise ModelBundleError(f"{self.where(missing[0])}: missing (listed in {MANIFEST}"
                                   + (f"; also missing: {', '.join(missing[1:])}" if missing[1:] else "") + ")")
        for name in self.expected:
            data = self._bytes(name)
            self._match(name, data)
            self._verified[name] = data

    def _match(self, name: str, data: bytes) -> None:
        want = self.expected[name]
        if len(data) != want["bytes"]:
            raise ModelBundleError(f"{self.where(name)}: {len(data):,} bytes where {want['bytes']:,} were saved "
                                   "(truncated or damaged)")
        if digest(data) != want[ALGORITHM]:
            raise ModelBundleError(f"{self.where(name)}: checksum mismatch ({ALGORITHM} differs from the one saved "
                                   f"in {MANIFEST}): the file was altered or damaged")

    def _bytes(self, name: str) -> bytes:
        try:
            return (self.folder / name).read_bytes()
        except FileNotFoundError as exc:
            raise ModelBundleError(f"{self.where(name)}: missing") from exc
        except OSError as exc:
            raise ModelBundleError(f"{self.where(name)}: cannot be read ({exc.strerror or exc})") from exc


def _read_manifest(folder: Path, origin: str) -> dict[str, dict] | None:
    """The manifest's ``files`` mapping, None when there is no manifest.

    Raises:
        ModelBundleError: the manifest is not the JSON this module writes.
    """
    path = folder / MANIFEST
    if not path.exists():
        return None
    where = f"{origin.rstrip('/')}/{MANIFEST}"
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ModelBundleError(f"{where}: unreadable ({exc})") from exc
    files = raw.get("files") if isinstance(raw, dict) else None
    if not isinstance(files, dict) or raw.get("algorithm") != ALGORITHM or not all(
            isinstance(v, dict) and isinstance(v.get("bytes"), int) and isinstance(v.get(ALGORITHM), str)
            for v in files.values()):
        raise ModelBundleError(f"{where}: not a {ALGORITHM} manifest (expected {{'algorithm': '{ALGORITHM}', "
                               "'files': {name: {'bytes': n, 'sha256': hex}}})")
    unsafe = [n for n in files if Path(n).name != n]
    if unsafe:
        raise ModelBundleError(f"{where}: lists a path outside the bundle folder ({unsafe[0]!r})")
    return files
