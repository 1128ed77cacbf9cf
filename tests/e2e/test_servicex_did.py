"""A rucio DID delivered by the facility's ServiceX to the real `servicex` client in a user's server (containers of
the notebook image, as `make up` runs them), with that user's own IAM token.

The facility's development IAM serves https (rucio's OIDC library accepts only https issuers) and issues JWT
access tokens; a real rucio server (servers.secure_site) trusts it and maps alice's subject to rucio account
alice; bob has no account. alice and bob log in through the IAM, so the hub's auth_state holds their real access
tokens; the service (settings.servicex.rucio_host / rucio_ca_cert) resolves DIDs at that rucio with them. The
replicas are on https storage at the host's address as containers see it (10.0.2.2), whose CA the dask workers
trust through LocalFacility(trusted_ca_dir=).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from af.tools.cli import main
from af.tools.local.ports import Ports
from af.tools.local.runner import LocalFacility
from hub_config.container_spawner import HOST_LOOPBACK_IN_CONTAINER
from tests.e2e.conftest import BUILD, Hub, container_mode, http_login
from tests.e2e.test_isolation import run, start_server, stop_server
from tests.e2e.test_servicex_delivery import MARKER, reported

DATASET = "test:physlite.did"
DELIVER = """\
import json, os
import awkward as ak, uproot, servicex
from servicex import dataset, query

columns = ["AnalysisElectronsAuxDyn.pt", "AnalysisElectronsAuxDyn.eta"]
cut = "ak.num(AnalysisElectronsAuxDyn.pt) >= 1"
spec = {
    "General": {"OutputFormat": "parquet", "Delivery": "LocalCache"},
    "Sample": [{"Name": "did", "Dataset": dataset.Rucio(DID),
                "Query": query.UprootRaw([{"treename": "CollectionTree", "filter_name": columns, "cut": cut}])}],
}
try:
    delivered = list(servicex.deliver(spec, ignore_local_cache=True, progress_bar="none")["did"])
    error = ""
except Exception as failure:
    delivered, error = [], f"{type(failure).__name__}: {failure}"
result = {"files": delivered, "error": error}
if delivered:
    got = ak.concatenate([ak.from_parquet(path) for path in delivered])
    with uproot.open(os.path.join(os.environ["AF_EXAMPLE_DATA"], "PHYSLITE_example.root")) as f:
        direct = f["CollectionTree"].arrays(columns, library="ak")
    direct = direct[ak.num(direct[columns[0]]) >= 1]
    result.update(events=len(got), direct_events=len(direct),
                  equal=all(ak.to_list(got[c]) == ak.to_list(direct[c]) for c in columns))
print(MARKER + json.dumps(result))
"""


@pytest.fixture(scope="module")
def did_facility(
    tmp_path_factory: pytest.TempPathFactory, r22_path
) -> Iterator[tuple[LocalFacility, object]]:
    from rucio.common.config import clean_cached_config
    from servers.common import openssl_self_signed
    from servers.grid_proxy import subject_hash
    from servers.secure_site import start_secure_site

    folder = tmp_path_factory.mktemp("did")
    # one certificate for the IAM, rucio and the storage; containers reach the host's 127.0.0.1 as 10.0.2.2
    cert, key = folder / "server.crt", folder / "server.key"
    addresses = f"IP:127.0.0.1,IP:{HOST_LOOPBACK_IN_CONTAINER},DNS:localhost"
    openssl_self_signed(cert, key, "/CN=127.0.0.1", "-addext", f"subjectAltName={addresses}")
    ca_dir = folder / "cas"
    ca_dir.mkdir()
    shutil.copyfile(cert, ca_dir / f"{subject_hash(cert)}.0")
    served = folder / "served"
    (served / "test").mkdir(parents=True)
    (served / "test" / r22_path.name).symlink_to(r22_path)

    facility = LocalFacility(
        folder / "state",
        ports=Ports.free(),
        containers=container_mode(),
        iam_certificate=(cert, key),
        trusted_ca_dir=ca_dir,
    )
    clean_cached_config()
    site = start_secure_site(
        folder / "site", served, [served / "test" / r22_path.name], [facility.issuer], (cert, key)
    )
    monkeypatch = pytest.MonkeyPatch()
    try:
        port = int(site.storage_url.rsplit(":", 1)[1])
        site.add_rse("FACILITY_DISK", "https", port, "/open/", [], hostname=HOST_LOOPBACK_IN_CONTAINER)
        admin = site.admin()
        scope, name = DATASET.split(":")
        admin.add_dataset(scope, name)
        admin.attach_dids(scope, name, [{"scope": "test", "name": r22_path.name}])
        admin.add_replicas(
            "FACILITY_DISK",
            [
                {
                    "scope": "test",
                    "name": r22_path.name,
                    "bytes": r22_path.stat().st_size,
                    "adler32": "00000001",
                }
            ],
        )
        site.add_token_account("alice", "alice", facility.issuer)
        facility.settings_overrides.update(
            {"servicex.rucio_host": site.rucio_url, "servicex.rucio_ca_cert": str(cert)}
        )
        # the test's own logins (requests) verify the IAM's https
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(facility.state_dir / "oidc" / "trusted-cas.pem"))
        facility.up()
        yield facility, site
    finally:
        monkeypatch.undo()
        facility.down()
        BUILD.mkdir(parents=True, exist_ok=True)
        for log in (facility.state_dir / "logs").glob("*.log"):
            shutil.copyfile(log, BUILD / f"did-facility-{log.name}")
        site.stop()
        clean_cached_config()


def deliver_as(facility: LocalFacility, hub: Hub, username: str) -> dict:
    """`username` logs in through the IAM, then the client in their server delivers DATASET."""
    _, response = http_login(facility, username)
    assert response.status_code == 200, f"{username}'s login: HTTP {response.status_code}"
    assert start_server(hub, username).status_code in (201, 202)
    try:
        code = f"MARKER = {MARKER!r}\nDID = {DATASET!r}\n" + DELIVER
        return reported(run(f"{facility.url}/user/{username}", hub.user_token(username), code))
    finally:
        stop_server(hub, username)


@pytest.mark.e2e
def test_alice_gets_a_did_with_her_iam_token_and_bob_is_refused(did_facility):
    facility, site = did_facility
    hub = Hub(facility)
    alice = deliver_as(facility, hub, "alice")
    print("alice's client delivered from rucio:", alice)
    assert alice["error"] == "" and alice["files"], alice
    assert alice["equal"] and alice["events"] == alice["direct_events"] > 0, alice
    # the workers read the replica the containers reach (10.0.2.2), over https with the CA of trusted_ca_dir
    reads = [line for line in (site.run / "access.log").read_text().splitlines() if "/open/test/" in line]
    assert any(line.split('"')[2].split()[0] in ("200", "206") for line in reads), reads

    bob = deliver_as(facility, hub, "bob")
    print("bob's client:", bob)
    assert bob["files"] == [] and DATASET in bob["error"], bob
    assert f"the rucio server {site.rucio_url} refused the bearer token" in bob["error"], bob


def test_af_up_refuses_a_trusted_ca_dir_without_hashed_certificates_naming_it(tmp_path, capsys):
    folder = tmp_path / "cas"
    folder.mkdir()
    (folder / "ca.pem").write_text("not hashed")
    state = tmp_path / "state"
    assert main(["up", "--processes", "--state", str(state), "--trusted-ca-dir", str(folder)]) == 1
    assert f"af up: trusted CA folder {folder}: not a folder of hashed CA" in capsys.readouterr().err
    assert LocalFacility(state).pids() == {}, "nothing may have been started"
