"""Turn baskets into arrays with compiled kernels; see :mod:`physlite.decode.kernels`.

Importing the package lets numba load the kernels compiled at build time from a read-only cache folder
(:mod:`physlite.decode.prebuilt_cache`), before any kernel module defines them.
"""

from physlite.decode import prebuilt_cache

prebuilt_cache.install()
