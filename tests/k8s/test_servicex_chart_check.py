"""The chart's ServiceX service (templates/servicex.yaml, values `servicex` and settings.servicex): what it renders,
and mistakes in it that `make check` refuses, naming the file and the key."""

from __future__ import annotations

import pytest
import yaml

from af.tools.check.chart import check_chart, render, standalone_copy
from af.tools.check.netpol import SERVICEX_FORBIDDEN, SERVICEX_REQUIRED, allowed
from af.tools.check.z2jh_netpol import z2jh_policies
from tests.k8s.conftest import edit, errors

FULL = "charts/analysis-facility/examples/full.yaml"
DEFAULTS = "charts/analysis-facility/values.yaml"
TEMPLATE = "charts/analysis-facility/templates/servicex.yaml"
NAME = "analysis-facility-servicex"


def _messages(repo, only=FULL) -> list[str]:
    return [str(f) for f in errors(check_chart(repo, only=[only]))]


def _rendered(repo, values=FULL):
    with standalone_copy(repo) as chart_dir:
        rendered, findings = render(repo, chart_dir, repo.root / values if values else None)
    assert errors(findings) == []
    return rendered


def test_the_service_is_deployed_restricted_from_the_hub_image_with_its_settings(real_repo) -> None:
    rendered = _rendered(real_repo)
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in rendered.documents()}
    deployment = by_kind["Deployment", NAME]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "ghcr.io/physlite-facility/hub:0.1.0"
    assert container["command"] == [
        "python", "-m", "af.servicex", "--settings=/usr/local/etc/analysis-facility/settings.yaml",
        "--listen=0.0.0.0:5000", "--state=/var/lib/servicex", "--hub-api=http://hub:8081/af/hub/api",
    ]  # fmt: skip
    # Pod Security "restricted", as the dashboard guard
    assert pod["securityContext"]["runAsUser"] == 1000 and pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert env["JUPYTERHUB_API_TOKEN"] == {"name": "hub", "key": "hub.services.servicex.apiToken"}
    for key in ("AF_SERVICEX_S3_ACCESS_KEY", "AF_SERVICEX_S3_SECRET_KEY", "AF_SERVICEX_SECRET"):
        assert env[key] == {"name": "analysis-facility-servicex", "key": key}
    assert container["readinessProbe"]["httpGet"]["path"] == "/af/services/servicex/servicex"
    assert by_kind["PersistentVolumeClaim", NAME]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert by_kind["Service", NAME]["spec"]["ports"] == [{"name": "http", "port": 5000, "targetPort": "http"}]
    # the service reads the settings the hub reads
    settings = yaml.safe_load(by_kind["ConfigMap", "analysis-facility-settings"]["data"]["settings.yaml"])
    assert settings["servicex"]["s3_endpoint"] == "http://s3.storage.svc:8333"


def test_without_the_facilitys_servicex_nothing_is_rendered(real_repo) -> None:
    names = {d["metadata"]["name"] for d in _rendered(real_repo, None).documents()}
    assert not {n for n in names if "servicex" in n}


def test_the_contract_of_the_service_holds(real_repo) -> None:
    rendered = _rendered(real_repo)
    policies = [d for d in rendered.documents() if d["kind"] == "NetworkPolicy"] + z2jh_policies(
        rendered.merged
    )
    assert [str(f) for f in SERVICEX_REQUIRED if not allowed(policies, f)] == []
    assert [str(f) for f in SERVICEX_FORBIDDEN if allowed(policies, f, pod_ips_in_blocks=True)] == []
    # the S3 server's rule (servicex.s3Egress) is given to the service, the workers and users' servers
    rule = rendered.merged["servicex"]["s3Egress"][0]
    egress = {p["metadata"]["name"]: p["spec"]["egress"] for p in policies}
    for name in (NAME, "analysis-facility-servicex-results", "analysis-facility-dask-clusters"):
        assert rule in egress[name], name


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        (  # the hub's proxy would route to another address than the chart's Service
            [
                (
                    FULL,
                    "service_url: http://analysis-facility-servicex:5000",
                    "service_url: http://servicex:5000",
                )
            ],
            "settings.servicex.service_url: 'http://servicex:5000', expected "
            "'http://analysis-facility-servicex:5000' (the chart's Service of the service)",
        ),
        (  # users' servers would leave the cluster for the public URL
            [
                (FULL, "    address: http://proxy-public/af/services/servicex\n", ""),
                (DEFAULTS, "    address: http://proxy-public/services/servicex\n", ""),
            ],
            "settings.servicex.address: '', expected 'http://proxy-public/af/services/servicex' (users' servers "
            "reach the service through the hub's proxy inside the cluster)",
        ),
        (
            [(FULL, "s3_endpoint: http://s3.storage.svc:8333", "s3_endpoint: http://127.0.0.1:8333")],
            "settings.servicex.s3_endpoint: 'http://127.0.0.1:8333' is each pod's own loopback: give the S3 "
            "server's address as pods reach it",
        ),
    ],
    ids=["service_url", "address", "s3_endpoint"],
)
def test_settings_the_chart_cannot_serve_are_refused(scratch, edits, message) -> None:
    for path, old, new in edits:
        edit(scratch.root / path, old, new)
    assert f"{FULL}: {message}" in _messages(scratch)


