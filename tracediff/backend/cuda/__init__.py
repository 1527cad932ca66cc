"""The CUDA target: numba.cuda kernels and a host function per program.

Needs the `cuda` extra (numba-cuda with its CUDA 13 wheels, nvmath-python for
cuBLAS) and a GPU; `NUMBA_ENABLE_CUDASIM=1` (set before Numba is imported)
runs the same kernels on the CPU in Numba's simulator, for testing.
"""

from __future__ import annotations

import threading

import numpy as np

from ...core import IR, Lit

INSTALL = (
    "target='cuda' needs numba-cuda and a CUDA GPU: pip install 'tracediff[cuda]' "
    "(numba-cuda[cu13], nvmath-python); to run the kernels on the CPU for testing, set "
    "NUMBA_ENABLE_CUDASIM=1 before Numba is imported"
)


def require_cuda(gpu: bool = True):
    """numba.cuda (and a GPU, or the simulator, when `gpu`), or a clear error
    saying what to install."""
    try:
        from numba import config, cuda
    except ImportError as e:  # pragma: no cover - numba without cuda support
        raise ImportError(INSTALL) from e
    if not config.ENABLE_CUDASIM:
        try:
            import numba_cuda  # noqa: F401  (the maintained CUDA target; numba's own is deprecated)
        except ImportError:
            raise ImportError(INSTALL) from None
        if gpu and not cuda.is_available():
            raise RuntimeError("target='cuda': no CUDA GPU is usable here. " + INSTALL)
    return cuda


def gpu_missing() -> str | None:
    """Why no real CUDA GPU is usable here (the simulator does not count), or None."""
    import os

    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "NUMBA_ENABLE_CUDASIM=1: the CUDA simulator is not a GPU"
    try:
        import numba_cuda  # noqa: F401
        from numba import cuda
    except Exception as e:
        return f"numba-cuda is not importable ({type(e).__name__}: {e})"
    try:
        if not cuda.is_available():
            return "numba.cuda.is_available() is False: no CUDA GPU or driver"
    except Exception as e:
        return f"numba.cuda.is_available() raised {type(e).__name__}: {e}"
    return None


def source(ir: IR, cache: bool = True):
    """The generated module (kernels and host function); needs numba-cuda, not a GPU."""
    require_cuda(gpu=False)
    from .writer import write_program

    w = write_program(ir, cache)
    return w.source, w.consts, w.errors, w


def _key_comment() -> str:
    """The device the source is for (the on-disk cache keys on the source)."""
    from numba import config, cuda

    if config.ENABLE_CUDASIM:
        return "# device: simulator\n"
    cc = cuda.get_current_device().compute_capability
    return f"# device: sm_{cc[0]}{cc[1]}\n"


class CudaRunner:
    """Calls a program's host function: NumPy inputs are copied to the device and
    the results back; device inputs (Numba device arrays, `__cuda_array_interface__`
    objects) stay there and the results are Numba device arrays."""

    def __init__(self, ir: IR, cache: bool = True, **_options):
        from ..cache import load_module

        require_cuda()
        src, consts, errors, writer = source(ir, cache)
        self.source = src
        self.module = load_module(_key_comment() + src, use_disk=cache)
        self.cuda = require_cuda()
        self.errors = errors
        self.uses_err = "err_" in src.split("def program", 1)[0]
        self.host_consts = consts
        self.consts = None
        self.invars = list(ir.invars)
        self.outvars = list(ir.outvars)
        self.pools: list = []
        self.lock = threading.Lock()

    def _to_device(self, a, v):
        from .support import as_device, is_device

        cuda = self.cuda
        if v.aval.ndim == 0:
            if is_device(a):
                a = as_device(a).copy_to_host()[()]
            return a if v.aval.weak else np.dtype(v.aval.dtype).type(a)
        if is_device(a):
            d = as_device(a)
            if not d.is_c_contiguous():  # a strided view: one contiguous copy, on the device
                c = cuda.device_array(d.shape, d.dtype)
                c[:] = d
                d = c
            return d
        return cuda.to_device(np.ascontiguousarray(a, dtype=v.aval.dtype))

    def __call__(self, *args):
        from .support import Pool, is_device

        cuda = self.cuda
        if self.consts is None:
            self.consts = [cuda.to_device(c) for c in self.host_consts]
        on_device = any(is_device(a) for a in args)
        dev = [self._to_device(a, v) for a, v in zip(args, self.invars)]
        with self.lock:
            pool = self.pools.pop() if self.pools else Pool()
        err = cuda.to_device(np.zeros(1, np.int32)) if self.uses_err else None
        try:
            res = self.module.program(*dev, *self.consts, pool, err)
            if err is not None:
                code = int(err.copy_to_host()[0])
                if code:
                    exc, msg = self.errors[code - 1]
                    raise {"IndexError": IndexError, "ValueError": ValueError}[exc](msg)
        finally:
            with self.lock:
                self.pools.append(pool)
        outs, k = [], 0
        for v in self.outvars:
            if type(v) is Lit:
                outs.append(v.val[()] if v.val.ndim == 0 else v.val)
                continue
            if v in self.invars:
                outs.append(args[self.invars.index(v)])
                continue
            r = res[k]
            k += 1
            if is_device(r):
                if v.aval.ndim == 0:
                    r = r.reshape(()) if on_device else np.dtype(v.aval.dtype).type(r.copy_to_host()[0])
                elif not on_device:
                    r = r.copy_to_host()
            elif v.aval.ndim == 0:
                r = np.dtype(v.aval.dtype).type(r)
            outs.append(r)
        return outs
