"""Mistakes in the chart and its values make the chart check fail, naming the file and the key."""

from __future__ import annotations

from af.tools.check.chart import check_chart, check_dependencies, render, standalone_copy
from af.tools.check.values_reference import check_reference
from tests.k8s.conftest import edit, errors

FULL = "charts/analysis-facility/examples/full.yaml"
STAGING = "flux/deploy/staging/values.yaml"
DEFAULTS = "charts/analysis-facility/values.yaml"


def _messages(findings) -> list[str]:
    return [str(f) for f in errors(findings)]


def test_renders_our_templates_with_every_values_file(real_repo) -> None:
    with standalone_copy(real_repo) as chart_dir:
        rendered, findings = render(real_repo, chart_dir, real_repo.root / FULL)
    assert errors(findings) == []
    kinds = sorted(d["kind"] for d in rendered.documents())
    # full.yaml deploys ServiceX too: its Deployment, PVC, Service and two NetworkPolicies; the settings-rollout
    # hook: its Job, ServiceAccount, Role, RoleBinding and NetworkPolicy
    assert kinds == [
        "ConfigMap", "CronJob", *["Deployment"] * 2, "Job", *["NetworkPolicy"] * 8, "PersistentVolumeClaim",
        "Role", "RoleBinding", *["Service"] * 2, "ServiceAccount",
    ]  # fmt: skip
    settings = next(d for d in rendered.documents() if d["kind"] == "ConfigMap")["data"]["settings.yaml"]
    assert "platform: kubernetes" in settings and "base_url: /af/" in settings


def test_typo_in_our_values(scratch) -> None:
    edit(scratch.root / FULL, "healthCheck:\n  enabled: true", "healthCheck:\n  enabeld: true")
    assert f"{FULL}: healthCheck.enabeld: unknown key (not in the schema: a typo?)" in _messages(
        check_chart(scratch, only=[FULL])
    )


def test_typo_in_subchart_values_of_a_cluster(scratch) -> None:
    edit(scratch.root / STAGING, "  proxy:\n    service:", "  proxy:\n    servce:")
    messages = _messages(check_chart(scratch, only=[STAGING]))
    assert f"{STAGING}: jupyterhub.proxy.servce: unknown key (not in the schema: a typo?)" in messages


def test_wrong_type_in_dask_gateway_values_blames_the_defaults(scratch) -> None:
    edit(scratch.root / "charts/analysis-facility/values.yaml", "      type: ClusterIP\n", "      type: 7\n")
    messages = _messages(check_chart(scratch, only=[DEFAULTS]))
    assert any(
        m.startswith("charts/analysis-facility/values.yaml: dask-gateway.traefik.service.type:")
        for m in messages
    ), messages


def test_secret_variable_not_provided_by_the_env_secret(scratch) -> None:
    edit(scratch.root / STAGING, "client_secret_env: AF_OIDC_CLIENT_SECRET", "client_secret_env: IAM_SECRET")
    messages = _messages(check_chart(scratch, only=[STAGING]))
    assert any(
        m.startswith(f"{STAGING}: settings.auth.client_secret_env: 'IAM_SECRET' is not one of")
        for m in messages
    )


def test_gateway_prefix_must_follow_the_hub_base_url(scratch) -> None:
    edit(scratch.root / FULL, "    prefix: /af/services/dask-gateway", "    prefix: /services/dask-gateway")
    messages = _messages(check_chart(scratch, only=[FULL]))
    assert any(
        m.startswith(f"{FULL}: dask-gateway.gateway.prefix: '/services/dask-gateway'") for m in messages
    )


def test_gateway_addresses_must_be_reachable_from_user_servers(scratch) -> None:
    edit(
        scratch.root / FULL,
        "address: http://proxy-public/af/services/dask-gateway",
        "address: http://traefik-dask-gateway/af/services/dask-gateway",
    )
    edit(scratch.root / FULL, "gateway://traefik-dask-gateway:8786", "gateway://traefik-dask-gateway:80")
    messages = _messages(check_chart(scratch, only=[FULL]))
    assert (
        f"{FULL}: settings.gateway.address: 'http://traefik-dask-gateway/af/services/dask-gateway', "
        "expected 'http://proxy-public/af/services/dask-gateway'"
    ) in messages, messages
    assert (
        f"{FULL}: settings.gateway.proxy_address: 'gateway://traefik-dask-gateway:80', "
        "expected 'gateway://traefik-dask-gateway:8786'"
    ) in messages, messages


