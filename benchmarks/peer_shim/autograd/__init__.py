"""autograd's API on tracediff (see ../README.md)."""

import os

import numpy as _np

import tracediff as _td

JIT = os.environ.get("TD_PEER_MODE", "eager") == "jit"


def compiled(f):
    """f compiled in jit mode (the peer suite's second run), f itself otherwise."""
    return _td.jit(f) if JIT else f


def grad(fun, argnum=0):
    return compiled(_td.grad(fun, argnums=argnum))


def value_and_grad(fun, argnum=0):
    return compiled(_td.value_and_grad(fun, argnums=argnum))


def elementwise_grad(fun, argnum=0):
    def g(*args):
        return _td.vjp(lambda x: fun(*args[:argnum], x, *args[argnum + 1 :]), args[argnum])[1](
            _np.ones_like(fun(*args))
        )[0]

    return compiled(g)


def jacobian(fun, argnum=0):
    return compiled(_td.jacobian(fun, argnums=argnum))


def hessian(fun, argnum=0):
    return compiled(_td.hessian(fun, argnums=argnum))


def holomorphic_grad(fun, argnum=0):
    return compiled(_td.grad(fun, argnums=argnum, holomorphic=True))


deriv = grad


def make_vjp(fun, argnum=0):
    def vjp_maker(*args):
        out, f_vjp = _td.vjp(lambda x: fun(*args[:argnum], x, *args[argnum + 1 :]), args[argnum])
        return (lambda g: f_vjp(g)[0]), out

    return vjp_maker


def make_jvp(fun, argnum=0):
    def jvp_maker(*args):
        def jvp(v):
            return _td.jvp(lambda x: fun(*args[:argnum], x, *args[argnum + 1 :]), (args[argnum],), (v,))

        return jvp

    return jvp_maker


# autograd's differentiable containers are Python's own here (tracediff traces pytrees)
tuple = tuple
list = list
dict = dict
isinstance = isinstance
