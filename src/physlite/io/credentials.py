"""Credentials as a facility provides them: the user's IAM access token (bearer) or an X509/VOMS proxy.

Inside a user's server on the facility, :func:`current_access_token` asks the hub for the user's current IAM
access token (the facility's own code imports it from here: physlite imports nothing from the facility).

Discovery follows the WLCG bearer token discovery rules ($BEARER_TOKEN, $BEARER_TOKEN_FILE,
$XDG_RUNTIME_DIR/bt_u<uid>, /tmp/bt_u<uid>) and the grid convention for proxies ($X509_USER_PROXY,
/tmp/x509up_u<uid>).

Storing them (mode 0600) also points rucio at them: :func:`store_token` / :func:`store_facility_token`
(auth type oidc) and :func:`store_proxy` / :func:`proxy_upload_widget` (auth type x509_proxy); the last one
stored wins.

Example:
    >>> token = bearer_token()  # None when the user has none
    >>> proxy = x509_proxy()  # a path, or None
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from physlite.io.errors import CredentialError


class AccessTokenError(CredentialError):
    """The hub could not be asked, or holds no token for this user; the message says which."""


def _uid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else 0


# the token file that store_facility_token keeps fresh, and how long before expiry it fetches a new token
FACILITY_TOKEN_FILE = "PHYSLITE_FACILITY_TOKEN_FILE"
REFRESH_MARGIN = 60.0


def bearer_token() -> str | None:
    """The user's bearer token by WLCG discovery, or None. A token stored by :func:`store_facility_token` is
    fetched again from the hub when it expires within a minute (facility access tokens live minutes)."""
    token = os.environ.get("BEARER_TOKEN", "").strip()
    if token:
        return token
    candidates = []
    if os.environ.get("BEARER_TOKEN_FILE"):
        candidates.append(Path(os.environ["BEARER_TOKEN_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / f"bt_u{_uid()}")
    candidates.append(Path(f"/tmp/bt_u{_uid()}"))
    for path in candidates:
        if path.is_file():
            try:
                token = path.read_text().strip()
            except OSError as error:
                raise CredentialError(f"bearer token file {path} cannot be read: {error.strerror}") from None
            if token:
                expiry = token_expiry(token)
                facility = str(path) == os.environ.get(FACILITY_TOKEN_FILE)
                if facility and expiry is not None and expiry - time.time() < REFRESH_MARGIN:
                    return store_facility_token(path).read_text().strip()
                return token
    return None


def token_expiry(token: str) -> float | None:
    """The expiry (`exp`, seconds since the epoch) of a JWT, read without verifying it (only to know when to
    fetch a new one); None for tokens that are not JWTs.

    Example:
        >>> token_expiry("eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9.")
        1700000000.0
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return float(claims["exp"])
    except (ValueError, KeyError, TypeError):
        return None


def x509_proxy() -> str | None:
    """Path of the user's X509 proxy ($X509_USER_PROXY or /tmp/x509up_u<uid>), or None."""
    path = os.environ.get("X509_USER_PROXY") or f"/tmp/x509up_u{_uid()}"
    return path if Path(path).is_file() else None