def test_the_service_token_must_come_from_z2jh(scratch) -> None:
    edit(
        scratch.chart / "values.yaml",
        "      AF_SERVICEX_API_TOKEN:\n        valueFrom:\n          secretKeyRef:\n            name: hub\n"
        "            key: hub.services.servicex.apiToken\n",
        "",
    )
    edit(scratch.chart / "values.yaml", "      servicex: {}\n", "")
    messages = _messages(scratch)
    assert (
        f"{FULL}: jupyterhub.hub.extraEnv.AF_SERVICEX_API_TOKEN: missing: must come from Secret 'hub' key "
        "'hub.services.servicex.apiToken'"
    ) in messages, messages
    assert any(m.startswith(f"{FULL}: jupyterhub.hub.services.servicex: missing") for m in messages)
    # and the hub itself does not start without it
    assert any("servicex.api_token_env: environment variable AF_SERVICEX_API_TOKEN" in m for m in messages)


def test_bad_servicex_values_are_refused_by_the_schema(scratch) -> None:
    edit(scratch.root / FULL, "        - port: 8333\n", "        - prt: 8333\n")
    edit(scratch.root / FULL, "    retries: 3\n", "    retries: -1\n")
    messages = _messages(scratch)
    assert f"{FULL}: servicex.s3Egress[0].ports[0].prt: unknown key (not in the schema: a typo?)" in messages
    assert any(m.startswith(f"{FULL}: settings.servicex.retries:") and "-1" in m for m in messages), messages


def test_the_deployment_without_an_s3_variable_is_refused_by_the_services_parser(scratch) -> None:
    edit(
        scratch.chart / "templates/servicex.yaml",
        '"AF_SERVICEX_S3_ACCESS_KEY" "AF_SERVICEX_S3_SECRET_KEY"',
        '"AF_SERVICEX_S3_ACCESS_KEY"',
    )
    assert any(
        m.startswith(
            f"{TEMPLATE} (values {FULL}): Deployment {NAME}: container servicex: `python -m af.servicex"
        )
        and m.endswith("AF_SERVICEX_S3_SECRET_KEY is not set (the S3 server's admin identity)")
        for m in _messages(scratch)
    )


def test_the_settings_must_be_mounted_where_the_service_reads_them(scratch) -> None:
    edit(
        scratch.chart / "templates/servicex.yaml",
        "              mountPath: /usr/local/etc/analysis-facility/settings.yaml",
        "              mountPath: /etc/settings.yaml",
    )
    assert (
        f"{TEMPLATE} (values {FULL}): Deployment {NAME}: container servicex: "
        "--settings=/usr/local/etc/analysis-facility/settings.yaml: no settings.yaml of the chart is mounted there"
    ) in _messages(scratch)


def test_the_service_closed_to_the_proxy_fails_the_contract(scratch) -> None:
    edit(
        scratch.chart / "templates/networkpolicies.yaml",
        """    # <base_url>services/servicex/ is routed to the service by the hub's proxy
    - from:
        - podSelector:
            matchLabels:
              component: proxy
""",
        """    - from:
        - podSelector:
            matchLabels:
              component: hub
""",
    )
    assert any(
        "proxy -> servicex:5000 is blocked by the ingress of NetworkPolicy analysis-facility-servicex" in m
        for m in _messages(scratch)
    )


def test_a_scheduler_of_its_own_behind_the_policies_is_a_warning(scratch) -> None:
    edit(scratch.root / FULL, "    retries: 3\n", "    retries: 3\n    scheduler_address: tcp://dask:8786\n")
    findings = check_chart(scratch, only=[FULL])
    assert errors(findings) == []
    assert any(
        f.key == "settings.servicex.scheduler_address" and f.warning and "traefik's TCP port" in f.message
        for f in findings
    ), [str(f) for f in findings]


