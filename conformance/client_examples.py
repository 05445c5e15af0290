# API conformance: the developer guide's Python examples, run with a client that openapi-generator made from the
# spec a running cluster serves, against that cluster (`berth dev`), each call through a different node, every
# answer checked. One line per check; exits 1 if any check fails. Run by scripts/conformance.
"""Usage: client_examples.py --cluster DIR/cluster.json --client GENERATED_CLIENT_DIR

Expects a fresh `berth dev` cluster (its two agents tagged dev_agent=1 and dev_agent=2, running no sessions).

The helpers below (build_client_credentials, get_access_token, get_client_configuration, set_request_headers,
get_*_api, describe_sessions, create_sessions, ...) follow the guide's examples; they take the node to call.
Differences from the guide, on purpose: GetSessionScreenshotRequestData comes from swagger_client.models (the guide
imports it from the DescribeServers module) and is sent through SessionsApi (the guide uses ServersApi; the
spec's tag is `sessions`), and the ids, owners and tags are this cluster's.
"""

import argparse
import base64
import inspect
import json
import re
import struct
import sys
import time
import traceback
import uuid

import pydantic
import requests

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--cluster", required=True, help="cluster.json written by `berth dev`")
parser.add_argument("--client", required=True, help="directory of the generated client (holds swagger_client/)")
parser.add_argument("--deadline", type=float, default=60.0, help="seconds to wait for each asynchronous change")
ARGS = parser.parse_args()
sys.path.insert(0, ARGS.client)

import swagger_client  # noqa: E402  (generated at run time, found through --client)
from swagger_client.exceptions import ApiException  # noqa: E402
from swagger_client.models import CloseServerRequestData, OpenServerRequestData  # noqa: E402
from swagger_client.models import GetSessionScreenshotRequestData  # noqa: E402
from swagger_client.models.create_session_request_data import CreateSessionRequestData  # noqa: E402
from swagger_client.models.delete_session_request_data import DeleteSessionRequestData  # noqa: E402
from swagger_client.models.describe_servers_request_data import DescribeServersRequestData  # noqa: E402
from swagger_client.models.describe_sessions_request_data import DescribeSessionsRequestData  # noqa: E402
from swagger_client.models.key_value_pair import KeyValuePair  # noqa: E402
from swagger_client.models.update_session_permissions_request_data import (  # noqa: E402
    UpdateSessionPermissionsRequestData,
)

CLUSTER = json.load(open(ARGS.cluster))
NODES = [node["api_url"] for node in CLUSTER["nodes"]]
CA_FILE = CLUSTER["ca_file"]
__CLIENT_ID = CLUSTER["client_id"]
__CLIENT_SECRET = CLUSTER["client_secret"]

RUN = uuid.uuid4().hex[:8]  # owners unique to this run, so filters see only this run's sessions
ALICE, BOB = f"alice-{RUN}", f"bob-{RUN}"
PERMISSIONS_FILE = base64.b64encode(b"[permissions]\n%owner% allow builtin\n").decode()
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO_MILLIS = re.compile(r'"CreationTime":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"')


# --- checks -------------------------------------------------------------------------------------------------

class Report:
    passed = 0
    failed = 0
    request_ids = set()


def check(name, ok, detail=""):
    """Print one line for one check; remember failures."""
    if ok:
        Report.passed += 1
        print(f"PASS  {name}", flush=True)
    else:
        Report.failed += 1
        print(f"FAIL  {name}" + (f"  -- {detail}" if detail else ""), flush=True)
    return ok


def check_request_id(operation, response):
    rid = response.request_id
    check(f"{operation}: RequestId is a fresh UUID ({rid})",
          bool(rid) and UUID.match(rid) is not None and rid not in Report.request_ids, repr(rid))
    Report.request_ids.add(rid)


def expect_api_error(name, status, call, error=None):
    """The call fails with this HTTP status and a JSON {"error": ...} body (with this text, when given)."""
    try:
        call()
    except ApiException as exc:
        try:
            body = json.loads(exc.body or "")
        except ValueError:
            body = None
        ok = exc.status == status and isinstance(body, dict) and isinstance(body.get("error"), str)
        if ok and error is not None:
            ok = body["error"] == error
        check(name, ok, f"got {exc.status} {exc.body!r}")
        return
    check(name, False, f"the call succeeded; expected HTTP {status}")


def expect_client_refusal(name, call):
    """The generated client refuses the request before sending it: the spec carries the bound the server enforces
    (the server's own 400 for it is checked by schemathesis and the Rust tests)."""
    try:
        call()
    except pydantic.ValidationError as exc:
        check(name, True, str(exc))
        return
    except ApiException as exc:
        check(name, False, f"sent, and the server answered {exc.status}; the spec should have bounded it")
        return
    check(name, False, "the call succeeded")


def wait_for(name, probe, deadline=None):
    """Poll probe() until it returns a true value or the deadline passes; one check line either way."""
    limit = time.monotonic() + (deadline or ARGS.deadline)
    last = None
    while True:
        try:
            value = probe()
            if value:
                check(name, True)
                return value
            last = "condition not met"
        except ApiException as exc:
            last = f"HTTP {exc.status} {exc.body!r}"
        if time.monotonic() > limit:
            check(name, False, f"not within {deadline or ARGS.deadline:.0f} s ({last})")
            return None
        time.sleep(0.2)  # poll interval, not a wait for a condition


