"""Server profiles: resource (cores, memory) and image choices, some offered only to some groups.

The same profile list drives both platforms: locally an options form plus a server-side check before spawning
(and the local spawner's CPU/memory limits), in Kubernetes KubeSpawner's `profile_list` (a callable, so each
user only sees, and can only pick, the profiles of their groups).

Example:
    >>> profiles = [Profile(name="standard"), Profile(name="large", groups=["atlas/af-power"])]
    >>> [p.name for p in profiles_for_groups(profiles, ["atlas"])]
    ['standard']
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tornado import web

from hub_config.settings_schema import Profile, Settings, memory_bytes

PROFILE_FIELD = "profile"


class ProfileNotAllowed(web.HTTPError):
    """A user asked for a profile that does not exist or that their groups may not use (HTTP 403)."""

    def __init__(self, username: str, profile: str, allowed: Iterable[str]):
        names = ", ".join(allowed) or "none"
        super().__init__(403, f"profile {profile!r} is not available to {username} (available: {names})")


def profiles_for_groups(profiles: Sequence[Profile], groups: Iterable[str]) -> list[Profile]:
    """The profiles a member of `groups` may use (a profile with no `groups` is open to everyone).

    A user in no group at all gets at least the first profile, the facility's default: such users are made
    through the API (logging in needs an allowed group), e.g. the health check's `af-health`, whose server must
    run with the facility's limits rather than the spawner's defaults.

    Example:
        >>> [p.name for p in profiles_for_groups([Profile(name="default", groups=["atlas"])], [])]
        ['default']
    """
    member_of = {g.lstrip("/") for g in groups}
    allowed = [p for p in profiles if not p.groups or member_of & set(p.groups)]
    if not member_of and not allowed:
        return list(profiles[:1])
    return allowed


def user_group_names(user: Any) -> list[str]:
    """Group names of a JupyterHub user object."""
    return [group.name for group in getattr(user, "groups", [])]


def choose_profile(
    profiles: Sequence[Profile], username: str, groups: Iterable[str], requested: str | None
) -> Profile:
    """The profile to start for a user: the requested one if allowed, else the first allowed one.

    Raises `ProfileNotAllowed` (HTTP 403) for a profile the user may not use, or when none is allowed.
    """
    allowed = profiles_for_groups(profiles, groups)
    names = [p.name for p in allowed]
    if not requested:
        if not allowed:
            raise ProfileNotAllowed(username, "(default)", names)
        return allowed[0]
    for profile in allowed:
        if profile.name == requested:
            return profile
    raise ProfileNotAllowed(username, requested, names)


def options_form(profiles: Sequence[Profile], groups: Iterable[str]) -> str:
    """HTML radio buttons for the allowed profiles; empty (no form) when there is at most one choice."""
    allowed = profiles_for_groups(profiles, groups)
    if len(allowed) <= 1:
        return ""
    rows = []
    for i, profile in enumerate(allowed):
        checked = " checked" if i == 0 else ""
        name = html.escape(profile.name)
        label = html.escape(profile.description or profile.name)
        rows.append(
            f'<div class="radio"><label><input type="radio" name="{PROFILE_FIELD}" value="{name}"{checked}> '
            f"<b>{name}</b>: {label}</label></div>"
        )
    return "\n".join(rows)


def options_from_form(formdata: Mapping[str, list[str]]) -> dict[str, str]:
    """The user's choice from the submitted form (``{"profile": name}``)."""
    chosen = formdata.get(PROFILE_FIELD) or [""]
    return {PROFILE_FIELD: chosen[0]}


def kubespawner_profile(profile: Profile) -> dict[str, Any]:
    """One entry of KubeSpawner's `profile_list` for a facility profile.

    Example:
        >>> kubespawner_profile(Profile(name="standard", cores=1, memory="2G"))["kubespawner_override"]["mem_limit"]
        2147483648
    """
    memory = memory_bytes(profile.memory)
    override: dict[str, Any] = {
        "cpu_limit": float(profile.cores),
        "cpu_guarantee": float(profile.cores) / 2,
        "mem_limit": memory,
        "mem_guarantee": memory // 2,
    }
    if profile.image:
        override["image"] = profile.image
    return {
        "display_name": profile.name,
        "slug": profile.name,
        "description": profile.description,
        "kubespawner_override": override,
    }


def configure_profiles(c: Any, settings: Settings) -> None:
    """Offer the settings' profiles, filtered by the user's groups, on the configured platform."""
    profiles = settings.profiles
    if settings.platform == "kubernetes":

        def profile_list(spawner: Any) -> list[dict[str, Any]]:
            allowed = profiles_for_groups(profiles, user_group_names(spawner.user))
            return [kubespawner_profile(p) for p in allowed]

        c.KubeSpawner.profile_list = profile_list
        return

    def local_form(spawner: Any) -> str:
        return options_form(profiles, user_group_names(spawner.user))

    c.Spawner.options_form = local_form
    c.Spawner.options_from_form = lambda formdata, _spawner=None: options_from_form(formdata)
