"""Generated modules on disk: one `.py` file per program, imported, so Numba's
own `cache=True` works and a new process skips compiling.

The file name is a hash of the source and the tracediff/Numba versions.
Files are written to a temporary name and renamed (atomic), so two processes
filling the same entry at once are safe; a corrupt entry is rewritten.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numba

_modules: dict[str, object] = {}


def cache_dir() -> Path:
    d = os.environ.get("TRACEDIFF_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "tracediff")
    p = Path(d)
    p.mkdir(parents=True, exist_ok=True)
    return p


def module_key(src: str) -> str:
    from .. import __version__

    h = hashlib.sha256(f"{__version__}\0{numba.__version__}\0{sys.version_info[:2]}\0{src}".encode())
    return "td_" + h.hexdigest()[:24]


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _import(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    # registered by name: Numba records the module of a cached function and
    # imports it again when it loads the cache in another process
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def drop_numba_cache(name: str, directory: Path) -> None:
    pyc = directory / "__pycache__"
    if pyc.is_dir():
        for f in pyc.glob(f"{name}.*"):
            try:
                f.unlink()
            except OSError:
                pass


def load_module(src: str, use_disk: bool = True):
    """The module holding `src`, written to the cache folder once per content."""
    name = module_key(src)
    mod = _modules.get(name)
    if mod is not None:
        return mod
    d = cache_dir() if use_disk else Path(tempfile.mkdtemp(prefix="tracediff-"))
    path = d / f"{name}.py"
    try:
        ok = path.read_text() == src
    except (OSError, UnicodeDecodeError):
        ok = False
    if not ok:  # missing, half-written by a crash, or corrupt: (re)write it
        drop_numba_cache(name, d)
        _write_atomic(path, src)
    mod = _import(name, path)
    _modules[name] = mod
    if not use_disk:
        shutil.rmtree(d, ignore_errors=True)
    return mod