def step(title, function):
    """Run one group of checks; an exception is a failed check, and the next group still runs."""
    print(f"\n-- {title}", flush=True)
    try:
        function()
    except Exception as exc:  # noqa: BLE001 - reported as a failure, then the run goes on
        detail = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ApiException):
            detail = f"HTTP {exc.status} {exc.body!r}"
        check(f"{title}: ran to the end", False, detail)
        traceback.print_exc(limit=3)


_turn = 0


def next_node():
    """The nodes in turn, so that consecutive calls go through different nodes."""
    global _turn
    _turn += 1
    return NODES[_turn % len(NODES)]


def via(node):
    return f"node {NODES.index(node) + 1}"


# --- the guide's helpers, per node --------------------------------------------------------------------------

def build_client_credentials():
    client_credentials = "{client_id}:{client_secret}".format(client_id=__CLIENT_ID, client_secret=__CLIENT_SECRET)
    return base64.b64encode(client_credentials.encode("utf-8")).decode("utf-8")


def get_access_token(node):
    client_credentials = build_client_credentials()
    headers = {
        "Authorization": "Basic {}".format(client_credentials),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    endpoint = node + "/oauth2/token?grant_type=client_credentials"
    res = requests.post(endpoint, headers=headers, verify=CA_FILE, timeout=30)
    if res.status_code != 200:
        raise RuntimeError(f"Cannot get access token from {endpoint}: {res.status_code} {res.text}")
    return json.loads(res.text)["access_token"]


def get_client_configuration(node):
    configuration = swagger_client.Configuration()
    configuration.host = node
    configuration.verify_ssl = True
    configuration.ssl_ca_cert = CA_FILE
    return configuration


_tokens = {}


def set_request_headers(api_client, node):
    if node not in _tokens:  # the guide asks for a token per API object; one per node is enough here
        _tokens[node] = get_access_token(node)
    api_client.set_default_header(header_name="Authorization", header_value="Bearer {}".format(_tokens[node]))


def _api(kind, node):
    api_instance = kind(swagger_client.ApiClient(get_client_configuration(node)))
    set_request_headers(api_instance.api_client, node)
    return api_instance


def get_sessions_api(node):
    return _api(swagger_client.SessionsApi, node)


def get_servers_api(node):
    return _api(swagger_client.ServersApi, node)


def get_session_connection_api(node):
    return _api(swagger_client.GetSessionConnectionDataApi, node)


def get_session_permissions_api(node):
    return _api(swagger_client.SessionPermissionsApi, node)


def describe_sessions(node, session_ids=None, next_token=None, tags=None, owner=None, max_results=None):
    filters = list()
    if tags:
        for tag in tags:
            filter_key_value_pair = KeyValuePair(key="tag:" + tag["Key"], value=tag["Value"])
            filters.append(filter_key_value_pair)
    if owner:
        filter_key_value_pair = KeyValuePair(key="owner", value=owner)
        filters.append(filter_key_value_pair)
    request = DescribeSessionsRequestData(session_ids=session_ids, filters=filters, next_token=next_token,
                                          max_results=max_results)
    return get_sessions_api(node).describe_sessions(body=request)


def describe_servers(node, server_ids=None, next_token=None, max_results=None):
    request = DescribeServersRequestData(server_ids=server_ids, next_token=next_token, max_results=max_results)
    return get_servers_api(node).describe_servers(body=request)


def create_sessions(node, sessions_to_create):
    create_sessions_request = list()
    for name, owner, session_type, init_file_path, autorun_file, autorun_file_arguments, max_concurrent_clients, \
            dcv_gl_enabled, permissions_file, requirements, storage_root in sessions_to_create:
        a_request = CreateSessionRequestData(
            name=name, owner=owner, type=session_type,
            init_file_path=init_file_path, autorun_file=autorun_file, autorun_file_arguments=autorun_file_arguments,
            max_concurrent_clients=max_concurrent_clients,
            dcv_gl_enabled=dcv_gl_enabled, permissions_file=permissions_file,
            requirements=requirements, storage_root=storage_root)
        create_sessions_request.append(a_request)
    return get_sessions_api(node).create_sessions(body=create_sessions_request)


def delete_sessions(node, sessions_to_delete, force=False):
    delete_sessions_request = list()
    for session_id, owner in sessions_to_delete:
        a_request = DeleteSessionRequestData(session_id=session_id, owner=owner, force=force)
        delete_sessions_request.append(a_request)
    return get_sessions_api(node).delete_sessions(body=delete_sessions_request)


def close_servers(node, server_ids, force=None):
    request = [CloseServerRequestData(server_id=server_id, force=force) for server_id in server_ids]
    return get_servers_api(node).close_servers(body=request)


def open_servers(node, server_ids):
    request = [OpenServerRequestData(server_id=server_id) for server_id in server_ids]
    return get_servers_api(node).open_servers(body=request)


def get_session_screenshots(node, session_ids, max_width=None, max_height=None):
    request = [GetSessionScreenshotRequestData(session_id=session_id, max_width=max_width, max_height=max_height)
               for session_id in session_ids]
    return get_sessions_api(node).get_session_screenshots(body=request)


def update_session_permissions(node, session_permissions_to_update):
    update_session_permissions_request = list()
    for session_id, owner, permissions_base64_encoded in session_permissions_to_update:
        a_request = UpdateSessionPermissionsRequestData(
            session_id=session_id, owner=owner, permissions_file=permissions_base64_encoded)
        update_session_permissions_request.append(a_request)
    return get_session_permissions_api(node).update_session_permissions(body=update_session_permissions_request)


def get_url_to_connect(api_response):
    ip_address = api_response.session.server.ip
    port = api_response.session.server.port
    web_url_path = api_response.session.server.web_url_path
    connection_token = api_response.connection_token
    session_id = api_response.session.id
    return f"https://{ip_address}:{port}{web_url_path}?authToken={connection_token}#{session_id}"


def get_session_connection_data(node, session_id, user):
    return get_session_connection_api(node).get_session_connection_data(session_id=session_id, user=user)


# --- small readers ------------------------------------------------------------------------------------------

def sessions_by_id(node, ids):
    return {s.id: s for s in describe_sessions(node, session_ids=list(ids)).sessions}


def all_pages(fetch, max_results, what):
    """Follow NextToken (each page through the next node); returns the ids in order, checks page sizes."""
    ids, token, pages = [], None, 0
    while True:
        page = fetch(next_node(), token, max_results)
        items = page.sessions if hasattr(page, "sessions") else page.servers
        pages += 1
        if len(items) > max_results:
            check(f"{what}: page {pages} holds at most MaxResults={max_results}", False, f"{len(items)} items")
        ids += [item.id for item in items]
        token = page.next_token
        if not token or pages > 1000:
            return ids, pages


def png_size(data):
    """Width and height from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


def tag_value(server, key):
    return next((tag.value for tag in (server.tags or []) if tag.key == key), None)


# --- the scenario -------------------------------------------------------------------------------------------

S = {}  # shared between steps: server ids, session ids


def served_spec():
    served = []
    for node in NODES:
        res = requests.get(node + "/dcv-session-manager-api.yaml", verify=CA_FILE, timeout=30)
        check(f"GET /dcv-session-manager-api.yaml without a token via {via(node)}: 200, an OpenAPI 3 document",
              res.status_code == 200 and b"openapi: 3." in res.content, f"{res.status_code} {res.text[:200]!r}")
        served.append(res.content)
    check("every node serves the same spec", len(set(served)) == 1, f"{len(set(served))} different documents")


def tokens_and_auth():
    for node in NODES:
        res = requests.post(node + "/oauth2/token?grant_type=client_credentials",
                            headers={"Authorization": "Basic " + build_client_credentials(),
                                     "Content-Type": "application/x-www-form-urlencoded"},
                            verify=CA_FILE, timeout=30)
        body = res.json() if res.headers.get("content-type", "").startswith("application/json") else {}
        check(f"POST /oauth2/token via {via(node)}: 200, token_type Bearer, expires_in > 0",
              res.status_code == 200 and body.get("token_type") == "Bearer" and body.get("access_token")
              and isinstance(body.get("expires_in"), int) and body["expires_in"] > 0, f"{res.status_code} {res.text}")
    node = next_node()
    configuration = get_client_configuration(node)
    configuration.username, configuration.password = __CLIENT_ID, __CLIENT_SECRET
    token = swagger_client.Oauth2Api(swagger_client.ApiClient(configuration)).get_access_token(
        grant_type="client_credentials")
    check(f"the generated Oauth2Api.get_access_token (HTTP Basic) via {via(node)}: a Bearer token",
          token.token_type == "Bearer" and bool(token.access_token) and token.expires_in > 0, token.to_json())
    node = next_node()
    wrong = base64.b64encode(f"{__CLIENT_ID}:not-the-secret".encode()).decode()
    res = requests.post(node + "/oauth2/token?grant_type=client_credentials",
                        headers={"Authorization": "Basic " + wrong}, verify=CA_FILE, timeout=30)
    check(f"POST /oauth2/token with a wrong secret via {via(node)}: 401", res.status_code == 401,
          f"{res.status_code} {res.text}")
    node = next_node()
    anonymous = swagger_client.SessionsApi(swagger_client.ApiClient(get_client_configuration(node)))
    expect_api_error(f"describeSessions without Authorization via {via(node)}: 401 "
                     '{"error": "No authorization header"}',
                     401, lambda: anonymous.describe_sessions(DescribeSessionsRequestData()),
                     error="No authorization header")
    node = next_node()
    forged = swagger_client.ServersApi(swagger_client.ApiClient(get_client_configuration(node)))
    forged.api_client.set_default_header("Authorization", "Bearer not.a.token")
    expect_api_error(f"describeServers with a forged token via {via(node)}: 401", 401,
                     lambda: forged.describe_servers(DescribeServersRequestData()))


def servers_described():
    agents = [agent["id"] for agent in CLUSTER.get("agents", [])]

    def all_agents_registered():
        servers = {s.id: s for s in describe_servers(next_node()).servers}
        return servers if all(a in servers for a in agents) and len(servers) >= 2 else None

    servers = wait_for(f"describeServers: the cluster's agents {agents} are registered", all_agents_registered)
    if not servers:
        raise RuntimeError("no servers to run the examples on")
    by_tag = {tag_value(s, "dev_agent"): s.id for s in servers.values()}
    S["s1"], S["s2"] = by_tag.get("1"), by_tag.get("2")
    check("describeServers: one server has tag dev_agent=1 and another dev_agent=2", S["s1"] and S["s2"],
          f"tags: {by_tag}")
    for server in servers.values():
        check(f"describeServers: {server.id} is AVAILABLE, with Endpoints, Host facts and the dcv:os-family tag",
              server.availability == "AVAILABLE" and server.endpoints and server.host is not None
              and server.host.os.family in ("linux", "windows") and tag_value(server, "dcv:os-family"),
              server.to_json())
    node = next_node()
    response = describe_servers(node)
    check_request_id(f"describeServers via {via(node)}", response)
    # The guide's example: all servers, two per page.
    ids, pages = all_pages(lambda n, t, m: describe_servers(n, next_token=t, max_results=m), 1,
                           "describeServers MaxResults=1")
    check(f"describeServers MaxResults=1: {pages} pages through every node list every server once",
          sorted(ids) == sorted(servers) and len(ids) == len(set(ids)), f"{ids} vs {sorted(servers)}")
    ids, _ = all_pages(lambda n, t, m: describe_servers(n, next_token=t, max_results=m), 2,
                       "describeServers MaxResults=2")
    check("describeServers MaxResults=2 (the guide's example): every server once",
          sorted(ids) == sorted(servers), f"{ids}")
    node = next_node()
    got = [s.id for s in describe_servers(node, server_ids=[S["s1"], "serverId2"]).servers]
    check(f"describeServers ServerIds=[{S['s1']}, serverId2] via {via(node)}: only {S['s1']}", got == [S["s1"]],
          f"{got}")
    node = next_node()
    expect_api_error(f"describeServers with a forged NextToken via {via(node)}: 400", 400,
                     lambda: describe_servers(node, next_token="forged"))
    expect_client_refusal("describeServers MaxResults=0: refused by the client generated from the spec",
                          lambda: describe_servers(node, max_results=0))


def close_and_open_empty_server():
    # The guide's CloseServers example: one existing server, one that does not exist.
    node = next_node()
    response = close_servers(node, [S["s2"], "serverId2"])
    check_request_id(f"closeServers via {via(node)}", response)
    check(f"closeServers [{S['s2']}, serverId2] via {via(node)}: {S['s2']} closed",
          [r.server_id for r in response.successful_list] == [S["s2"]], response.to_json())
    failed = response.unsuccessful_list
    check("closeServers: serverId2 fails with DCV_SERVER_NOT_FOUND, 'Dcv server not found.'",
          len(failed) == 1 and failed[0].close_server_request_data.server_id == "serverId2"
          and failed[0].failure_code == "DCV_SERVER_NOT_FOUND" and failed[0].failure_reason == "Dcv server not found.",
          response.to_json())
    node = next_node()
    server = describe_servers(node, server_ids=[S["s2"]]).servers[0]
    check(f"describeServers via {via(node)}: {S['s2']} is UNAVAILABLE / SERVER_CLOSED",
          server.availability == "UNAVAILABLE" and server.unavailability_reason == "SERVER_CLOSED", server.to_json())


def sessions_created():
    node = next_node()
    # The guide's CreateSessions example, with this cluster's tags; session3's '/dcv/script.sh' leaves the
    # init folder and is refused; the relative 'dcv/script.sh' is the accepted form.
    response = create_sessions(node, [
        ("session1", ALICE, "CONSOLE", None, None, None, 1, None, PERMISSIONS_FILE,
         "tag:dev_agent = '1' and server:Host.Memory.TotalBytes > 1024", "/storage/root"),
        ("session2", ALICE, "VIRTUAL", None, "myapp.sh", None, 1, False, None, "tag:dev_agent = '1'", None),
        ("session3", BOB, "VIRTUAL", "dcv/script.sh", "myapp.sh", ["argument1", "argument2"], 1, False, None,
         "server:Host.Os.Family = 'linux' and tag:dev_agent := '1'", None),
        ("session3-absolute", BOB, "VIRTUAL", "/dcv/script.sh", "myapp.sh", ["argument1", "argument2"], 1, False,
         None, "tag:dev_agent = '1'", None),
        ("bad-requirements", BOB, "VIRTUAL", None, None, None, None, None, None, "tag:dev_agent = ", None),
        (None, BOB, "VIRTUAL", None, None, None, None, None, None, None, None),
    ])
    check_request_id(f"createSessions via {via(node)}", response)
    accepted = {s.name: s for s in response.successful_list}
    check(f"createSessions via {via(node)}: session1..3 accepted",
          sorted(accepted) == ["session1", "session2", "session3"], response.to_json())
    for s in response.successful_list:
        check(f"createSessions: {s.name} answered CREATING / SESSION_PLACING with its Owner and Type",
              s.state == "CREATING" and s.substate == "SESSION_PLACING" and UUID.match(s.id or "") is not None
              and s.owner in (ALICE, BOB) and s.type in ("CONSOLE", "VIRTUAL") and s.creation_time is not None,
              s.to_json())
    check("createSessions: session1 keeps MaxConcurrentClients=1 and StorageRoot",
          "session1" in accepted and accepted["session1"].max_concurrent_clients == 1
          and accepted["session1"].storage_root == "/storage/root", response.to_json())
    refused = {(u.create_session_request_data.name or ""): u for u in response.unsuccessful_list}
    check("createSessions: the absolute InitFilePath is refused on its own, with a reason naming InitFile",
          "session3-absolute" in refused and "InitFile" in refused["session3-absolute"].failure_reason,
          response.to_json())
    check("createSessions: the Requirements syntax error is refused with a position",
          "bad-requirements" in refused and "position" in refused["bad-requirements"].failure_reason
          and refused["bad-requirements"].create_session_request_data.requirements == "tag:dev_agent = ",
          response.to_json())
    check("createSessions: the element without Name is refused, naming Name",
          "" in refused and "Name" in refused[""].failure_reason, response.to_json())
    S.update({name: s.id for name, s in accepted.items()})

    # EnqueueRequest, while the only server with dev_agent=2 is closed.
    node = next_node()
    response = get_sessions_api(node).create_sessions([
        CreateSessionRequestData(name="queued", owner=BOB, type="VIRTUAL", requirements="tag:dev_agent = '2'",
                                 enqueue_request=True),
        CreateSessionRequestData(name="not-queued", owner=BOB, type="VIRTUAL", requirements="tag:dev_agent = '2'"),
        CreateSessionRequestData(name="waiting", owner=ALICE, type="VIRTUAL", requirements="tag:dev_agent = 'none'",
                                 enqueue_request=True),
    ])
    accepted = {s.name: s for s in response.successful_list}
    check(f"createSessions EnqueueRequest via {via(node)}: queued, not-queued and waiting accepted in CREATING",
          sorted(accepted) == ["not-queued", "queued", "waiting"]
          and all(s.state == "CREATING" for s in accepted.values()) and not response.unsuccessful_list,
          response.to_json())
    S.update({name: s.id for name, s in accepted.items()})

    ready = [S["session1"], S["session2"], S["session3"]]
    found = wait_for("describeSessions: session1..3 become READY on the dev_agent=1 server (polled through every "
                     "node)", lambda: _all_in_state(ready, "READY"))
    if found:
        for name in ("session1", "session2", "session3"):
            s = found[S[name]]
            check(f"describeSessions: {name} READY with its Server (Id, Ip, Hostname, Endpoints)",
                  s.server is not None and s.server.id == S["s1"] and s.server.ip and s.server.hostname
                  and s.server.endpoints and s.substate is None, s.to_json())
    failed = wait_for("describeSessions: not-queued (no open server matches, no EnqueueRequest) ends DELETED",
                      lambda: _all_in_state([S["not-queued"]], "DELETED"))
    if failed:
        check("describeSessions: not-queued has a StateReason", bool(failed[S["not-queued"]].state_reason),
              failed[S["not-queued"]].to_json())
    node = next_node()
    now = sessions_by_id(node, [S["queued"], S["waiting"]])
    for name in ("queued", "waiting"):
        s = now.get(S[name])
        check(f"describeSessions via {via(node)}: {name} (EnqueueRequest) waits in CREATING / SESSION_PLACING",
              s is not None and s.state == "CREATING" and s.substate == "SESSION_PLACING" and s.server is None,
              s.to_json() if s else "missing")
    node = next_node()
    server = describe_servers(node, server_ids=[S["s1"]]).servers[0]
    check(f"describeServers via {via(node)}: {S['s1']} counts 1 console and 2 virtual sessions",
          (server.console_session_count, server.virtual_session_count) == (1, 2), server.to_json())


def _all_in_state(ids, state):
    found = sessions_by_id(next_node(), ids)
    return found if all(found.get(i) is not None and found[i].state == state for i in ids) else None


def open_then_close_busy_server():
    # The guide's OpenServers example: the closed server and one that does not exist.
    node = next_node()
    response = open_servers(node, [S["s2"], "serverId2"])
    check_request_id(f"openServers via {via(node)}", response)
    check(f"openServers [{S['s2']}, serverId2] via {via(node)}: {S['s2']} opened",
          [r.server_id for r in response.successful_list] == [S["s2"]], response.to_json())
    failed = response.unsuccessful_list
    check("openServers: serverId2 fails with DCV_SERVER_NOT_FOUND, 'Dcv server not found.'",
          len(failed) == 1 and failed[0].open_server_request_data.server_id == "serverId2"
          and failed[0].failure_code == "DCV_SERVER_NOT_FOUND" and failed[0].failure_reason == "Dcv server not found.",
          response.to_json())
    found = wait_for(f"describeSessions: the queued session becomes READY on {S['s2']} once it is open",
                     lambda: _all_in_state([S["queued"]], "READY"))
    if found:
        server = found[S["queued"]].server
        check(f"describeSessions: queued runs on {S['s2']}", server is not None and server.id == S["s2"],
              found[S["queued"]].to_json())
    node = next_node()
    waiting = sessions_by_id(node, [S["waiting"]]).get(S["waiting"])
    check(f"describeSessions via {via(node)}: waiting (no server matches) is still queued",
          waiting is not None and waiting.state == "CREATING", waiting.to_json() if waiting else "missing")

    node = next_node()
    response = close_servers(node, [S["s2"]])
    failed = response.unsuccessful_list
    check(f"closeServers {S['s2']} without Force while it runs a session via {via(node)}: refused",
          not response.successful_list and len(failed) == 1 and failed[0].close_server_request_data.server_id == S["s2"]
          and failed[0].failure_code and failed[0].failure_reason, response.to_json())
    node = next_node()
    response = close_servers(node, [S["s2"]], force=True)
    check(f"closeServers {S['s2']} with Force via {via(node)}: closed",
          [r.server_id for r in response.successful_list] == [S["s2"]] and not response.unsuccessful_list,
          response.to_json())
    node = next_node()
    server = describe_servers(node, server_ids=[S["s2"]]).servers[0]
    queued = sessions_by_id(node, [S["queued"]]).get(S["queued"])
    check(f"via {via(node)}: {S['s2']} is SERVER_CLOSED and its session stays READY",
          server.unavailability_reason == "SERVER_CLOSED" and queued is not None and queued.state == "READY",
          f"{server.availability}/{server.unavailability_reason}, {queued.state if queued else 'missing'}")
    node = next_node()
    response = open_servers(node, [S["s2"]])
    server = describe_servers(next_node(), server_ids=[S["s2"]]).servers[0]
    check(f"openServers {S['s2']} via {via(node)}: AVAILABLE again",
          [r.server_id for r in response.successful_list] == [S["s2"]] and server.availability == "AVAILABLE",
          server.to_json())


def sessions_described():
    node = next_node()
    # The guide's first example: ids and filters that match nothing here.
    response = describe_sessions(node, session_ids=["SessionId1895", "SessionId1897"], owner="an owner 1890",
                                 tags=[{"Key": "ram", "Value": "4gb"}])
    check_request_id(f"describeSessions via {via(node)}", response)
    check(f"describeSessions (the guide's first example) via {via(node)}: Sessions is an empty list",
          response.sessions == [], response.to_json())
    # The guide's DescribeSessions example: an owner and a server tag.
    node = next_node()
    got = {s.id for s in describe_sessions(node, owner=ALICE, tags=[{"Key": "dev_agent", "Value": "1"}]).sessions}
    check(f"describeSessions owner={ALICE} tag:dev_agent=1 via {via(node)}: session1, session2",
          got == {S["session1"], S["session2"]}, f"{got}")
    node = next_node()
    bobs = {S["session3"], S["queued"], S["not-queued"]}
    got = {s.id for s in describe_sessions(node, owner=BOB).sessions}
    check(f"describeSessions owner={BOB} via {via(node)}: session3, queued, not-queued (DELETED stays visible)",
          got == bobs, f"{got}")
    node = next_node()
    response = describe_sessions(node, owner=BOB, tags=[{"Key": "dev_agent", "Value": "2"}])
    got = {s.id for s in response.sessions}
    check(f"describeSessions owner={BOB} tag:dev_agent=2 via {via(node)}: queued", got == {S["queued"]}, f"{got}")
    node = next_node()
    response = describe_sessions(node, tags=[{"Key": "dev_agent", "Value": "2"}])
    check(f"describeSessions tag:dev_agent=2 via {via(node)}: every session runs on a server with that tag",
          S["queued"] in {s.id for s in response.sessions}
          and all(s.server is not None and tag_value(s.server, "dev_agent") == "2" for s in response.sessions),
          response.to_json())
    node = next_node()
    got = {s.id for s in describe_sessions(node, session_ids=[S["session1"], S["session3"], "nope"]).sessions}
    check(f"describeSessions SessionIds=[session1, session3, nope] via {via(node)}: session1, session3",
          got == {S["session1"], S["session3"]}, f"{got}")
    node = next_node()
    got = {s.id for s in describe_sessions(node, session_ids=[S["session1"], S["session3"]], owner=ALICE).sessions}
    check(f"describeSessions SessionIds=[session1, session3] owner={ALICE} via {via(node)}: session1",
          got == {S["session1"]}, f"{got}")

    # Paging: MaxResults and NextToken, each page through the next node.
    ids, pages = all_pages(lambda n, t, m: describe_sessions(n, owner=BOB, next_token=t, max_results=m), 1,
                           "describeSessions MaxResults=1")
    check(f"describeSessions owner={BOB} MaxResults=1: {pages} pages, each session once, none missing",
          sorted(ids) == sorted(bobs) and pages >= len(bobs), f"{ids}")
    node = next_node()
    everything = {s.id for s in get_sessions_api(node).describe_sessions().sessions}
    check(f"describeSessions without a body via {via(node)}: holds every session of this run",
          {S[k] for k in ("session1", "session2", "session3", "queued", "not-queued", "waiting")} <= everything,
          f"{len(everything)} sessions")
    ids, pages = all_pages(lambda n, t, m: describe_sessions(n, next_token=t, max_results=m), 2,
                           "describeSessions MaxResults=2")
    check(f"describeSessions MaxResults=2: {pages} pages list the same sessions as one unpaged call",
          sorted(ids) == sorted(everything) and len(ids) == len(set(ids)), f"{len(ids)} vs {len(everything)}")
    node = next_node()
    expect_api_error(f"describeSessions with a forged NextToken via {via(node)}: 400", 400,
                     lambda: describe_sessions(node, next_token="forged"))
    expect_client_refusal("describeSessions MaxResults=0: refused by the client generated from the spec",
                          lambda: describe_sessions(node, max_results=0))
    expect_client_refusal("describeSessions MaxResults=1001: refused by the client generated from the spec",
                          lambda: describe_sessions(node, max_results=1001))
    expect_api_error(f"describeSessions with an unknown filter via {via(node)}: 400", 400,
                     lambda: get_sessions_api(node).describe_sessions(
                         DescribeSessionsRequestData(filters=[KeyValuePair(key="colour", value="red")])))
    node = next_node()
    raw = get_sessions_api(node).describe_sessions_without_preload_content(
        DescribeSessionsRequestData(session_ids=[S["session1"]])).data.decode()
    check(f"describeSessions via {via(node)}: CreationTime is ISO-8601 UTC with milliseconds",
          ISO_MILLIS.search(raw) is not None, raw[:300])


def connection_data():
    for node in NODES:
        response = get_session_connection_data(node, S["session2"], ALICE)
        url = get_url_to_connect(response)
        check(f"GetSessionConnectionData session2/{ALICE} via {via(node)}: the READY session and a ConnectionToken",
              response.session.id == S["session2"] and response.session.state == "READY"
              and bool(response.connection_token), response.to_json())
        check(f"GetSessionConnectionData via {via(node)}: the guide's URL "
              "https://{Ip}:{Port}{WebUrlPath}?authToken=...#{SessionId}",
              re.match(r"^https://[^:/]+:\d+/\S*\?authToken=[^#\s]+#" + re.escape(S["session2"]) + "$", url)
              is not None, url)
    node = next_node()
    other = get_session_connection_data(node, S["session2"], "somebody-else")
    check(f"GetSessionConnectionData for another user via {via(node)}: a different token",
          other.connection_token and other.connection_token != response.connection_token, other.to_json())
    node = next_node()
    expect_api_error(f"GetSessionConnectionData for sessionId12345 (unknown) via {via(node)}: 400", 400,
                     lambda: get_session_connection_data(node, "sessionId12345", "user1"))


def screenshots():
    # The guide's example: 800 x 600, one session that exists and one that does not.
    for node in NODES:
        response = get_session_screenshots(node, [S["session2"], "sessionId2"], 800, 600)
        check_request_id(f"getSessionScreenshots via {via(node)}", response)
        ok = len(response.successful_list) == 1
        if check(f"getSessionScreenshots [session2, sessionId2] 800x600 via {via(node)}: one screenshot", ok,
                 response.to_json()[:400]):
            shot = response.successful_list[0].session_screenshot
            primary = [image for image in shot.images if image.primary]
            check("getSessionScreenshots: the screenshot is of session2, with one primary image",
                  shot.session_id == S["session2"] and len(primary) == 1, f"{shot.session_id} {len(primary)}")
            for image in shot.images:
                width, height = png_size(base64.b64decode(image.data))
                check(f"getSessionScreenshots: {image.format} image decodes to a PNG of {width}x{height} <= 800x600",
                      image.format == "png" and 0 < width <= 800 and 0 < height <= 600
                      and image.creation_time is not None, f"{image.format} {width}x{height}")
        failed = response.unsuccessful_list
        check("getSessionScreenshots: sessionId2 fails with 'Dcv session not found.'",
              len(failed) == 1 and failed[0].get_session_screenshot_request_data.session_id == "sessionId2"
              and failed[0].failure_reason == "Dcv session not found.", response.to_json()[-300:])
    node = next_node()
    response = get_session_screenshots(node, [S["session1"]], 64, 48)
    images = [base64.b64decode(i.data) for r in response.successful_list for i in r.session_screenshot.images]
    sizes = [png_size(i) for i in images]
    check(f"getSessionScreenshots MaxWidth=64 MaxHeight=48 via {via(node)}: every image fits 64x48 ({sizes})",
          sizes and all(0 < w <= 64 and 0 < h <= 48 for w, h in sizes), response.to_json()[:300])
    node = next_node()
    response = get_session_screenshots(node, [S["queued"]])
    sizes = [png_size(base64.b64decode(i.data)) for r in response.successful_list for i in r.session_screenshot.images]
    check(f"getSessionScreenshots without MaxWidth/MaxHeight via {via(node)}: the broker default, at most 160x100 "
          f"({sizes})", sizes and all(0 < w <= 160 and 0 < h <= 100 for w, h in sizes), response.to_json()[:300])
    node = next_node()
    response = get_session_screenshots(node, [S["session2"]], 0, 600)
    check(f"getSessionScreenshots MaxWidth=0 via {via(node)}: refused on its own",
          not response.successful_list and len(response.unsuccessful_list) == 1
          and response.unsuccessful_list[0].failure_reason, response.to_json())
    node = next_node()
    response = get_session_screenshots(node, [S["waiting"]])
    check(f"getSessionScreenshots of a queued (CREATING) session via {via(node)}: refused with a reason",
          not response.successful_list and len(response.unsuccessful_list) == 1
          and response.unsuccessful_list[0].failure_reason, response.to_json())


def permissions():
    node = next_node()
    response = update_session_permissions(node, [(S["session2"], ALICE, PERMISSIONS_FILE)])
    check_request_id(f"updateSessionPermissions via {via(node)}", response)
    check(f"updateSessionPermissions session2 via {via(node)}: updated",
          [r.session_id for r in response.successful_list] == [S["session2"]] and not response.unsuccessful_list,
          response.to_json())
    node = next_node()
    # The guide's example, whose session does not exist here, plus a wrong owner.
    response = update_session_permissions(node, [("SessionId1897", "an owner 1890", "file_base64_encoded"),
                                                 (S["queued"], "somebody-else", PERMISSIONS_FILE)])
    failed = {r.session_id: r.failure_reason for r in response.unsuccessful_list}
    check(f"updateSessionPermissions SessionId1897 (unknown) and queued with a wrong owner via {via(node)}: both "
          "refused with a reason", not response.successful_list and set(failed) == {"SessionId1897", S["queued"]}
          and all(failed.values()), response.to_json())


def sessions_deleted():
    node = next_node()
    # The guide's example: one session that exists, one that does not.
    response = delete_sessions(node, [(S["session1"], ALICE), ("SessionIdabc", "user99")])
    check_request_id(f"deleteSessions via {via(node)}", response)
    check(f"deleteSessions [session1, SessionIdabc] via {via(node)}: session1 DELETING",
          [(r.session_id, r.state) for r in response.successful_list] in ([(S["session1"], "DELETING")],
                                                                          [(S["session1"], "DELETED")]),
          response.to_json())
    failed = response.unsuccessful_list
    check("deleteSessions: SessionIdabc fails with 'The requested dcvSession does not exist'",
          len(failed) == 1 and failed[0].session_id == "SessionIdabc"
          and failed[0].failure_reason == "The requested dcvSession does not exist", response.to_json())
    wait_for("describeSessions: session1 becomes DELETED", lambda: _all_in_state([S["session1"]], "DELETED"))
    node = next_node()
    response = delete_sessions(node, [(S["session3"], ALICE)])
    check(f"deleteSessions session3 with the wrong owner via {via(node)}: refused",
          not response.successful_list and [r.session_id for r in response.unsuccessful_list] == [S["session3"]],
          response.to_json())
    node = next_node()
    response = delete_sessions(node, [(S["waiting"], ALICE)])
    check(f"deleteSessions of the queued session 'waiting' via {via(node)}: accepted",
          [r.session_id for r in response.successful_list] == [S["waiting"]], response.to_json())
    node = next_node()
    response = delete_sessions(node, [(S["session3"], BOB)], force=True)
    check(f"deleteSessions session3 with Force via {via(node)}: accepted",
          [r.session_id for r in response.successful_list] == [S["session3"]], response.to_json())
    node = next_node()
    response = delete_sessions(node, [(S["session2"], ALICE), (S["queued"], BOB)])
    check(f"deleteSessions session2 and queued via {via(node)}: accepted",
          sorted(r.session_id for r in response.successful_list) == sorted([S["session2"], S["queued"]]),
          response.to_json())
    rest = [S[k] for k in ("session2", "session3", "queued", "waiting")]
    wait_for("describeSessions: session2, session3, queued and waiting become DELETED",
             lambda: _all_in_state(rest, "DELETED"))

    def servers_empty():
        servers = describe_servers(next_node(), server_ids=[S["s1"], S["s2"]]).servers
        return all((s.console_session_count, s.virtual_session_count) == (0, 0) for s in servers)

    wait_for("describeServers: both servers count 0 console and 0 virtual sessions again", servers_empty)
    node = next_node()
    expect_api_error(f"GetSessionConnectionData of the DELETED session1 via {via(node)}: 400", 400,
                     lambda: get_session_connection_data(node, S["session1"], ALICE))
    node = next_node()
    response = get_session_screenshots(node, [S["session1"]])
    check(f"getSessionScreenshots of the DELETED session1 via {via(node)}: refused with a reason",
          not response.successful_list and len(response.unsuccessful_list) == 1
          and response.unsuccessful_list[0].failure_reason, response.to_json())
    node = next_node()
    response = delete_sessions(node, [("SessionIdabc", "user99")])
    check(f"deleteSessions of an unknown session alone via {via(node)}: empty SuccessfulList, one failure",
          response.successful_list == [] and len(response.unsuccessful_list) == 1, response.to_json())


def main():
    print(f"client examples against {len(NODES)} nodes: {', '.join(NODES)} (owners {ALICE}, {BOB})", flush=True)
    if "body" not in inspect.signature(swagger_client.SessionsApi.describe_sessions).parameters:
        print("FAIL  the generated methods do not take the request as `body=` as the guide's calls do "
              "(`describe_sessions(body=request)`): the spec lost `x-codegen-request-body-name: body`", flush=True)
        return 1
    step("the served spec", served_spec)
    step("tokens and authorization", tokens_and_auth)
    step("DescribeServers", servers_described)
    if not (S.get("s1") and S.get("s2")):
        print("FAIL  no servers tagged dev_agent=1 and dev_agent=2: the remaining examples cannot run")
        return 1
    step("CloseServers (the guide's example) on an empty server", close_and_open_empty_server)
    step("CreateSessions (the guide's example, Requirements, EnqueueRequest)", sessions_created)
    step("OpenServers (the guide's example), CloseServers with and without Force", open_then_close_busy_server)
    step("DescribeSessions (SessionIds, filters owner and tag:<key>, MaxResults, NextToken)", sessions_described)
    step("GetSessionConnectionData (the guide's example)", connection_data)
    step("GetSessionScreenshots (the guide's example)", screenshots)
    step("UpdateSessionPermissions (the guide's example)", permissions)
    step("DeleteSessions (the guide's example)", sessions_deleted)
    print(f"\nclient examples: {Report.passed} checks passed, {Report.failed} failed", flush=True)
    return 1 if Report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
