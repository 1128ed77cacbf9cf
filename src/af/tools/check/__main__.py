"""``python -m af.tools.check [CHECK ...]``: the offline checks of the Kubernetes deployment (``make check``).

    python -m af.tools.check                 # every check
    python -m af.tools.check chart skew      # some of them
    python -m af.tools.check reference --write
    python -m af.tools.check diff REF        # what an upgrade from REF to the working tree changes

Exit status: 0 when nothing failed (warnings are printed), 1 on any finding, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from af.tools.check.chart import check_chart
from af.tools.check.dockerfiles import check_dockerfiles
from af.tools.check.findings import Finding
from af.tools.check.flux import check_flux
from af.tools.check.image_imports import check_images_imports
from af.tools.check.image_install import check_images_install
from af.tools.check.repo import Repo
from af.tools.check.skew import check_skew
from af.tools.check.sops_secrets import check_committed_secrets, roundtrip
from af.tools.check.values_reference import check_reference, write_reference

CHECKS: dict[str, tuple[str, Callable[[Repo], list[Finding]]]] = {
    "chart": (
        "chart: strict lint, render, Kubernetes schemas, subchart schemas, wiring, settings",
        check_chart,
    ),
    "flux": ("flux: kustomize build, Flux models, references", check_flux),
    "secrets": ("secrets: every Secret SOPS-encrypted for its cluster", check_committed_secrets),
    "sops-roundtrip": ("sops: encrypt/decrypt round trip with a throwaway age key", roundtrip),
    "images": ("images: hadolint", check_dockerfiles),
    "image-install": (
        "images: install steps run on this machine (uv sync from the lock, imports, warm-up)",
        check_images_install,
    ),
    "image-imports": (
        "images: their dependency groups install every module their code imports (uv.lock, .venv's RECORDs)",
        check_images_imports,
    ),
    "skew": ("skew: image tags, lock, Dockerfiles, JupyterHub/dask versions", check_skew),
    "reference": (
        "reference: generated files up to date (values.schema.json settings, docs/values-reference.md)",
        check_reference,
    ),
}


def run_checks(repo: Repo, names: list[str]) -> int:
    """Run the named checks, print a line per check and every finding; the number of failures."""
    failures = 0
    for name in names:
        title, check = CHECKS[name]
        start = time.monotonic()
        try:
            findings = check(repo)
        except Exception as exc:  # a check that cannot run is a failure, with its reason
            findings = [Finding(name, "", f"check could not run: {type(exc).__name__}: {exc}")]
        errors = [f for f in findings if not f.warning]
        status = "FAIL" if errors else "ok"
        print(f"{status:4} {title} ({time.monotonic() - start:.1f} s)")
        for finding in findings:
            print(f"     {finding}")
        failures += len(errors)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m af.tools.check", description=__doc__.splitlines()[0])
    parser.add_argument(
        "checks", nargs="*", help=f"checks to run (default all): {', '.join(CHECKS)}; or diff REF"
    )
    parser.add_argument("--write", action="store_true", help="with `reference`: regenerate the file")
    parser.add_argument("--root", default=None, help="repository checkout (default: the current one)")
    args = parser.parse_args(argv)
    repo = Repo.discover() if args.root is None else Repo.at(__import__("pathlib").Path(args.root))
    if args.checks[:1] == ["diff"]:
        if len(args.checks) != 2:
            parser.error("usage: diff REF")
        from af.tools.check.diff import diff

        try:
            text, counts = diff(repo, args.checks[1])
        except (ValueError, RuntimeError) as exc:
            print(f"af.tools.check diff: {exc}", file=sys.stderr)
            return 2
        print(text or "(no change)")
        print(
            f"diff {args.checks[1]}..working tree: {counts['added']} added, {counts['removed']} removed, "
            f"{counts['changed']} changed"
        )
        return 0
    if args.write:
        if args.checks not in ([], ["reference"]):
            parser.error("--write goes with `reference` only")
        for path in write_reference(repo):
            print(f"wrote {path}")
        return 0
    unknown = [c for c in args.checks if c not in CHECKS]
    if unknown:
        parser.error(f"unknown check(s) {unknown}; known: {', '.join(CHECKS)}")
    failures = run_checks(repo, args.checks or list(CHECKS))
    print(f"af.tools.check: {failures} problem(s)" if failures else "af.tools.check: all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
