"""Tools run on an admin's or a developer's machine, never inside the facility's images.

`cli` (the ``af`` command), `local` (the local facility of ``make up``), `check` (offline checks of ``make
check``), `health` (the end-to-end health check) and `remote_kernel` (code run in a user's kernel over the API).
"""
