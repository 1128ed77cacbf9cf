"""Consistency between our settings and the values handed to the subcharts (names that must agree).

Helm cannot template a subchart's values from the parent's, so a few names are written twice: the Secret
and variables of the hub's environment, the ConfigMap mounted into the hub and the gateway, the gateway's
hub token, the URL prefixes. These checks make a mismatch fail offline instead of in a crash-looping pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from af.tools.check.findings import Finding
from hub_config.settings_schema import AuthSettings, GatewaySettings, ServicesSettings, ServiceXSettings

SETTINGS_DIR = "/usr/local/etc/jupyterhub/analysis-facility"
GUARD_URL = "http://analysis-facility-dashboard-guard:8788"
SERVICEX_URL = "http://analysis-facility-servicex:5000"  # templates/servicex.yaml: its Service and port
CONFIG_D = "/usr/local/etc/jupyterhub/jupyterhub_config.d"


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def _env_entries(extra_env: Any) -> dict[str, Any]:
    """z2jh's extraEnv as {name: spec}: it accepts a mapping or a list of {name, ...}."""
    if isinstance(extra_env, Mapping):
        return {k: (v if isinstance(v, Mapping) else {"value": v}) for k, v in extra_env.items()}
    if isinstance(extra_env, list):
        return {e.get("name"): e for e in extra_env if isinstance(e, Mapping)}
    return {}


# the names of environment variables a values file may leave out: hub_config's defaults (the settings' schema)
ENV_SETTINGS = {
    ("auth", "client_secret_env"): AuthSettings.model_fields["client_secret_env"].default,
    ("services", "operator_token_env"): ServicesSettings.model_fields["operator_token_env"].default,
}
GATEWAY_TOKEN_ENV = ("gateway", "api_token_env")
GATEWAY_TOKEN_DEFAULT = GatewaySettings.model_fields["api_token_env"].default
# z2jh generates a token per entry of hub.services into its Secret `hub` under this key
Z2JH_SERVICE_TOKEN = ("hub", "hub.services.dask-gateway.apiToken")
SERVICEX_TOKEN_ENV = ("servicex", "api_token_env")
SERVICEX_TOKEN_DEFAULT = ServiceXSettings.model_fields["api_token_env"].default
Z2JH_SERVICEX_TOKEN = ("hub", "hub.services.servicex.apiToken")
# ... and the auth_state encryption key(s), which hub_config reads from JUPYTERHUB_CRYPT_KEY
Z2JH_CRYPT_KEY = ("JUPYTERHUB_CRYPT_KEY", ("hub", "hub.config.CryptKeeper.keys"))


def check_hub_env(values: Mapping[str, Any], blame: str) -> list[Finding]:
    """The hub's environment: secrets named by the settings come from hubEnvSecret or z2jh's Secret.

    Example:
        >>> v = {"settings": {"auth": {"client_secret_env": "S"}}, "hubEnvSecret": {"name": "e", "keys": []},
        ...      "jupyterhub": {"hub": {}}}
        >>> [f.key for f in check_hub_env(v, "v.yaml")][0]
        'settings.auth.client_secret_env'
    """
    findings = []
    secret = _get(values, "hubEnvSecret", "name")
    keys = _get(values, "hubEnvSecret", "keys") or []
    env = _env_entries(_get(values, "jupyterhub", "hub", "extraEnv"))
    for path, default in ENV_SETTINGS.items():
        wanted = _get(values, "settings", *path) or default
        if wanted not in keys:
            findings.append(
                Finding(
                    blame, "settings." + ".".join(path), f"{wanted!r} is not one of hubEnvSecret.keys {keys}"
                )
            )
    expected_refs = {key: (secret, key) for key in keys}
    token_env = _get(values, "settings", *GATEWAY_TOKEN_ENV) or GATEWAY_TOKEN_DEFAULT
    expected_refs[token_env] = Z2JH_SERVICE_TOKEN
    if servicex_enabled(values):
        servicex_env = _get(values, "settings", *SERVICEX_TOKEN_ENV) or SERVICEX_TOKEN_DEFAULT
        expected_refs[servicex_env] = Z2JH_SERVICEX_TOKEN
    expected_refs[Z2JH_CRYPT_KEY[0]] = Z2JH_CRYPT_KEY[1]
    for var, (name, key) in expected_refs.items():
        ref = _get(env.get(var), "valueFrom", "secretKeyRef")
        where = f"jupyterhub.hub.extraEnv.{var}"
        if not isinstance(ref, Mapping):
            findings.append(Finding(blame, where, f"missing: must come from Secret {name!r} key {key!r}"))
        elif (ref.get("name"), ref.get("key")) != (name, key):
            findings.append(
                Finding(
                    blame,
                    f"{where}.valueFrom.secretKeyRef",
                    f"refers to {ref.get('name')}/{ref.get('key')}, expected {name}/{key}",
                )
            )
    for var, spec in env.items():
        if "value" in spec and any(w in str(var).upper() for w in ("SECRET", "TOKEN", "PASSWORD")):
            findings.append(
                Finding(
                    blame,
                    f"jupyterhub.hub.extraEnv.{var}",
                    "a secret in clear text: use valueFrom.secretKeyRef",
                )
            )
    return findings


