"""Offline validation of the Kubernetes deployment: chart, Flux manifests, secrets, images, version skew.

Every check returns a list of :class:`~af.check.findings.Finding` (empty when all is well); ``python -m af.check``
runs them and exits non-zero on any finding. Nothing here needs a cluster, a registry or the network.

Example:
    >>> from af.check.repo import Repo
    >>> from af.check.skew import check_skew
    >>> check_skew(Repo.discover())  # doctest: +SKIP
    []
"""