def test_hub_start_up_fails_without_a_variable_hub_config_needs(scratch) -> None:
    values = scratch.root / STAGING
    values.write_text(values.read_text() + "  hub:\n    extraEnv:\n      AF_GATEWAY_API_TOKEN: null\n")
    messages = _messages(check_chart(scratch, only=[STAGING]))
    assert any(
        m.startswith(
            f"{STAGING}: jupyterhub.hub.extraEnv: the hub's configuration fails with the environment"
        )
        and "AF_GATEWAY_API_TOKEN is not set" in m
        for m in messages
    ), messages


def test_gateway_start_up_fails_without_the_settings(scratch) -> None:
    values = scratch.root / STAGING
    values.write_text(values.read_text() + "dask-gateway:\n  gateway:\n    env: []\n")
    messages = _messages(check_chart(scratch, only=[STAGING]))
    assert (
        f"{STAGING}: dask-gateway.gateway.extraConfig: the gateway server's configuration fails: "
        "KeyError: 'AF_SETTINGS_YAML'"
    ) in messages, messages


def test_settings_rejected_by_hub_config(scratch) -> None:
    # a rule across keys, which the JSON schema cannot express: a worker larger than the user's total
    edit(
        scratch.root / STAGING,
        "server_idle_timeout: 1800\n",
        "server_idle_timeout: 1800\n  gateway:\n    worker: {cores: 200}\n",
    )
    messages = _messages(check_chart(scratch, only=[STAGING]))
    assert any(
        m.startswith(
            f"{STAGING}: settings.gateway.worker.cores: rejected by hub_config.settings.load_settings"
        )
        and "exceeds limits.max_cores" in m
        for m in messages
    ), messages


def test_manifest_field_typo_in_a_template(scratch) -> None:
    edit(
        scratch.root / "charts/analysis-facility/templates/healthcheck-cronjob.yaml",
        "  concurrencyPolicy: Forbid",
        "  concurrencyPolicy: Forbid\n  startingDeadlineSecond: 60",
    )
    messages = _messages(check_chart(scratch, only=[DEFAULTS]))
    assert any(
        "templates/healthcheck-cronjob.yaml" in m and "startingDeadlineSecond" in m and "CronJob" in m
        for m in messages
    ), messages


def test_health_check_command_is_parsed_by_the_af_cli(scratch) -> None:
    edit(scratch.chart / "templates/healthcheck-cronjob.yaml", "--token-env,", "--token-environment,")
    messages = _messages(check_chart(scratch, only=[DEFAULTS]))
    assert any(
        "CronJob analysis-facility-healthcheck: container healthcheck: `af health --url http://proxy-public"
        in m
        and "unrecognized arguments: --token-environment" in m
        for m in messages
    ), messages


def test_chart_must_not_render_secrets(scratch) -> None:
    (scratch.chart / "templates/leak.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: leak\nstringData:\n  token: {{ .Values.settings.hub.base_url }}\n"
    )
    messages = _messages(check_chart(scratch, only=[DEFAULTS]))
    assert any("templates/leak.yaml" in m and "renders a Secret" in m for m in messages), messages


def test_missing_dependency_declaration_is_reported(scratch) -> None:
    chart_yaml = scratch.chart / "Chart.yaml"
    text = chart_yaml.read_text()
    chart_yaml.write_text(text[: text.index("  - name: dask-gateway")])
    messages = _messages(check_dependencies(scratch))
    assert any(
        m.startswith("charts/analysis-facility/Chart.yaml: dependencies: declares ['jupyterhub']")
        for m in messages
    )


def test_subcharts_are_switched_off_only_by_their_condition(scratch) -> None:
    edit(scratch.chart / "Chart.yaml", "    condition: dask-gateway.enabled\n", "")
    edit(
        scratch.chart / "values.yaml",
        '  enabled: true\n  fullnameOverride: ""',
        '  enabled: false\n  fullnameOverride: ""',
    )
    messages = _messages(check_dependencies(scratch))
    assert (
        "charts/analysis-facility/Chart.yaml: dependencies[1].condition: None: write 'dask-gateway.enabled' so "
        "that the subchart can be switched off" in messages
    ), messages
    assert any(m.startswith(f"{DEFAULTS}: jupyterhub.enabled: must stay true by default") for m in messages)


