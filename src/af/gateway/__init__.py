"""Code run by the dask-gateway server and the dashboard guard beside it (hub image, never the user's image).

`server_config` (the gateway's configuration, shared by Kubernetes and the local facility), `limits` (per-user
totals), `local_backend` and `local_config` (the local facility only), `dashboard_guard` (its own process).
"""