def servicex_enabled(values: Mapping[str, Any]) -> bool:
    """Whether the chart deploys the facility's ServiceX service (``settings.servicex.facility``).

    Example:
        >>> servicex_enabled({"settings": {"servicex": {"facility": True}}})
        True
    """
    return _get(values, "settings", "servicex", "facility") is True


def check_servicex(values: Mapping[str, Any], blame: str) -> list[Finding]:
    """With the facility's ServiceX: the hub routes to the chart's Service, users' servers reach it through the
    hub's proxy inside the cluster, z2jh makes its token, and its S3 server is not the pod's own loopback.

    Example:
        >>> v = {"settings": {"servicex": {"facility": True, "service_url": "http://localhost:5000"}}}
        >>> [f.key for f in check_servicex(v, "v.yaml")][:2]
        ['settings.servicex.service_url', 'settings.servicex.address']
    """
    if not servicex_enabled(values):
        return []
    findings = []
    base = (_get(values, "settings", "hub", "base_url") or "/").rstrip("/")
    expected = {
        "service_url": (SERVICEX_URL, "the chart's Service of the service"),
        "address": (
            f"http://proxy-public{base}/services/servicex",
            "users' servers reach the service through the hub's proxy inside the cluster",
        ),
    }
    for key, (want, why) in expected.items():
        value = str(_get(values, "settings", "servicex", key) or "")
        if value.rstrip("/") != want:
            findings.append(
                Finding(blame, f"settings.servicex.{key}", f"{value!r}, expected {want!r} ({why})")
            )
    s3 = str(_get(values, "settings", "servicex", "s3_endpoint") or ServiceXSettings().s3_endpoint)
    host = s3.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    if host in ("localhost", "127.0.0.1", "::1") or host.startswith("127."):
        findings.append(
            Finding(
                blame,
                "settings.servicex.s3_endpoint",
                f"{s3!r} is each pod's own loopback: give the S3 server's address as pods reach it",
            )
        )
    scheduler = _get(values, "settings", "servicex", "scheduler_address")
    if scheduler and _get(values, "networkPolicy", "enabled") is not False:
        findings.append(
            Finding(
                blame,
                "settings.servicex.scheduler_address",
                f"{scheduler!r}: the service's NetworkPolicy lets it reach dask only through traefik's TCP port "
                "(its own dask-gateway cluster); add a policy for this scheduler",
                warning=True,
            )
        )
    if "servicex" not in (_get(values, "jupyterhub", "hub", "services") or {}):
        findings.append(
            Finding(
                blame,
                "jupyterhub.hub.services.servicex",
                "missing: z2jh generates the service's hub token (hub.services.servicex.apiToken) for it",
            )
        )
    return findings


