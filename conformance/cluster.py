# Helpers for scripts/conformance (standard library only): wait for a `berth dev` cluster to be up, fetch the
# spec a node serves, get an access token. Every wait polls with a deadline.
"""Usage:
  cluster.py wait  --dir DIR [--pid PID] [--timeout S]   cluster.json written and every node's /health is 200
  cluster.py spec  --dir DIR --node N --out FILE          GET /dcv-session-manager-api.yaml from node N (1-based)
  cluster.py url   --dir DIR --node N                     print node N's API URL
  cluster.py field --dir DIR --key KEY                    print a top-level field of cluster.json
  cluster.py token --dir DIR --node N                     print an access token from node N
"""

import argparse
import base64
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request


def load(directory):
    with open(os.path.join(directory, "cluster.json")) as f:
        return json.load(f)


def context(cluster):
    return ssl.create_default_context(cafile=cluster["ca_file"])


def request(cluster, url, method="GET", headers=None, timeout=10):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=context(cluster), timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def alive(pid):
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited but is still a process until its parent waits for it.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait(args):
    deadline = time.monotonic() + args.timeout
    path = os.path.join(args.dir, "cluster.json")
    last = "cluster.json not written yet"
    while time.monotonic() < deadline:
        if not alive(args.pid):
            sys.exit(f"berth dev (pid {args.pid}) exited before the cluster was up")
        try:
            cluster = load(args.dir)
            pending = []
            for node in cluster["nodes"]:
                try:
                    status, _ = request(cluster, node["api_url"] + "/health", timeout=2)
                except OSError as exc:
                    status = exc
                if status != 200:
                    pending.append(f"node {node['id']}: {status}")
            if not pending:
                print(f"cluster up: {len(cluster['nodes'])} nodes healthy, {len(cluster.get('agents', []))} agents")
                return
            last = "; ".join(pending)
        except (OSError, ValueError, KeyError) as exc:
            last = f"{path}: {exc}"
        time.sleep(0.2)  # poll interval
    sys.exit(f"cluster not up within {args.timeout:.0f} s: {last}")


def node_url(cluster, n):
    nodes = cluster["nodes"]
    if not 1 <= n <= len(nodes):
        sys.exit(f"no node {n}: the cluster has {len(nodes)}")
    return nodes[n - 1]["api_url"]


def spec(args):
    cluster = load(args.dir)
    url = node_url(cluster, args.node) + "/dcv-session-manager-api.yaml"
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            status, body = request(cluster, url)
            if status == 200 and body.lstrip().startswith((b"openapi", b"#")):
                break
            last = f"HTTP {status}: {body[:200]!r}"
        except OSError as exc:
            last = str(exc)
        if time.monotonic() > deadline:
            sys.exit(f"GET {url} failed: {last}")
        time.sleep(0.5)  # poll interval
    with open(args.out, "wb") as f:
        f.write(body)
    print(f"spec fetched from {url} ({len(body)} bytes)")


def token(args):
    cluster = load(args.dir)
    credentials = base64.b64encode(f"{cluster['client_id']}:{cluster['client_secret']}".encode()).decode()
    url = node_url(cluster, args.node) + "/oauth2/token?grant_type=client_credentials"
    status, body = request(cluster, url, method="POST", headers={
        "Authorization": "Basic " + credentials, "Content-Type": "application/x-www-form-urlencoded"})
    if status != 200:
        sys.exit(f"POST {url}: HTTP {status} {body[:200]!r}")
    print(json.loads(body)["access_token"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["wait", "spec", "url", "field", "token"])
    parser.add_argument("--dir", required=True, help="the `berth dev --dir` directory")
    parser.add_argument("--node", type=int, default=1)
    parser.add_argument("--pid", type=int, help="berth dev's pid: stop waiting if it exits")
    parser.add_argument("--out")
    parser.add_argument("--key")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.command == "wait":
        wait(args)
    elif args.command == "spec":
        spec(args)
    elif args.command == "field":
        print(load(args.dir)[args.key])
    elif args.command == "url":
        print(node_url(load(args.dir), args.node))
    else:
        token(args)


if __name__ == "__main__":
    main()
