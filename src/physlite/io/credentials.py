"""Credentials as a facility provides them: the user's IAM access token (bearer) or an X509/VOMS proxy.

Discovery follows the WLCG bearer token discovery rules ($BEARER_TOKEN, $BEARER_TOKEN_FILE,
$XDG_RUNTIME_DIR/bt_u<uid>, /tmp/bt_u<uid>) and the grid convention for proxies ($X509_USER_PROXY,
/tmp/x509up_u<uid>).

Example:
    >>> token = bearer_token()  # None when the user has none
    >>> proxy = x509_proxy()  # a path, or None
"""

from __future__ import annotations

import os
from pathlib import Path

from physlite.io.errors import CredentialError


def _uid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else 0


def bearer_token() -> str | None:
    """The user's bearer token by WLCG discovery, or None."""
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
                return token
    return None


def x509_proxy() -> str | None:
    """Path of the user's X509 proxy ($X509_USER_PROXY or /tmp/x509up_u<uid>), or None."""
    path = os.environ.get("X509_USER_PROXY") or f"/tmp/x509up_u{_uid()}"
    return path if Path(path).is_file() else None


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
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    os.chmod(partial, 0o600)
    os.replace(partial, target)
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