def check_prefixes(values: Mapping[str, Any], blame: str) -> list[Finding]:
    """The hub's base URL agrees between settings and z2jh, and the gateway sits under it as a hub service."""
    findings = []
    base = _get(values, "settings", "hub", "base_url") or "/"
    z2jh_base = _get(values, "jupyterhub", "hub", "baseUrl") or "/"
    if base.rstrip("/") != z2jh_base.rstrip("/"):
        findings.append(
            Finding(
                blame, "jupyterhub.hub.baseUrl", f"{z2jh_base!r} differs from settings.hub.base_url {base!r}"
            )
        )
    gateway = values.get("dask-gateway") or {}
    services = _get(values, "jupyterhub", "hub", "services") or {}
    if "dask-gateway" not in services:
        findings.append(
            Finding(blame, "jupyterhub.hub.services.dask-gateway", "missing: the gateway is a hub service")
        )
    expected = base.rstrip("/") + "/services/dask-gateway"
    prefix = _get(gateway, "gateway", "prefix")
    if prefix != expected:
        findings.append(Finding(blame, "dask-gateway.gateway.prefix", f"{prefix!r}, expected {expected!r}"))
    traefik = f"traefik-{gateway.get('fullnameOverride') or 'dask-gateway'}"
    tcp_port = _get(gateway, "traefik", "service", "ports", "tcp", "port")
    expected_addresses = {
        # the gateway API through the hub's proxy and the dashboard guard (NetworkPolicies allow nothing else)
        "address": f"http://proxy-public{expected}",
        # schedulers on traefik's own TCP port (user servers may not reach traefik's web port)
        "proxy_address": f"gateway://{traefik}:{tcp_port}",
        "service_url": GUARD_URL,
    }
    for key, want in expected_addresses.items():
        value = _get(values, "settings", "gateway", key)
        if value is not None and str(value).rstrip("/") != want:
            findings.append(Finding(blame, f"settings.gateway.{key}", f"{value!r}, expected {want!r}"))
    public = _get(values, "settings", "gateway", "public_address")
    if public is not None and public.rstrip("/") != expected:
        findings.append(
            Finding(blame, "settings.gateway.public_address", f"{public!r}, expected {expected + '/'!r}")
        )
    auth = _get(gateway, "gateway", "auth") or {}
    if auth.get("type") != "jupyterhub":
        findings.append(
            Finding(blame, "dask-gateway.gateway.auth.type", f"{auth.get('type')!r}, expected 'jupyterhub'")
        )
    hub_auth = auth.get("jupyterhub") or {}
    token = (hub_auth.get("apiTokenFromSecretName"), hub_auth.get("apiTokenFromSecretKey"))
    if token != ("hub", "hub.services.dask-gateway.apiToken"):
        findings.append(
            Finding(
                blame,
                "dask-gateway.gateway.auth.jupyterhub.apiTokenFromSecretKey",
                f"token from {token}, expected z2jh's generated one (hub, hub.services.dask-gateway.apiToken)",
            )
        )
    api_url = hub_auth.get("apiUrl")
    expected_api = f"http://hub:8081{base.rstrip('/')}/hub/api"
    if api_url != expected_api:
        findings.append(
            Finding(
                blame,
                "dask-gateway.gateway.auth.jupyterhub.apiUrl",
                f"{api_url!r}, expected {expected_api!r}",
            )
        )
    return findings


def check_mounts(values: Mapping[str, Any], rendered: list[dict[str, Any]], blame: str) -> list[Finding]:
    """ConfigMaps mounted into the hub or read by the gateway are rendered by our chart, with those keys."""
    config_maps = {
        d["metadata"]["name"]: set((d.get("data") or {}).keys())
        for d in rendered
        if d.get("kind") == "ConfigMap"
    }
    findings = []
    hub = _get(values, "jupyterhub", "hub") or {}
    volumes = {v.get("name"): v for v in hub.get("extraVolumes") or [] if isinstance(v, Mapping)}
    mounted_paths = set()
    for i, mount in enumerate(hub.get("extraVolumeMounts") or []):
        volume = volumes.get(mount.get("name"))
        key = f"jupyterhub.hub.extraVolumeMounts[{i}]"
        if volume is None:
            findings.append(
                Finding(blame, key, f"volume {mount.get('name')!r} is not in jupyterhub.hub.extraVolumes")
            )
            continue
        cm = _get(volume, "configMap", "name")
        if cm is None:
            continue
        if cm not in config_maps:
            findings.append(Finding(blame, key, f"ConfigMap {cm!r} is not rendered by the chart"))
        elif mount.get("subPath") and mount["subPath"] not in config_maps[cm]:
            findings.append(
                Finding(blame, f"{key}.subPath", f"ConfigMap {cm!r} has no key {mount['subPath']!r}")
            )
        mounted_paths.add(mount.get("mountPath"))
    for needed in (f"{SETTINGS_DIR}/settings.yaml", f"{CONFIG_D}/analysis_facility.py"):
        if needed not in mounted_paths:
            findings.append(
                Finding(blame, "jupyterhub.hub.extraVolumeMounts", f"nothing mounted at {needed}")
            )
    gateway = values.get("dask-gateway") or {}
    for i, env in enumerate(_get(gateway, "gateway", "env") or []):
        ref = _get(env, "valueFrom", "configMapKeyRef")
        if isinstance(ref, Mapping) and ref.get("key") not in config_maps.get(ref.get("name"), set()):
            findings.append(
                Finding(
                    blame,
                    f"dask-gateway.gateway.env[{i}].valueFrom.configMapKeyRef",
                    f"{ref.get('name')}/{ref.get('key')} is not rendered by the chart",
                )
            )
    return findings
