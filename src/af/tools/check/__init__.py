"""Offline validation of the Kubernetes deployment: chart, Flux manifests, secrets, images, version skew.

Every check returns a list of :class:`~af.tools.check.findings.Finding` (empty when all is well); ``python -m af.tools.check``
runs them and exits non-zero on any finding. Nothing here needs a cluster, a registry or the network.

Example:
    >>> from af.tools.check.repo import Repo
    >>> from af.tools.check.skew import check_skew
    >>> check_skew(Repo.discover())  # doctest: +SKIP
    []
"""