def test_subchart_version_without_a_schema_is_reported(scratch) -> None:
    edit(scratch.chart / "Chart.yaml", 'version: "4.4.0"', 'version: "4.5.0"')
    messages = _messages(check_dependencies(scratch))
    assert any(
        m.startswith(
            "charts/analysis-facility/Chart.yaml: dependencies[0].version: '4.5.0': the values are validated"
        )
        for m in messages
    ), messages


def test_values_reference_must_be_regenerated(scratch) -> None:
    edit(
        scratch.chart / "values.schema.json",
        '"description": "Cron schedule."',
        '"description": "When to run."',
    )
    assert [str(f) for f in check_reference(scratch)] == [
        "docs/values-reference.md: out of date with hub_config/settings_schema.py and the chart's values: "
        "run `make values-reference`"
    ]


def test_user_pods_of_each_profile_are_made_by_kubespawner_and_judged(real_repo, tmp_path) -> None:
    from af.tools.check import startup

    with standalone_copy(real_repo) as chart_dir:
        rendered, _ = render(real_repo, chart_dir, real_repo.root / "flux/deploy/production/values.yaml")
    job = startup.hub_job(rendered.merged, rendered.documents(), "prod.yaml", tmp_path)
    assert startup.run_jobs([job], tmp_path) == []
    # the same job judged against a pod without the gateway's address and with another image
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-u"},
        "spec": {"containers": [{"name": "notebook", "image": "jupyter/base-notebook:latest", "env": []}]},
    }
    messages = [str(f) for f in startup._judge_pods(job, {"default": pod, "large": pod})]
    assert (
        "prod.yaml: settings.profiles[0].image: pod runs jupyter/base-notebook:latest, not ghcr.io/physlite-facility/notebook:0.1.0"
        in messages
    )
    assert "prod.yaml: settings.gateway.address: user pods get None" in messages


def test_user_pods_mount_the_grid_ca_folder_beside_z2jhs_volumes(real_repo, tmp_path) -> None:
    """full.yaml sets settings.grid_ca.configmap: KubeSpawner's pods (z2jh's singleuser values applied before our
    hub file, as z2jh does) carry its volume and mount; a pod without them is named."""
    from af.tools.check import startup

    with standalone_copy(real_repo) as chart_dir:
        rendered, _ = render(real_repo, chart_dir, real_repo.root / FULL)
    job = startup.hub_job(rendered.merged, rendered.documents(), FULL, tmp_path)
    assert startup.run_jobs([job], tmp_path) == []
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-u"},
        "spec": {
            "containers": [{"name": "notebook", "env": [{"name": "X509_CERT_DIR", "value": "/etc/grid"}]}]
        },
    }
    messages = [str(f) for f in startup._judge_pods(job, {"default": pod})]
    assert (
        f"{FULL}: settings.grid_ca.configmap: user pods do not mount ConfigMap 'grid-ca-certificates' read-only "
        "at X509_CERT_DIR ('/etc/grid'; volumes [], mounts [])"
    ) in messages, messages


def test_kube_version_below_a_subcharts_fails(scratch) -> None:
    edit(scratch.chart / "Chart.yaml", 'kubeVersion: ">=1.30.0-0"', 'kubeVersion: ">=1.28.0-0"')
    messages = _messages(check_dependencies(scratch))
    assert any(
        m.startswith(
            "charts/analysis-facility/Chart.yaml: kubeVersion: '>=1.28.0-0' allows Kubernetes 1.28.0, "
        )
        and "dask-gateway 2026.3.0 requires '>=1.30.0-0'" in m
        for m in messages
    ), messages


def test_kube_version_that_cannot_be_compared_fails(scratch) -> None:
    edit(scratch.chart / "Chart.yaml", 'kubeVersion: ">=1.30.0-0"', 'kubeVersion: "^1.30"')
    assert any(
        m.startswith("charts/analysis-facility/Chart.yaml: kubeVersion: '^1.30': write a lower bound")
        for m in _messages(check_dependencies(scratch))
    )


def test_chart_label_that_flux_build_versions_break(scratch) -> None:
    # Flux builds the chart as version <version>+<commit>: a label made of the raw version is refused by the API
    # server (found when Flux installed the release on the real cluster)
    helpers = scratch.root / "charts/analysis-facility/templates/_helpers.tpl"
    edit(helpers, '.Chart.Version | replace "+" "_"', ".Chart.Version")
    messages = _messages(check_chart(scratch, only=[STAGING]))
    assert any(
        "metadata.labels.helm.sh/chart: 'analysis-facility-0.1.0+0123456789ab' is not a valid label value"
        in m
        for m in messages
    ), messages
