"""A stand-in for the one JupyterHub endpoint that af.user_server.access_token asks from inside a user's server:
GET /hub/api/users/<name> with the server's API token, answered with the user's auth_state (as the hub
answers a server allowed to read its owner's auth_state). Each answer carries the next token of `tokens`
(the last one is repeated), as the hub hands out a refreshed token once the previous one has expired.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_TOKEN = "server-api-token"


class HubUsersAPI:
    def __init__(self, user: str, tokens: list[Callable[[], str]]):
        self.user, self.tokens, self.handed_out = user, list(tokens), []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != f"/hub/api/users/{hub.user}" or self.headers.get("Authorization") != (
                    f"token {API_TOKEN}"
                ):
                    self.send_error(403)
                    return
                make = hub.tokens.pop(0) if len(hub.tokens) > 1 else hub.tokens[0]
                token = make()
                hub.handed_out.append(token)
                body = json.dumps({"name": hub.user, "auth_state": {"access_token": token}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def environment(self) -> dict[str, str]:
        """The variables JupyterHub sets in the user's server."""
        return {
            "JUPYTERHUB_API_URL": f"http://127.0.0.1:{self.server.server_address[1]}/hub/api",
            "JUPYTERHUB_API_TOKEN": API_TOKEN,
            "JUPYTERHUB_USER": self.user,
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
