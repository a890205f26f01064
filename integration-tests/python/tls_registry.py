"""A schema registry behind mutual TLS and OAuth2, for the tests: every connection must present
a client certificate signed by --ca; every request but the token endpoint must carry a bearer
token from POST /oauth/token (client credentials --client ID:SECRET).

  GET /subjects            ["events-value"]
  GET /schemas/ids/1       an Avro record schema
  GET /test/stats          {"tokens": n, "refused": n}   (also behind TLS)

Usage: tls_registry.py --port P --cert server.pem --key server.key --ca ca.pem --client ID:SECRET
"""

import argparse
import json
import secrets
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

SCHEMA = {"type": "record", "name": "Event", "fields": [{"name": "id", "type": "long"}]}
STATE = {"client": None, "tokens": set(), "stats": {"tokens": 0, "refused": 0}}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if urlparse(self.path).path != "/oauth/token":
            return self.reply(404, {"error_code": 404, "message": "not found"})
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        client_id, _, secret = STATE["client"].partition(":")
        if form.get("client_id") != client_id or form.get("client_secret") != secret:
            return self.reply(401, {"error": "invalid_client", "error_description": "bad client credentials"})
        token = secrets.token_hex(16)
        STATE["tokens"].add(token)
        STATE["stats"]["tokens"] += 1
        return self.reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600})

    def do_GET(self):
        path = urlparse(self.path).path
        if path == "/test/stats":
            return self.reply(200, STATE["stats"])
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Bearer ") or header[len("Bearer "):] not in STATE["tokens"]:
            STATE["stats"]["refused"] += 1
            return self.reply(401, {"error_code": 40101, "message": "Unauthorized"})
        if path == "/subjects":
            return self.reply(200, ["events-value"])
        if path == "/schemas/ids/1":
            return self.reply(200, {"schema": json.dumps(SCHEMA)})
        return self.reply(404, {"error_code": 40403, "message": "Schema not found"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--client", required=True)
    args = parser.parse_args()
    STATE["client"] = args.client
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.load_verify_locations(args.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
