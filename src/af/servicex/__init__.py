"""The facility's ServiceX service: answers the REST API of the `servicex` client (3.x) and delivers PHYSLITE
columns transformed by physlite on dask, with the results in S3.

Modules: `app` (the tornado application and its handlers), `auth` (hub tokens → the service's access tokens),
`store` (requests and files in SQLite), `query` (UprootRaw selections, checked on submission), `transform` (one
file, run on a dask worker), `execution` (one dask task per file, retries, cancel), `objectstore` (S3 buckets,
per-user read-only credentials, upload URLs), `datasets` (rucio DIDs and file lists), `user_tokens` (each user's
IAM access token, read from the hub's auth_state with the user's own hub token, in memory only: rucio DIDs and
their replicas are read with it, never with a credential of the service's), `__main__` (the command).

Run:
    python -m af.servicex --port 5000 --hub-api http://127.0.0.1:8081/hub/api --scheduler tcp://127.0.0.1:8786 \
        --s3-endpoint http://127.0.0.1:8333 --state /var/lib/servicex
"""
