"""Load and validate the facility settings (one YAML file; the same schema locally and in Kubernetes).

Schema (every key optional unless marked *required*; defaults shown):

```yaml
platform: local                 # "local" (local processes) or "kubernetes" (KubeSpawner); *required*
hub:
  base_url: /                   # URL prefix of the hub
  public_url: ""                # e.g. https://af.example.org; used for links handed to users
auth:
  issuer: https://atlas-auth.cern.ch/   # OIDC issuer; endpoints come from its discovery document
  client_id: ""                 # *required*
  client_secret_env: AF_OIDC_CLIENT_SECRET   # name of the env var holding the client secret
  callback_url: ""              # default: {hub.public_url}{hub.base_url}hub/oauth_callback
  scopes: [openid, profile, email, offline_access, wlcg.groups]
  username_claim: preferred_username
  allowed_groups: [atlas]       # groups from `groups` and `wlcg.groups`, leading "/" removed
  admin_groups: [atlas/af-admins]
  refresh_age: 300              # seconds between checks (and refreshes) of a user's access token
profiles:                       # resource/image choices; `groups: []` means every allowed user
  - {name: standard, description: "...", cores: 1, memory: 2G, image: "", groups: []}
culling:
  server_idle_timeout: 3600     # seconds; 0 disables culling of idle servers
  server_max_age: 0             # seconds; 0 = no maximum age
  every: 300                    # seconds between culler runs
gateway:
  address: http://127.0.0.1:8000/services/dask-gateway   # what Gateway() in a user server talks to
  proxy_address: gateway://127.0.0.1:8786                # scheduler (TLS) proxy for clients
  public_address: /services/dask-gateway                 # base of dashboard links shown to users
  service_url: http://127.0.0.1:8788   # where the hub's proxy sends /services/dask-gateway/ (dashboard guard)
  api_token_env: AF_GATEWAY_API_TOKEN  # env var with the gateway's hub service token
  cluster_idle_timeout: 1800    # seconds without activity before a cluster is stopped (0 = never)
  limits:                       # totals per user over all their clusters (schedulers included)
    {max_clusters: 2, max_workers: 8, max_cores: 8, max_memory: 16G}  # (cores/memory include the scheduler)
  worker: {cores: 1, memory: 2G}   # defaults offered in the cluster options
services:
  operator_token_env: AF_OPERATOR_TOKEN   # env var with the token of the `af-operator` service account
                                          # (health check, local runner); unset = no operator account
servicex:
  endpoint: ""                  # when set, each server gets ~/servicex.yaml with the user's token
tutorials:
  source: ""                    # local: folder whose *.ipynb are copied into each new home
local:                          # only read when platform is "local"
  state_dir: state              # homes live in {state_dir}/homes/{username}
```

Example:
    >>> from hub_config.settings import load_settings
    >>> settings = load_settings("hub_config/examples/local.yaml")  # doctest: +SKIP
    >>> settings["auth"]["allowed_groups"]  # doctest: +SKIP
    ['atlas']
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PLATFORMS = ("local", "kubernetes")
ATLAS_IAM_ISSUER = "https://atlas-auth.cern.ch/"

DEFAULTS: dict[str, Any] = {
    "platform": None,
    "hub": {"base_url": "/", "public_url": ""},
    "auth": {
        "issuer": ATLAS_IAM_ISSUER,
        "client_id": None,
        "client_secret_env": "AF_OIDC_CLIENT_SECRET",
        "callback_url": "",
        "scopes": ["openid", "profile", "email", "offline_access", "wlcg.groups"],
        "username_claim": "preferred_username",
        "allowed_groups": ["atlas"],
        "admin_groups": ["atlas/af-admins"],
        "refresh_age": 300,
    },
    "profiles": [
        {
            "name": "standard",
            "description": "1 core, 2 GB memory",
            "cores": 1,
            "memory": "2G",
            "image": "",
            "groups": [],
        }
    ],
    "culling": {"server_idle_timeout": 3600, "server_max_age": 0, "every": 300},
    "gateway": {
        "address": "http://127.0.0.1:8000/services/dask-gateway",
        "proxy_address": "gateway://127.0.0.1:8786",
        "public_address": "/services/dask-gateway",
        "service_url": "http://127.0.0.1:8788",
        "api_token_env": "AF_GATEWAY_API_TOKEN",
        "cluster_idle_timeout": 1800,
        "limits": {"max_clusters": 2, "max_workers": 8, "max_cores": 8, "max_memory": "16G"},
        "worker": {"cores": 1, "memory": "2G"},
    },
    "services": {"operator_token_env": "AF_OPERATOR_TOKEN"},
    "servicex": {"endpoint": ""},
    "tutorials": {"source": ""},
    "local": {"state_dir": "state"},
}

_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_PROFILE_KEYS = {"name", "description", "cores", "memory", "image", "groups"}


class SettingsError(ValueError):
    """A facility setting is missing or invalid; the message names the key (and the file)."""


def parse_memory(value: str | int, key: str) -> int:
    """Bytes of a memory size such as ``"2G"``, ``"512M"`` or an integer number of bytes.

    Example:
        >>> parse_memory("2G", "profiles[0].memory")
        2147483648
    """
    if isinstance(value, bool):
        raise SettingsError(f"{key}: expected a memory size like '2G', got {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise SettingsError(f"{key}: memory must be positive, got {value}")
        return value
    match = _MEMORY.match(str(value).strip())
    if not match:
        raise SettingsError(f"{key}: expected a memory size like '2G' or '512M', got {value!r}")
    number = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if number <= 0:
        raise SettingsError(f"{key}: memory must be positive, got {value!r}")
    return int(number)


def _merge(defaults: Mapping[str, Any], given: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise SettingsError(f"{prefix}{unknown[0]}: unknown setting (known: {', '.join(sorted(defaults))})")
    merged = copy.deepcopy(dict(defaults))
    for key, value in given.items():
        default = defaults[key]
        if isinstance(default, dict):
            if not isinstance(value, Mapping):
                raise SettingsError(f"{prefix}{key}: expected a mapping, got {type(value).__name__}")
            merged[key] = _merge(default, value, f"{prefix}{key}.")
        else:
            merged[key] = value
    return merged


def _require_type(settings: Mapping[str, Any], path: str, kind: type | tuple[type, ...], what: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = value[part]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise SettingsError(f"{path}: expected {what}, got {value!r}")
    if not isinstance(value, kind):
        raise SettingsError(f"{path}: expected {what}, got {value!r}")
    return value


def _check_str_list(settings: Mapping[str, Any], path: str) -> None:
    value = _require_type(settings, path, list, "a list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise SettingsError(f"{path}[{i}]: expected a non-empty string, got {item!r}")


def _check_seconds(settings: Mapping[str, Any], path: str) -> None:
    value = _require_type(settings, path, (int, float), "a number of seconds")
    if value < 0:
        raise SettingsError(f"{path}: must be >= 0 seconds, got {value}")


def _check_profiles(profiles: Any) -> None:
    if not isinstance(profiles, list) or not profiles:
        raise SettingsError("profiles: expected a non-empty list of profiles")
    names = set()
    for i, profile in enumerate(profiles):
        key = f"profiles[{i}]"
        if not isinstance(profile, Mapping):
            raise SettingsError(f"{key}: expected a mapping with keys {sorted(_PROFILE_KEYS)}")
        unknown = sorted(set(profile) - _PROFILE_KEYS)
        if unknown:
            raise SettingsError(f"{key}.{unknown[0]}: unknown profile key (known: {sorted(_PROFILE_KEYS)})")
        name = profile.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
            raise SettingsError(f"{key}.name: expected a slug like 'standard' (a-z, 0-9, -), got {name!r}")
        if name in names:
            raise SettingsError(f"{key}.name: duplicate profile name {name!r}")
        names.add(name)
        cores = profile.get("cores", 1)
        if isinstance(cores, bool) or not isinstance(cores, (int, float)) or cores <= 0:
            raise SettingsError(f"{key}.cores: expected a positive number, got {cores!r}")
        parse_memory(profile.get("memory", "2G"), f"{key}.memory")
        for text_key in ("description", "image"):
            if not isinstance(profile.get(text_key, ""), str):
                raise SettingsError(f"{key}.{text_key}: expected a string, got {profile[text_key]!r}")
        groups = profile.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
            raise SettingsError(f"{key}.groups: expected a list of group names, got {groups!r}")


def normalise_profiles(profiles: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Profiles with every key present and group names without a leading ``/``."""
    out = []
    for profile in profiles:
        full = {"description": "", "cores": 1, "memory": "2G", "image": "", "groups": [], **profile}
        full["groups"] = [g.lstrip("/") for g in full["groups"]]
        out.append(full)
    return out


