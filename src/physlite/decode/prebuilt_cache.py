"""Use the kernels compiled at build time even when their cache folder is read-only for this process.

numba caches a function only in a folder it can write to (``NUMBA_CACHE_DIR``, else the module's ``__pycache__``,
else ``~/.cache/numba``) and silently skips any other. An image compiles the kernels as root into a folder that its
users (uid 1000, read-only root file system) can only read, so without this module every pod compiles them again
into ``~/.cache/numba`` (measured: 9 compilations, 8.7 s to the first decode instead of 1.0 s).

:func:`install` puts :class:`PrebuiltCacheLocator` into numba's list of cache locators, right after the one for
``NUMBA_CACHE_DIR``. For a physlite function whose compiled files sit in a prebuilt folder this process cannot
write to, it copies that function's index and data files into the user's numba cache folder (unless an index
for the same numba and source is there already; 35 files, 2.3 MB, 22 ms once per user and image) and lets numba
load them from there; a signature the build did not compile is then compiled and saved there as usual. Without
any writable folder (no writable home) numba loads straight from the prebuilt folder (measured as fast: the copy
is chosen because it still lets numba save a new signature). numba's index keys on the source file's content and
on the target CPU, so ``NUMBA_CPU_NAME=generic`` must be set at build time and run time alike.

Example:
    >>> from physlite.decode import prebuilt_cache
    >>> prebuilt_cache.install()  # done on ``import physlite.decode``, before any kernel is defined
    >>> from physlite.decode import kernels  # kernels.decode_fixed.stats.cache_hits: loaded, not compiled
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import uuid
from pathlib import Path

from numba.core import caching, config

PACKAGE = Path(__file__).resolve().parent.parent  # physlite/


def _writable(folder: Path) -> bool:
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _file_prefix(py_func, py_file: str) -> str:
    """The name numba gives a function's cache files, without ``.nbi`` or ``.<n>.nbc`` (as CacheImpl builds it)."""
    module = os.path.splitext(os.path.basename(py_file))[0]
    qualname = getattr(py_func, "__qualname__", py_func.__name__).replace("<", "").replace(">", "")
    version = f"py{sys.version_info[0]}{sys.version_info[1]}{getattr(sys, 'abiflags', '')}"
    return f"{module}.{qualname}-{py_func.__code__.co_firstlineno}.{version}"


def _prebuilt_folders(py_file: str) -> list[Path]:
    """Where a build may have compiled this file's kernels: numba's NUMBA_CACHE_DIR layout, then ``__pycache__``."""
    folders = [Path(py_file).parent / "__pycache__"]
    if config.CACHE_DIR:
        subpath = caching._CacheLocator.get_suitable_cache_subpath(py_file)
        folders.insert(0, Path(config.CACHE_DIR) / subpath)
    return folders


def _index_header(path: Path) -> tuple[object, object] | None:
    """The numba version and source stamp an index file was written for; None if missing or unreadable."""
    try:
        with path.open("rb") as f:
            version = pickle.load(f)
            stamp, _ = pickle.loads(f.read())
    except Exception:  # a damaged or foreign index is as good as none
        return None
    return version, stamp


def _seed(index: Path, target: Path) -> None:
    """Copy a function's prebuilt index and data files into ``target`` unless ``target`` already holds an index
    for the same numba version and source (the user's own, maybe with signatures compiled since). Each file is
    replaced atomically and the index last, so that a concurrent process never sees an index without its data."""
    if _index_header(target / index.name) == _index_header(index):
        return
    data = sorted(index.parent.glob(f"{index.name.removesuffix('.nbi')}.*.nbc"))
    for source in [*data, index]:
        partial = target / f"{source.name}.tmp.{uuid.uuid4().hex[:12]}"
        shutil.copy2(source, partial)
        os.replace(partial, target / source.name)


class PrebuiltCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
    """numba cache locator for physlite's functions whose prebuilt cache folder this process cannot write to.

    Example:
        >>> PrebuiltCacheLocator.from_function(kernels.decode_fixed.py_func, kernels.__file__)  # doctest: +SKIP
        <physlite.decode.prebuilt_cache.PrebuiltCacheLocator object at ...>  # None where numba's own locators work
    """

    def __init__(self, py_func, py_file: str, folder: Path, read_only: bool) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._folder = folder
        self._read_only = read_only

    def get_cache_path(self) -> str:
        return str(self._folder)

    def ensure_cache_path(self) -> None:
        """numba calls this before saving a new compilation; a read-only prebuilt folder cannot take it."""
        if self._read_only:
            raise PermissionError(
                f"physlite: a kernel of {self._py_file} was compiled for a signature that is not in the read-only "
                f"prebuilt cache {self._folder}, and there is no writable numba cache folder to save it in "
                "(give the process a writable HOME or NUMBA_CACHE_DIR)"
            )
        super().ensure_cache_path()

    @classmethod
    def from_function(cls, py_func, py_file: str) -> PrebuiltCacheLocator | None:
        if not Path(py_file).resolve().is_relative_to(PACKAGE):
            return None
        prebuilt = next((folder for folder in _prebuilt_folders(py_file) if folder.is_dir()), None)
        if prebuilt is None or _writable(prebuilt):
            return None  # numba's own locators use (and update) a writable folder
        index = prebuilt / f"{_file_prefix(py_func, py_file)}.nbi"
        user = caching.UserWideCacheLocator(py_func, py_file)
        try:
            user.ensure_cache_path()
            if index.is_file():
                _seed(index, Path(user.get_cache_path()))
        except OSError:
            return cls(py_func, py_file, prebuilt, read_only=True)
        return cls(py_func, py_file, Path(user.get_cache_path()), read_only=False)


def install() -> None:
    """Put :class:`PrebuiltCacheLocator` after numba's NUMBA_CACHE_DIR locator (once; before kernels are defined)."""
    locators = caching.CacheImpl._locator_classes
    if PrebuiltCacheLocator not in locators:
        locators.insert(locators.index(caching.UserProvidedCacheLocator) + 1, PrebuiltCacheLocator)
