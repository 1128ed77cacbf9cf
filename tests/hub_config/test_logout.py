"""The provider's end-session URL the hub's logout sends the browser to."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import parse_qs, urlsplit

from hub_config.auth import post_logout_url
from hub_config.logout import end_session_url, id_token_usable
from hub_config.settings import validate_settings


def jwt(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def test_a_valid_id_token_is_the_hint_an_expired_one_is_left_out():
    fresh, expired = jwt({"exp": time.time() + 600}), jwt({"exp": time.time() - 1})
    assert id_token_usable(fresh) and not id_token_usable(expired)
    assert not id_token_usable("not-a-jwt") and not id_token_usable(jwt({"sub": "alice"}))
    url = end_session_url(
        "https://iam.example.org/logout?x=1", "hub", "https://af.example.org/hub/login", fresh
    )
    split = urlsplit(url)
    assert split.path == "/logout"
    assert parse_qs(split.query) == {
        "x": ["1"],
        "client_id": ["hub"],
        "post_logout_redirect_uri": ["https://af.example.org/hub/login"],
        "id_token_hint": [fresh],
    }
    without = parse_qs(
        urlsplit(end_session_url("https://iam/logout", "hub", "https://af/hub/login", expired)).query
    )
    assert "id_token_hint" not in without


def test_post_logout_url_sits_beside_the_callback():
    settings = validate_settings(
        {
            "platform": "kubernetes",
            "hub": {"public_url": "https://af.example.org", "base_url": "/af/"},
            "auth": {"client_id": "hub"},
        }
    )
    assert post_logout_url(settings) == "https://af.example.org/af/hub/login"