def validate_settings(given: Mapping[str, Any], source: str = "settings") -> dict[str, Any]:
    """Fill in defaults and validate a settings mapping; raise `SettingsError` naming the bad key.

    Example:
        >>> s = validate_settings({"platform": "local", "auth": {"client_id": "hub"}})
        >>> s["gateway"]["limits"]["max_clusters"]
        2
    """
    try:
        if not isinstance(given, Mapping):
            raise SettingsError(f"expected a mapping at the top level, got {type(given).__name__}")
        settings = _merge(DEFAULTS, given, "")
        if settings["platform"] not in PLATFORMS:
            raise SettingsError(f"platform: expected one of {list(PLATFORMS)}, got {settings['platform']!r}")
        base_url = _require_type(settings, "hub.base_url", str, "a URL path")
        if not base_url.startswith("/"):
            raise SettingsError(f"hub.base_url: must start with '/', got {base_url!r}")
        _require_type(settings, "hub.public_url", str, "a URL")
        issuer = _require_type(settings, "auth.issuer", str, "an https:// or http:// URL")
        if not re.match(r"^https?://[^/]+", issuer):
            raise SettingsError(f"auth.issuer: expected an http(s):// URL, got {issuer!r}")
        client_id = settings["auth"]["client_id"]
        if not isinstance(client_id, str) or not client_id:
            raise SettingsError("auth.client_id: required (the OIDC client registered for the hub)")
        env = _require_type(settings, "auth.client_secret_env", str, "an environment variable name")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
            raise SettingsError(f"auth.client_secret_env: not an environment variable name: {env!r}")
        _require_type(settings, "auth.callback_url", str, "a URL")
        for path in ("auth.scopes", "auth.allowed_groups", "auth.admin_groups"):
            _check_str_list(settings, path)
        if "openid" not in settings["auth"]["scopes"]:
            raise SettingsError("auth.scopes: must contain 'openid'")
        _require_type(settings, "auth.username_claim", str, "a claim name")
        _check_seconds(settings, "auth.refresh_age")
        settings["auth"]["allowed_groups"] = [g.lstrip("/") for g in settings["auth"]["allowed_groups"]]
        settings["auth"]["admin_groups"] = [g.lstrip("/") for g in settings["auth"]["admin_groups"]]
        _check_profiles(settings["profiles"])
        settings["profiles"] = normalise_profiles(settings["profiles"])
        for path in ("culling.server_idle_timeout", "culling.server_max_age", "culling.every"):
            _check_seconds(settings, path)
        for path in (
            "gateway.address",
            "gateway.proxy_address",
            "gateway.public_address",
            "gateway.service_url",
        ):
            if not _require_type(settings, path, str, "an address"):
                raise SettingsError(f"{path}: must not be empty")
        _require_type(settings, "gateway.api_token_env", str, "an environment variable name")
        _check_seconds(settings, "gateway.cluster_idle_timeout")
        limits = settings["gateway"]["limits"]
        for name in ("max_clusters", "max_workers"):
            value = limits[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(f"gateway.limits.{name}: expected an integer >= 1, got {value!r}")
        max_cores = limits["max_cores"]
        if isinstance(max_cores, bool) or not isinstance(max_cores, (int, float)) or max_cores <= 0:
            raise SettingsError(f"gateway.limits.max_cores: expected a positive number, got {max_cores!r}")
        parse_memory(limits["max_memory"], "gateway.limits.max_memory")
        worker = settings["gateway"]["worker"]
        if isinstance(worker["cores"], bool) or not isinstance(worker["cores"], int) or worker["cores"] < 1:
            raise SettingsError(f"gateway.worker.cores: expected an integer >= 1, got {worker['cores']!r}")
        if worker["cores"] > max_cores:
            raise SettingsError(f"gateway.worker.cores: {worker['cores']} exceeds gateway.limits.max_cores")
        if parse_memory(worker["memory"], "gateway.worker.memory") > parse_memory(
            limits["max_memory"], "gateway.limits.max_memory"
        ):
            raise SettingsError("gateway.worker.memory: exceeds gateway.limits.max_memory")
        _require_type(settings, "services.operator_token_env", str, "an environment variable name")
        endpoint = _require_type(settings, "servicex.endpoint", str, "a URL or ''")
        if endpoint and not re.match(r"^https?://", endpoint):
            raise SettingsError(f"servicex.endpoint: expected an http(s):// URL, got {endpoint!r}")
        _require_type(settings, "tutorials.source", str, "a folder path or ''")
        _require_type(settings, "local.state_dir", str, "a folder path")
    except SettingsError as err:
        raise SettingsError(f"{source}: {err}") from None
    return settings


def load_settings(path: str | Path) -> dict[str, Any]:
    """Read the settings YAML file at `path`, fill in defaults and validate.

    Example:
        >>> settings = load_settings("/usr/local/etc/jupyterhub/analysis-facility/settings.yaml")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SettingsError(f"{path}: cannot read the facility settings: {err.strerror}") from None
    try:
        given = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SettingsError(f"{path}: not valid YAML: {err}") from None
    return validate_settings(given or {}, source=str(path))
