"""In a user's server, physlite stores the user's IAM token where rucio and the storage clients find it (WLCG
discovery), and the `servicex` client still authenticates to the facility's service with the hub token of its
``servicex.yaml``: the client sends any token named by $BEARER_TOKEN_FILE instead, which the service refuses."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest

from physlite.io.credentials import FACILITY_TOKEN_FILE, bearer_token, store_token


def _iam_like_jwt(subject: str) -> str:
    """A token shaped as an IAM access token (a JWT the client can read the expiry of), not one of the hub's."""

    def part(document: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part({'sub': subject, 'exp': int(time.time()) + 3600})}.c2lnbmF0dXJl"


@pytest.mark.parametrize("iam_token", [_iam_like_jwt("alice-at-iam"), "opaque-provider-token-0123456789"])
def test_stored_iam_token_leaves_the_servicex_client_on_its_hub_token(
    alice, iam_token, tmp_path, monkeypatch
):
    from rucio.common.utils import wlcg_token_discovery

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    for variable in ("BEARER_TOKEN", "BEARER_TOKEN_FILE", "RUCIO_AUTH_TYPE", FACILITY_TOKEN_FILE):
        monkeypatch.setenv(variable, "")  # recorded, so that what store_token sets is undone
        monkeypatch.delenv(variable)
    store_token(iam_token)
    # rucio (its own WLCG discovery) and physlite's sources present the IAM token ...
    assert wlcg_token_discovery() == iam_token
    assert bearer_token() == iam_token
    # ... and the ServiceX client, in the same process, the hub token of servicex.yaml
    transforms = asyncio.run(alice.adapter().get_transforms())
    print(f"the client listed {len(transforms)} requests with the stored IAM token in place")
    assert isinstance(transforms, list)
