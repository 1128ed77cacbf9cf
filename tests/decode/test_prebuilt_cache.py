"""The kernels compiled at build time load for another user from a read-only cache, as a cluster runs the image:
warmed up as root into NUMBA_CACHE_DIR, made read-only, then read as uid 1000 with its own home (or none)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import R21_FILE, R22_FILE, require_data_file

USER = 1000

# decodes real files in a fresh process, then tells each decode kernel's cache hits and misses (a miss compiles)
PROBE = """
import json, sys
import physlite
from physlite.decode import warmup
for path in sys.argv[1:]:
    with physlite.open(path) as f:
        f.arrays([name for name in f.keys() if f.info(name).layout is not None])
stats = {d.__name__: [len(d.stats.cache_hits), sum(d.stats.cache_misses.values())] for d in warmup.DISPATCHERS}
print("PROBE " + json.dumps(stats))
"""


@pytest.fixture(scope="module")
def shared_tmp():
    """A folder the other user can enter (pytest's own tmp folder is root's only)."""
    folder = Path(tempfile.mkdtemp(prefix="physlite-prebuilt-"))
    folder.chmod(0o755)
    yield folder
    subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def prebuilt(shared_tmp) -> Path:
    """The image's build step: warm-up as root into NUMBA_CACHE_DIR, then the cache made read-only for everyone."""
    if os.geteuid() != 0:
        pytest.skip("needs root to compile as root and run as another uid (setpriv)")
    cache = shared_tmp / "numba-cache"
    env = {**os.environ, "NUMBA_CPU_NAME": "generic", "NUMBA_CACHE_DIR": str(cache)}
    subprocess.run([sys.executable, "-m", "physlite.decode.warmup"], env=env, check=True, capture_output=True)
    assert any(cache.rglob("*.nbi")), f"the warm-up compiled nothing into {cache}"
    subprocess.run(["chmod", "-R", "a-w", str(cache)], check=True)
    return cache


def _home(shared_tmp: Path, name: str, writable: bool) -> Path:
    home = shared_tmp / name
    home.mkdir()
    if writable:
        os.chown(home, USER, USER)
    else:
        home.chmod(0o555)
    return home


def as_user(argv: list[str], cache: Path, home: Path) -> subprocess.CompletedProcess:
    """A fresh process as uid 1000 with nothing but the image's numba settings (NUMBA_DEBUG_CACHE on)."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "NUMBA_CPU_NAME": "generic",
        "NUMBA_CACHE_DIR": str(cache),
        "NUMBA_DEBUG_CACHE": "1",
    }
    setpriv = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups"]
    return subprocess.run(
        [*setpriv, sys.executable, *argv], env=env, capture_output=True, text=True, check=False
    )


def _probe(cache: Path, home: Path) -> tuple[dict, str]:
    files = [str(require_data_file(R22_FILE)), str(require_data_file(R21_FILE))]
    done = as_user(["-c", PROBE, *files], cache, home)
    assert done.returncode == 0, done.stderr[-3000:]
    report = next(line for line in done.stdout.splitlines() if line.startswith("PROBE "))
    return json.loads(report[6:]), done.stdout


def _assert_loaded_not_compiled(stats: dict, debug: str) -> None:
    saved = [line for line in debug.splitlines() if "saved to" in line]
    assert saved == [], f"{len(saved)} cache files written, i.e. kernels compiled:\n" + "\n".join(saved[:10])
    assert {name: hm for name, hm in stats.items() if hm[1]} == {}, f"cache misses (compilations): {stats}"
    assert sum(hits for hits, _ in stats.values()) >= 9, stats


def test_another_user_loads_every_kernel_from_the_read_only_prebuilt_cache(prebuilt, shared_tmp) -> None:
    home = _home(shared_tmp, "home", writable=True)
    stats, debug = _probe(prebuilt, home)
    _assert_loaded_not_compiled(stats, debug)
    # a second process finds the kernels already in the user's cache and still compiles nothing
    stats, debug = _probe(prebuilt, home)
    _assert_loaded_not_compiled(stats, debug)
    check = as_user(["-m", "physlite.decode.warmup", "--check"], prebuilt, home)
    assert check.returncode == 0 and "none compiled" in check.stdout, check.stderr


def test_without_a_writable_home_the_kernels_load_straight_from_the_prebuilt_cache(
    prebuilt, shared_tmp
) -> None:
    home = _home(shared_tmp, "readonly-home", writable=False)
    stats, debug = _probe(prebuilt, home)
    _assert_loaded_not_compiled(stats, debug)
    loaded = [line for line in debug.splitlines() if "data loaded from" in line]
    assert loaded and all(str(prebuilt) in line for line in loaded), loaded[:3]


# a signature the warm-up does not compile: swap_bytes on a uint16 array instead of raw bytes
NEW_SIGNATURE = """
import numpy as np
from physlite.decode import kernels
kernels.swap_bytes(np.zeros(4, np.uint16), 2)
print("MISSES", sum(kernels.swap_bytes.stats.cache_misses.values()))
"""


def test_a_signature_the_build_did_not_compile_is_saved_once_in_the_users_cache(prebuilt, shared_tmp) -> None:
    home = _home(shared_tmp, "home-new-signature", writable=True)
    first = as_user(["-c", NEW_SIGNATURE], prebuilt, home)
    assert "MISSES 1" in first.stdout, first.stderr[-2000:]
    assert f"saved to '{home}/.cache/numba/" in first.stdout
    second = as_user(["-c", NEW_SIGNATURE], prebuilt, home)
    assert "MISSES 0" in second.stdout, (
        "the user's own compilation was lost (overwritten by the prebuilt index)"
    )


def test_without_any_writable_folder_a_new_signature_fails_naming_the_cache(prebuilt, shared_tmp) -> None:
    home = _home(shared_tmp, "readonly-home-new-signature", writable=False)
    done = as_user(["-c", NEW_SIGNATURE], prebuilt, home)
    assert done.returncode != 0
    assert f"not in the read-only prebuilt cache {prebuilt}" in done.stderr, done.stderr[-2000:]
