"""Flux manifests: typos, broken references and secrets in clear make the checks fail, naming file and key."""

from __future__ import annotations

import shutil

from af.tools.check.flux import check_flux
from af.tools.check.sops_secrets import check_committed_secrets, roundtrip
from tests.k8s.conftest import edit, errors

RELEASE = "flux/base/release/helmrelease.yaml"


def _messages(findings) -> list[str]:
    return [str(f) for f in errors(findings)]


def test_unknown_field_in_helmrelease(scratch) -> None:
    edit(scratch.root / RELEASE, "      retries: 2", "      retrys: 2")
    messages = _messages(check_flux(scratch))
    expected = (
        f"{RELEASE} (built from flux/deploy/staging): HelmRelease analysis-facility/analysis-facility: "
        "spec.upgrade.remediation.retrys: unknown field"
    )
    assert expected in messages, messages


def test_values_key_must_exist_in_generated_configmap(scratch) -> None:
    edit(scratch.root / RELEASE, "valuesKey: values.yaml", "valuesKey: value.yaml")
    messages = _messages(check_flux(scratch))
    assert any(
        m.startswith(f"{RELEASE} (built from flux/deploy/production)")
        and "spec.valuesFrom[0]" in m
        and "has no key 'value.yaml'" in m
        for m in messages
    ), messages


def test_chart_dependencies_need_their_helm_repositories(scratch) -> None:
    path = scratch.root / "flux/base/sources/helmrepositories.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("---")])
    messages = _messages(check_flux(scratch))
    assert any(
        "dependency dask-gateway comes from https://helm.dask.org: no HelmRepository" in m for m in messages
    )


def test_env_secret_must_be_deployed_with_its_keys(scratch) -> None:
    values = scratch.root / "flux/deploy/production/values.yaml"
    values.write_text(
        values.read_text()
        + "hubEnvSecret:\n  name: analysis-facility-hub-env\n  keys: [AF_OIDC_CLIENT_SECRET, AF_OPERATOR_TOKEN, AF_EXTRA]\n"
    )
    messages = _messages(check_flux(scratch))
    assert any(
        "hubEnvSecret.keys: Secret analysis-facility-hub-env has no AF_EXTRA" in m for m in messages
    ), messages


def test_kustomize_failure_names_the_directory(scratch) -> None:
    edit(scratch.root / "flux/deploy/staging/kustomization.yaml", "  - hub-env.sops.yaml", "  - hub-env.yaml")
    messages = _messages(check_flux(scratch))
    assert any(m.startswith("flux/deploy/staging: kustomize build failed") for m in messages), messages


def test_unencrypted_secret_is_rejected(scratch) -> None:
    leak = scratch.root / "flux/deploy/production/iam.yaml"
    leak.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: iam\nstringData:\n  AF_OIDC_CLIENT_SECRET: hunter2\n"
    )
    messages = _messages(check_committed_secrets(scratch))
    assert (
        "flux/deploy/production/iam.yaml: stringData.AF_OIDC_CLIENT_SECRET: Secret 'iam': not SOPS-encrypted (run sops --encrypt -i)"
        in messages
    )
    assert (
        "flux/deploy/production/iam.yaml: sops: Secret 'iam': no SOPS metadata: the file is not encrypted"
        in messages
    )


def test_secret_encrypted_for_another_cluster_is_rejected(scratch) -> None:
    shutil.copy(
        scratch.root / "flux/deploy/staging/hub-env.sops.yaml",
        scratch.root / "flux/deploy/production/hub-env.sops.yaml",
    )
    messages = _messages(check_committed_secrets(scratch))
    assert any(
        m.startswith("flux/deploy/production/hub-env.sops.yaml: sops.age: encrypted for") for m in messages
    )


def test_a_value_decrypted_in_place_is_rejected(scratch) -> None:
    path = scratch.root / "flux/deploy/staging/hub-env.sops.yaml"
    text = path.read_text()
    start = text.index("AF_OPERATOR_TOKEN: ENC[")
    end = text.index("\n", start)
    path.write_text(text[:start] + "AF_OPERATOR_TOKEN: plain-text-token" + text[end:])
    assert _messages(check_committed_secrets(scratch)) == [
        "flux/deploy/staging/hub-env.sops.yaml: stringData.AF_OPERATOR_TOKEN: Secret 'analysis-facility-hub-env': "
        "not SOPS-encrypted (run sops --encrypt -i)"
    ]


def test_sops_roundtrip_uses_the_repository_rules(scratch) -> None:
    assert roundtrip(scratch) == []
    # a rule that encrypts everything would hide the Secret's name from review: the round trip notices
    edit(
        scratch.root / ".sops.yaml",
        "encrypted_regex: ^(data|stringData)$\n    age: age1p4",
        "encrypted_regex: .*\n    age: age1p4",
    )
    assert any("metadata was encrypted" in str(f) for f in roundtrip(scratch))
