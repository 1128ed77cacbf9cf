"""The facility's processes other than the hub, one subpackage per process (and so per image that runs it).

- `af.gateway`: the dask-gateway server's configuration, per-user limits, local backend and the dashboard guard
  (hub image).
- `af.user_server`: extensions of each user's Jupyter server (notebook image).
- `af.servicex`: the ServiceX-compatible delivery service (hub image; its transforms run on dask workers, which
  import only physlite).
- `af.tools`: what runs on an admin's or a developer's machine: the local facility, offline checks, health check.

The hub's own configuration is the top-level package `hub_config`. `physlite` imports nothing from here.
"""
