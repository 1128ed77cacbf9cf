"""Code run inside each user's Jupyter server (notebook image): server extensions and start-up helpers.

`dask_sidebar` (the Dask sidebar's routes), `servicex_refresh` and `servicex_config` (the user's
``servicex.yaml``), `tutorials` (the tutorials in new homes), `access_token` (the user's current IAM token, re-exported from physlite's credentials).
"""