def test_user_pods_get_the_service_in_the_cluster(real_repo, tmp_path) -> None:
    from af.tools.check import startup

    rendered = _rendered(real_repo)
    job = startup.hub_job(rendered.merged, rendered.documents(), "full.yaml", tmp_path)
    assert startup.run_jobs([job], tmp_path) == []  # KubeSpawner's pods carry the in-cluster endpoint
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-u"},
        "spec": {"containers": [{"name": "notebook", "image": "ghcr.io/physlite-facility/notebook:0.1.0"}]},
    }
    messages = [str(f) for f in startup._judge_pods(job, {"default": pod, "large": pod})]
    assert (
        "full.yaml: settings.servicex.address: user pods get AF_SERVICEX_ENDPOINT None, not the service through "
        "the proxy in the cluster ('http://proxy-public/af/services/servicex')"
    ) in messages, messages


def test_the_service_reaches_rucio_with_the_settings_ca_and_egress(real_repo, tmp_path) -> None:
    from af.servicex.__main__ import parse_args

    rendered = _rendered(real_repo)
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in rendered.documents()}
    pod = by_kind["Deployment", NAME]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    # the service's own parser reads the rucio server from the settings the chart renders
    settings = tmp_path / "settings.yaml"
    settings.write_text(by_kind["ConfigMap", "analysis-facility-settings"]["data"]["settings.yaml"])
    environ = {e["name"]: "placeholder" for e in container["env"]}
    argv = [a for a in container["command"][3:] if not a.startswith("--settings=")]
    args = parse_args([f"--settings={settings}", *argv], environ)
    assert (args.rucio_host, args.rucio_auth_host, args.rucio_ca_cert) == (
        "https://voatlasrucio-server-prod.cern.ch",
        "https://voatlasrucio-auth-prod.cern.ch",
        "/usr/local/etc/analysis-facility/rucio-ca/ca.pem",
    )
    # the CA bundle is the ConfigMap servicex.rucioCa, mounted where rucio_ca_cert points
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["rucio-ca"]["configMap"] == {
        "name": "grid-ca-bundle",
        "items": [{"key": "ca.pem", "path": "ca.pem"}],
    }
    mount = {m["name"]: m for m in container["volumeMounts"]}["rucio-ca"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/usr/local/etc/analysis-facility/rucio-ca", True)
    # the service (not users' servers) may reach rucio; the workers read the replicas through dataEgress
    rule = rendered.merged["servicex"]["rucioEgress"][0]
    egress = {
        d["metadata"]["name"]: d["spec"]["egress"]
        for d in rendered.documents()
        if d["kind"] == "NetworkPolicy"
    }
    assert rule in egress[NAME]
    assert rule not in egress["analysis-facility-servicex-results"]
    assert {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": rendered.merged["networkPolicy"]["dataEgress"][0][
        "except"]}}]} in egress["analysis-facility-dask-clusters"]  # fmt: skip


def test_without_rucio_values_no_ca_is_mounted_and_the_default_egress_is_https(real_repo) -> None:
    rendered = _rendered(real_repo, DEFAULTS)
    assert rendered.merged["servicex"]["rucioEgress"][0]["ports"] == [{"port": 443, "protocol": "TCP"}]
    for doc in rendered.documents():
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == NAME:
            assert "rucio-ca" not in {v["name"] for v in doc["spec"]["template"]["spec"]["volumes"]}


def test_bad_rucio_values_are_named(scratch) -> None:
    edit(
        scratch.root / FULL,
        "rucio_host: https://voatlasrucio-server-prod.cern.ch",
        "rucio_host: voatlasrucio-server-prod.cern.ch",
    )
    edit(scratch.root / FULL, "    configMap: grid-ca-bundle\n", "    configMap: Grid_CA\n")
    edit(scratch.root / FULL, "        - port: 443\n", "        - prt: 443\n")
    messages = _messages(scratch)
    assert any(
        m.startswith(f"{FULL}: settings.servicex.rucio_host:") and "'voatlasrucio-server-prod.cern.ch'" in m
        for m in messages
    ), messages
    assert any(m.startswith(f"{FULL}: servicex.rucioCa.configMap:") for m in messages), messages
    assert (
        f"{FULL}: servicex.rucioEgress[0].ports[0].prt: unknown key (not in the schema: a typo?)" in messages
    )


def test_a_rucio_ca_cert_without_its_volume_is_refused(scratch) -> None:
    edit(scratch.root / FULL, "    configMap: grid-ca-bundle\n", '    configMap: ""\n')
    assert (
        f"{TEMPLATE} (values {FULL}): Deployment {NAME}: container servicex: "
        "--rucio-ca-cert=/usr/local/etc/analysis-facility/rucio-ca/ca.pem: no volume is mounted there "
        "(servicex.rucioCa)"
    ) in _messages(scratch)