def _write_private(target: Path, content: bytes) -> None:
    """Write `content` to `target` with mode 0600 from the start (never readable by others, not even briefly)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    os.chmod(partial, 0o600)
    os.replace(partial, target)


def store_token(token: str, path: str | os.PathLike | None = None) -> Path:
    """Store the user's access token where WLCG discovery finds it (0600), and make rucio use it.

    The default place is $XDG_RUNTIME_DIR/bt_u<uid> (else /tmp/bt_u<uid>), where WLCG discovery finds it
    without $BEARER_TOKEN_FILE, which is then unset: the `servicex` client sends a token named there instead of
    its own ``servicex.yaml``'s, so setting it would lock the client out of the facility's ServiceX. Another
    `path` is pointed at by $BEARER_TOKEN_FILE. $RUCIO_AUTH_TYPE is set to `oidc`, so that rucio, https and
    XRootD sources all present this token. An
    access token expires: store the fresh one again (on the facility, :func:`store_facility_token` fetches it
    from the hub and fetches it again when it is about to expire).

    Example:
        >>> store_token(Path("my-access-token.jwt").read_text())
        PosixPath('/run/user/1000/bt_u1000')
    """
    token = token.strip()
    if not token or not token.isascii() or any(character.isspace() for character in token):
        raise CredentialError("the bearer token must be one word of ASCII: pass the access token itself")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    default = Path(runtime) / f"bt_u{_uid()}" if runtime else Path(f"/tmp/bt_u{_uid()}")
    target = Path(path) if path is not None else default
    _write_private(target, token.encode("ascii") + b"\n")
    os.environ.pop("BEARER_TOKEN", None)  # an older token in the variable would win over the file
    os.environ.pop(FACILITY_TOKEN_FILE, None)  # a token of the user's own: not to be replaced by the hub's
    if target == default:
        os.environ.pop("BEARER_TOKEN_FILE", None)  # found by discovery; another file named there would win
    else:
        os.environ["BEARER_TOKEN_FILE"] = str(target)
    os.environ["RUCIO_AUTH_TYPE"] = "oidc"
    return target


def store_facility_token(path: str | os.PathLike | None = None) -> Path:
    """On the facility: store the user's current IAM access token, fetched from the hub (the hub refreshes it
    when it has expired), as :func:`store_token` does. :func:`bearer_token` (used by rucio and the sources)
    fetches a new one from the hub when this one is about to expire.

    Example (in a notebook on the facility):
        >>> store_facility_token()
        PosixPath('/run/user/1000/bt_u1000')
    """
    try:
        token = current_access_token()
    except AccessTokenError as error:
        raise CredentialError(f"no access token from the facility: {error}") from None
    target = store_token(token, path)
    os.environ[FACILITY_TOKEN_FILE] = str(target)
    return target


def current_access_token(environ: Mapping[str, str] = os.environ, timeout: float = 30.0) -> str:
    """The user's current IAM access token, fetched from the hub with the server's own API token
    (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN, JUPYTERHUB_USER); :class:`AccessTokenError` says why not.

    A variable set when the server started goes stale when the token expires; the hub instead checks the
    token it holds and refreshes it with the refresh token when it has expired (the facility's ``server`` role
    may read its owner's auth_state).

    Example (in a notebook on the facility):
        >>> headers = {"Authorization": f"Bearer {current_access_token()}"}  # doctest: +SKIP
    """
    try:
        api_url = environ["JUPYTERHUB_API_URL"].rstrip("/")
        token = environ["JUPYTERHUB_API_TOKEN"]
        user = environ["JUPYTERHUB_USER"]
    except KeyError as missing:
        raise AccessTokenError(f"{missing.args[0]} is not set: not running in a facility server?") from None
    # /users/<name> (not /user) is the endpoint that returns auth_state to a token allowed to read it.
    url = f"{api_url}/users/{urllib.parse.quote(user)}"
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            model = json.load(response)
    except urllib.error.HTTPError as err:
        raise AccessTokenError(f"{url} answered HTTP {err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        raise AccessTokenError(f"cannot reach the hub at {api_url}: {err}") from None
    except ValueError as err:
        raise AccessTokenError(f"{url} did not answer with JSON ({err})") from None
    auth_state = model.get("auth_state")
    if not auth_state or not auth_state.get("access_token"):
        raise AccessTokenError(
            f"the hub holds no access token for {model.get('name')!r} (log in through IAM again)"
        )
    return auth_state["access_token"]


def store_proxy(content: bytes, path: str | os.PathLike | None = None) -> Path:
    """Write an uploaded X509 proxy with 0600 permissions and point $X509_USER_PROXY (and rucio) at it.

    Example:
        >>> store_proxy(Path("x509up_u1000").read_bytes())
        PosixPath('/tmp/x509up_u1000')
    """
    text = content.decode("ascii", errors="replace")
    if "-----BEGIN CERTIFICATE-----" not in text or "PRIVATE KEY-----" not in text:
        raise CredentialError(
            "the uploaded file is not an X509 proxy: it needs a PEM certificate and its private key "
            "(create it with voms-proxy-init and upload /tmp/x509up_u<uid>)"
        )
    target = Path(path) if path else Path(f"/tmp/x509up_u{_uid()}")
    _write_private(target, content)
    os.environ["X509_USER_PROXY"] = str(target)
    os.environ["RUCIO_AUTH_TYPE"] = "x509_proxy"
    return target


def proxy_upload_widget(path: str | os.PathLike | None = None):
    """A notebook widget: upload your X509 proxy; it is stored with 0600 and used by rucio and the sources.

    Example (in a notebook cell):
        >>> from physlite.io.credentials import proxy_upload_widget
        >>> proxy_upload_widget()
    """
    import ipywidgets

    upload = ipywidgets.FileUpload(accept="", multiple=False, description="X509 proxy")
    status = ipywidgets.HTML(
        "Upload the file made by <code>voms-proxy-init</code> (/tmp/x509up_u&lt;uid&gt;)."
    )

    def on_upload(change) -> None:
        files = change["new"]
        if not files:
            return
        content = bytes(files[0]["content"])
        upload.value = ()  # the private key must not stay in the widget's (and the notebook's) state
        try:
            stored = store_proxy(content, path)
        except CredentialError as error:
            status.value = f"<b>Not stored:</b> {error}"
        else:
            status.value = (
                f"Proxy stored in <code>{stored}</code> (mode 0600); rucio and physlite will use it."
            )

    upload.observe(on_upload, names="value")
    return ipywidgets.VBox([upload, status])
