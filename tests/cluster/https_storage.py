"""An https file server inside the cluster whose certificate only a test CA vouches for, and that CA as a grid CA
folder ConfigMap (`<hash>.0`, what ``grid_ca.configmap`` names): the stand-in for grid storage with IGTF CAs.

Example (in a test with the `make cluster` cluster):
    >>> url = serve_https_with_test_ca(cluster, "gateway-test", "grid-ca-bundle", image, tmp_path)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import yaml
from servers.common import openssl_self_signed
from servers.grid_proxy import subject_hash

from .cluster import Cluster

NAME = "storage"
CONTENT = "an example file behind a grid CA\n"
# python's http.server over TLS, serving the one example file (the notebook image has python)
SERVER = """
import http.server, pathlib, ssl
root = pathlib.Path("/tmp/www"); root.mkdir(); (root / "example.txt").write_text({content!r})
httpd = http.server.ThreadingHTTPServer(("", 8443), lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=root))
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/tls/tls.crt", "/tls/tls.key")
httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
"""


def serve_https_with_test_ca(
    cluster: Cluster, namespace: str, configmap: str, image: str, folder: Path
) -> str:
    """Start the server (a pod of `image` behind the Service `storage`) and create the CA folder ConfigMap
    `configmap` in `namespace`; the URL of the example file, once the server answers."""
    host = f"{NAME}.{namespace}.svc"
    cert, key = folder / "storage.crt", folder / "storage.key"
    openssl_self_signed(
        cert, key, f"/O=physlite test grid CA/CN={host}", "-addext", f"subjectAltName=DNS:{host}"
    )
    restricted = {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": configmap, "namespace": namespace},
            "data": {f"{subject_hash(cert)}.0": cert.read_text()},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{NAME}-tls", "namespace": namespace},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": cert.read_text(), "tls.key": key.read_text()},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": NAME, "namespace": namespace, "labels": {"app": NAME}},
            "spec": {
                "containers": [
                    {
                        "name": NAME,
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python", "-c", SERVER.format(content=CONTENT)],
                        "ports": [{"containerPort": 8443}],
                        "readinessProbe": {"tcpSocket": {"port": 8443}, "periodSeconds": 1},
                        "resources": {"requests": {"cpu": "10m"}},
                        "securityContext": restricted,
                        "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": True}],
                    }
                ],
                "volumes": [{"name": "tls", "secret": {"secretName": f"{NAME}-tls"}}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME, "namespace": namespace},
            "spec": {"selector": {"app": NAME}, "ports": [{"port": 443, "targetPort": 8443}]},
        },
    ]
    cluster.apply(yaml.safe_dump_all(objects))
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", f"pod/{NAME}", "--timeout=180s", timeout=200
    )
    return f"https://{host}/example.txt"
