"""Secrets in git are SOPS-encrypted for the right cluster, and SOPS + age work offline (round trip)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from af.tools.check.findings import Finding
from af.tools.check.repo import Repo
from af.tools.check.tools import run
from af.tools.check.yamlfile import YamlError, load_all, load_one

ENCRYPTED = re.compile(r"^ENC\[AES256_GCM,data:.*,type:\w+\]$")
SECRET_FIELDS = ("data", "stringData")


def creation_rules(repo: Repo) -> list[dict[str, Any]]:
    """The ``creation_rules`` of the repository's .sops.yaml."""
    return load_one(repo.root / ".sops.yaml").get("creation_rules") or []


def rule_for(repo: Repo, path: Path) -> dict[str, Any] | None:
    """The first creation rule whose path_regex matches ``path`` (as SOPS picks it)."""
    rel = repo.rel(path)
    return next((r for r in creation_rules(repo) if re.search(r.get("path_regex", ""), rel)), None)


def _recipients(value: Any) -> set[str]:
    if isinstance(value, str):
        return {v.strip() for v in value.split(",") if v.strip()}
    return set(value or [])


def check_secret_document(repo: Repo, path: Path, doc: dict[str, Any]) -> list[Finding]:
    """One Secret document: every value under data/stringData encrypted, MAC present, right recipients."""
    rel = repo.rel(path)
    name = (doc.get("metadata") or {}).get("name", "?")
    meta = doc.get("sops")
    findings = []
    for field in SECRET_FIELDS:
        for key, value in (doc.get(field) or {}).items():
            if not (isinstance(value, str) and ENCRYPTED.match(value)):
                findings.append(
                    Finding(
                        rel, f"{field}.{key}", f"Secret {name!r}: not SOPS-encrypted (run sops --encrypt -i)"
                    )
                )
    if not isinstance(meta, dict):
        findings.append(Finding(rel, "sops", f"Secret {name!r}: no SOPS metadata: the file is not encrypted"))
        return findings
    if not (isinstance(meta.get("mac"), str) and ENCRYPTED.match(meta["mac"])):
        findings.append(Finding(rel, "sops.mac", f"Secret {name!r}: missing or clear MAC"))
    rule = rule_for(repo, path)
    if rule is None:
        findings.append(Finding(rel, "", "no creation rule of .sops.yaml matches this path"))
        return findings
    want = _recipients(rule.get("age"))
    have = {r.get("recipient") for r in meta.get("age") or []}
    if want != have:
        findings.append(
            Finding(
                rel,
                "sops.age",
                f"encrypted for {sorted(have)}, .sops.yaml wants {sorted(want)} (sops updatekeys)",
            )
        )
    if rule.get("encrypted_regex") and meta.get("encrypted_regex") != rule["encrypted_regex"]:
        findings.append(
            Finding(rel, "sops.encrypted_regex", f"{meta.get('encrypted_regex')!r} differs from .sops.yaml")
        )
    return findings


def check_committed_secrets(repo: Repo) -> list[Finding]:
    """Every Secret in flux/ and charts/ (any .yaml/.yml file) is SOPS-encrypted; *.sops.yaml files too.

    Example:
        >>> check_committed_secrets(Repo.discover())  # doctest: +SKIP
        []
    """
    findings = []
    for top in (repo.flux, repo.chart):
        for path in sorted([*top.rglob("*.yaml"), *top.rglob("*.yml")]):
            if "templates" in path.relative_to(top).parts:
                continue  # Helm templates are not YAML before rendering; the chart check sees rendered Secrets
            try:
                docs = load_all(path.read_text(), repo.rel(path))
            except YamlError as exc:
                findings.append(Finding(repo.rel(path), "", str(exc)))
                continue
            secrets = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Secret"]
            encrypted_file = any(isinstance(d, dict) and "sops" in d for d in docs)
            if path.name.endswith((".sops.yaml", ".sops.yml")) and not encrypted_file:
                findings.append(Finding(repo.rel(path), "sops", "named .sops.yaml but not encrypted"))
            for doc in secrets:
                findings += check_secret_document(repo, path, doc)
    return findings


def roundtrip(repo: Repo) -> list[Finding]:
    """Encrypt a Secret with the repository's rules and a throwaway age key, decrypt it, compare.

    Also checks that decryption with another key fails, so the test cannot pass by not encrypting.
    """
    origin = ".sops.yaml (round trip)"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "roundtrip", "namespace": "analysis-facility"},
        "type": "Opaque",
        "stringData": {"OIDC_CLIENT_SECRET": "s3cr3t-value"},
    }
    findings = []
    with tempfile.TemporaryDirectory(prefix="af-sops-") as tmp:
        root = Path(tmp)
        keys = {}
        for who in ("cluster", "stranger"):
            made = run(["age-keygen", "-o", str(root / f"{who}.key")])
            if made.returncode != 0:
                return [Finding(origin, "", f"age-keygen failed: {made.stderr.strip()}")]
            keys[who] = re.search(r"age1[0-9a-z]+", (root / f"{who}.key").read_text()).group(0)  # type: ignore[union-attr]
        rules = creation_rules(repo)
        if not rules:
            return [Finding(".sops.yaml", "creation_rules", "no creation rules")]
        for rule in rules:
            rule["age"] = keys["cluster"]
        (root / ".sops.yaml").write_text(yaml.safe_dump({"creation_rules": rules}))
        target = root / "flux" / "deploy" / "staging" / "roundtrip.sops.yaml"
        target.parent.mkdir(parents=True)
        target.write_text(yaml.safe_dump(secret))
        enc = run(["sops", "--encrypt", "--in-place", str(target.relative_to(root))], cwd=root)
        if enc.returncode != 0:
            return [Finding(origin, "", f"sops --encrypt failed: {enc.stderr.strip()}")]
        encrypted = yaml.safe_load(target.read_text())
        findings += check_secret_document(Repo(root=root, schemas=repo.schemas), target, encrypted)
        if encrypted["metadata"] != secret["metadata"]:
            findings.append(
                Finding(origin, "encrypted_regex", "metadata was encrypted: names must stay readable")
            )
        env = {"SOPS_AGE_KEY_FILE": str(root / "cluster.key"), "PATH": "/usr/bin:/bin"}
        dec = run(["sops", "--decrypt", str(target)], cwd=root, env=env)
        if dec.returncode != 0:
            findings.append(Finding(origin, "", f"sops --decrypt failed: {dec.stderr.strip()}"))
        elif yaml.safe_load(dec.stdout) != secret:
            findings.append(Finding(origin, "", "decrypted Secret differs from the original"))
        env["SOPS_AGE_KEY_FILE"] = str(root / "stranger.key")
        if run(["sops", "--decrypt", str(target)], cwd=root, env=env).returncode == 0:
            findings.append(Finding(origin, "", "a key that is not a recipient decrypted the Secret"))
    return findings
