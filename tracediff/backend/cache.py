"""Generated modules on disk: one `.py` file per program, imported, so Numba's
own `cache=True` works and a new process skips compiling.

The file name is a hash of the source and the tracediff/Numba versions.
Files are written to a temporary name and renamed (atomic), so two processes
filling the same entry at once are safe; a corrupt entry is rewritten.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import itertools
import os
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import numba

_modules: dict[str, object] = {}
_lock = threading.RLock()  # threads loading modules at once: one writes and imports each
_fresh_ids = itertools.count()


def cache_dir() -> Path:
    d = os.environ.get("TRACEDIFF_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "tracediff")
    p = Path(d)
    p.mkdir(parents=True, exist_ok=True)
    return p


def module_key(src: str) -> str:
    """The cache name of a generated module: a hash of its source, of every
    tracediff module it imports (vmath, memory: Numba inlines their code into
    the machine code it caches, so an edit there must not reuse it), and of the
    tracediff, Numba and Python versions."""
    from .._version import __version__

    deps = _runtime_digest(tuple(sorted(set(_IMPORT_RE.findall(src)))))
    h = hashlib.sha256(f"{__version__}\0{numba.__version__}\0{sys.version_info[:2]}\0{deps}\0{src}".encode())
    return "td_" + h.hexdigest()[:24]


# `from tracediff.x import y` / `import tracediff.x` lines of generated source
_IMPORT_RE = re.compile(r"^(?:from\s+(tracediff[\w.]*)\s+import\s+(\w+)|import\s+(tracediff[\w.]*))", re.M)


@functools.lru_cache(maxsize=64)
def _runtime_digest(imports: tuple[tuple[str, str, str], ...]) -> str:
    h = hashlib.sha256()
    for mod, name, plain in imports:
        spec = None
        if name:  # `from pkg import sub` names a submodule, or a function of `pkg`
            spec = importlib.util.find_spec(f"{mod}.{name}") if _is_package(mod) else None
        spec = spec or importlib.util.find_spec(mod or plain)
        for path in _source_files(spec):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _is_package(mod: str) -> bool:
    spec = importlib.util.find_spec(mod)
    return spec is not None and spec.submodule_search_locations is not None


def _source_files(spec) -> list[Path]:
    if spec is None or spec.origin is None:
        return []
    if spec.submodule_search_locations:  # a package: every module in it
        return sorted(p for d in spec.submodule_search_locations for p in Path(d).rglob("*.py"))
    return [Path(spec.origin)]


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


def load_module(src: str, use_disk: bool = True, fresh: bool = False):
    """The module holding `src`, written to the cache folder once per content.

    `fresh=True` imports a new module from a private file, ignoring the memo
    and the on-disk entry (the way back from a corrupt cache entry).
    """
    with _lock:
        if fresh:
            return _import_private(src)
        return _load(src, use_disk)


def _import_private(src: str):
    d = Path(tempfile.mkdtemp(prefix="tracediff-"))
    name = f"{module_key(src)}_{next(_fresh_ids)}"
    try:
        path = d / f"{name}.py"
        _write_atomic(path, src)
        return _import(name, path)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _load(src: str, use_disk: bool):
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
