"""Load and validate the facility settings (one YAML file; the same schema locally and in Kubernetes).

The schema, its defaults and descriptions are the models of `hub_config.settings_schema`; the reference is
docs/values-reference.md (generated from them). Errors name the dotted key and the file:
``values.yaml: profiles[0].memory: expected a memory size like '2G' or '512M', got 'lots'``.

Example:
    >>> from hub_config.settings import load_settings
    >>> settings = load_settings("hub_config/examples/local.yaml")  # doctest: +SKIP
    >>> settings.auth.allowed_groups  # doctest: +SKIP
    ['atlas']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hub_config.settings_schema import KeyedValueError, Profile, Settings, memory_bytes

__all__ = ["Profile", "Settings", "SettingsError", "load_settings", "parse_memory", "validate_settings"]


class SettingsError(ValueError):
    """A facility setting is missing or invalid; the message names the key (and the file).

    `key` is the dotted key at fault (``profiles[0].memory``; empty for the whole file), `source` the file,
    `detail` what is wrong with the key (the message without file and key).
    """

    def __init__(self, message: str, *, key: str = "", source: str = "", detail: str = ""):
        super().__init__(message)
        self.key = key
        self.source = source
        self.detail = detail or message


def dotted_key(loc: Iterable[str | int]) -> str:
    """``("profiles", 0, "memory")`` as ``profiles[0].memory``.

    Example:
        >>> dotted_key(("gateway", "limits", "max_cores"))
        'gateway.limits.max_cores'
    """
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The settings model that holds the last key of `loc` (to list the known keys)."""
    model: Any = Settings
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) else None
        if field is None:
            return None
        annotation = field.annotation
        inner = getattr(annotation, "__args__", None)
        model = inner[0] if inner and isinstance(inner[0], type) else annotation
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _describe(error: Mapping[str, Any]) -> tuple[str, str]:
    """(dotted key, message) of one pydantic error."""
    loc = list(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, KeyedValueError):
        loc += list(cause.key)
    key = dotted_key(loc)
    kind, given = error["type"], error.get("input")
    if kind == "extra_forbidden":
        model = _model_at(loc)
        known = ", ".join(sorted(model.model_fields)) if model else "?"
        return key, f"unknown setting (known: {known})"
    if kind == "missing":
        model = _model_at(loc)
        field = model.model_fields.get(str(loc[-1])) if model else None
        return key, f"required: {field.description}" if field and field.description else "required"
    if kind == "model_type":
        return key, f"expected a mapping, got {given!r}"
    if kind == "value_error":
        return key, str(cause) if cause is not None else error["msg"]
    message = error["msg"][:1].lower() + error["msg"][1:]
    return key, f"{message}, got {given!r}"


def validate_settings(given: Mapping[str, Any], source: str = "settings") -> Settings:
    """Fill in defaults and validate a settings mapping; raise `SettingsError` naming the bad key and `source`.

    Example:
        >>> s = validate_settings({"platform": "local", "auth": {"client_id": "hub"}})
        >>> s.gateway.limits.max_clusters
        2
    """
    if not isinstance(given, Mapping):
        raise SettingsError(
            f"{source}: expected a mapping at the top level, got {type(given).__name__}", source=source
        )
    try:
        return Settings.model_validate(dict(given))
    except ValidationError as err:
        problems = [_describe(e) for e in err.errors()]
        key, message = problems[0]
        if len(problems) > 1:
            message += "; also " + "; ".join(f"{k}: {m}" for k, m in problems[1:])
        raise SettingsError(f"{source}: {key}: {message}", key=key, source=source, detail=message) from None


def load_settings(path: str | Path) -> Settings:
    """Read the settings YAML file at `path`, fill in defaults and validate.

    Example:
        >>> settings = load_settings("/usr/local/etc/jupyterhub/analysis-facility/settings.yaml")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SettingsError(
            f"{path}: cannot read the facility settings: {err.strerror}", source=str(path)
        ) from None
    try:
        given = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SettingsError(f"{path}: not valid YAML: {err}", source=str(path)) from None
    return validate_settings(given or {}, source=str(path))


def parse_memory(value: str | int, key: str) -> int:
    """Bytes of a memory size such as ``"2G"``, ``"512M"`` or an integer number of bytes; errors name `key`.

    Example:
        >>> parse_memory("2G", "profiles[0].memory")
        2147483648
    """
    try:
        return memory_bytes(value)
    except ValueError as err:
        raise SettingsError(f"{key}: {err}", key=key) from None
