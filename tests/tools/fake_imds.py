"""An EC2 instance metadata service (IMDSv2) stand-in on 127.0.0.1, for the instance profile path.

fake_imds.py --port N --credentials FILE [--role NAME] [--log FILE]

It hands out a session token by PUT /latest/api/token, then, only with that token, the role name
and the credentials read from FILE (JSON: AccessKeyId, SecretAccessKey, Token), the way EC2 gives
an instance its profile's credentials. The credentials are read from a file so that they are not
on any command line. Each request is logged as one JSON line (method, path, whether the token
was right), never with the credentials.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    token = "imds-session-token-1"
    role = "slm-node-role"
    document = {"Code": "Success", "AccessKeyId": "ASIAIMDS", "SecretAccessKey": "imdssecret", "Token": "t0k"}
    seen: list = []
    log = None

    def log_message(self, *args):
        pass

    def note(self, method, token):
        Handler.seen.append((method, self.path, token))
        if Handler.log:
            with open(Handler.log, "a") as handle:
                handle.write(json.dumps({"method": method, "path": self.path, "token_ok": token == self.token}) + "\n")

    def do_PUT(self):
        self.note("PUT", self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"))
        if self.path != "/latest/api/token":
            return self.reply(404, "")
        return self.reply(200, self.token)

    def do_GET(self):
        token = self.headers.get("X-aws-ec2-metadata-token")
        self.note("GET", token)
        if token != self.token:
            return self.reply(401, "")
        if self.path == "/latest/meta-data/iam/security-credentials/":
            return self.reply(200, self.role)
        if self.path == "/latest/meta-data/iam/security-credentials/" + self.role:
            return self.reply(200, json.dumps(self.document))
        return self.reply(404, "")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


def start(port=0):
    """A server in a thread (for pytest): returns (server, url)."""
    Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--credentials", required=True)
    parser.add_argument("--role", default=Handler.role)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    with open(args.credentials) as handle:
        Handler.document = dict(json.load(handle), Code="Success")
    Handler.role, Handler.log = args.role, args.log
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"fake IMDS listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
