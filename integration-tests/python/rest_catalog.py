"""An Iceberg REST catalog server for the tests: the REST protocol in front of PyIceberg's
SqlCatalog (SQLite), which checks every commit's requirements and applies its updates the way
REST servers do. It can be told to fail upcoming commits the ways real servers fail:

  POST /test/faults  {"commits": ["after-500", "before-503", ...]}
      after-500: apply the commit, then answer 500 (the client cannot know it landed)
      before-503: answer 503 without applying it
  GET /test/stats    {"commits": n, "conflicts": n, "faults": n, "tokens": n, "refused": n}

With --oauth-client ID:SECRET every /v1 request needs a bearer token from the OAuth2 token
endpoint (POST /v1/oauth/tokens, client credentials), valid for --token-lifetime seconds:

  POST /test/expire-tokens   every token issued so far stops working (the client must renew)
  POST /test/revoke          the client credential is refused from now on

With --sigv4 KEY:SECRET:REGION:SERVICE every /v1 request must carry an AWS SigV4 signature
by that key, checked with botocore's own signer (an implementation independent of ours), and a
payload hash that matches the body; "signed" counts the requests that passed.

With --vend-s3 ENDPOINT tables live on that S3 server (moto, started enforcing IAM after its
first four requests, which this server makes: an admin user, its policy and key, the bucket
"lake"). A client that sends X-Iceberg-Access-Delegation: vended-credentials gets, with each
table, keys of an IAM user allowed that table's prefix only ("vended" counts them); no other
key may write there.

Usage: rest_catalog.py --port P --catalog-db PATH --warehouse DIR [--oauth-client ID:SECRET]
       [--token-lifetime S] [--sigv4 KEY:SECRET:REGION:SERVICE] [--vend-s3 ENDPOINT]
"""

import argparse
import base64
import hashlib
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import CommitTableRequest
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder

LOCK = threading.Lock()
STATE = {
    "faults": [],
    "stats": {"commits": 0, "conflicts": 0, "faults": 0, "tokens": 0, "refused": 0, "signed": 0, "vended": 0},
}
# Vended credentials: the S3 endpoint, the admin's IAM client, and table prefix -> (key, secret).
VEND = {"endpoint": None, "iam": None, "keys": {}}
# SigV4: (key, secret, region, service) requests must be signed with, or None.
SIGV4 = {"scope": None}
# OAuth2: the client credential (None: no auth), whether it is revoked, token -> expiry time.
OAUTH = {"client": None, "lifetime": 3600, "revoked": False, "tokens": {}}


def table_result(table, vend=False):
    result = {
        "metadata-location": table.metadata_location,
        "metadata": json.loads(table.metadata.model_dump_json()),
        "config": {},
    }
    if vend and VEND["endpoint"]:
        location = table.metadata.location
        key, secret = vended_keys(location)
        granted = {"s3.access-key-id": key, "s3.secret-access-key": secret}
        # Both forms: `config` for older clients, `storage-credentials` (REST spec 1.8+).
        result["config"] = dict(granted)
        result["storage-credentials"] = [{"prefix": location, "config": granted}]
        STATE["stats"]["vended"] += 1
    return result


def vended_keys(location):
    """Keys of an IAM user that may read, write, list and delete under `location` only (called
    with LOCK held, as every request is served)."""
    if location not in VEND["keys"]:
        bucket, prefix = location.removeprefix("s3://").split("/", 1)
        user = "table-" + hashlib.sha256(location.encode()).hexdigest()[:16]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}/{prefix}/*"]},
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": [f"arn:aws:s3:::{bucket}"]},
            ],
        }
        VEND["iam"].create_user(UserName=user)
        VEND["iam"].put_user_policy(UserName=user, PolicyName="table", PolicyDocument=json.dumps(policy))
        created = VEND["iam"].create_access_key(UserName=user)["AccessKey"]
        VEND["keys"][location] = (created["AccessKeyId"], created["SecretAccessKey"])
    return VEND["keys"][location]


def bootstrap_s3(endpoint):
    """The four requests moto serves before it enforces IAM: an admin with every right, its
    key, and the bucket. Returns the admin's storage properties."""
    import boto3

    anonymous = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bootstrap", aws_secret_access_key="x")
    iam = boto3.client("iam", **anonymous)
    iam.create_user(UserName="catalog-admin")
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="catalog-admin", PolicyName="all", PolicyDocument=json.dumps(everything))
    key = iam.create_access_key(UserName="catalog-admin")["AccessKey"]
    admin = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    boto3.client("s3", **admin).create_bucket(Bucket="lake")
    VEND["endpoint"], VEND["iam"] = endpoint, boto3.client("iam", **admin)
    return {
        "s3.endpoint": endpoint,
        "s3.region": "us-east-1",
        "s3.access-key-id": key["AccessKeyId"],
        "s3.secret-access-key": key["SecretAccessKey"],
    }


def error(code, kind, message):
    return code, {"error": {"message": message, "type": kind, "code": code}}


class Handler(BaseHTTPRequestHandler):
    catalog = None

    def log_message(self, *args):
        pass

    def reply(self, code, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def raw_body(self):
        if not hasattr(self, "_raw"):
            length = int(self.headers.get("Content-Length") or 0)
            self._raw = self.rfile.read(length)
        return self._raw

    def body(self):
        return json.loads(self.raw_body() or b"{}")

    def signature_problem(self, method):
        """Why the request's SigV4 signature is not valid (None: it is)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        key, secret, region, service = SIGV4["scope"]
        match = re.fullmatch(
            r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
            r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})",
            self.headers.get("Authorization") or "",
        )
        if not match:
            return "no SigV4 Authorization header"
        if match.group(1) != key or match.group(3) != region or match.group(4) != service:
            return f"wrong key or scope: {match.group(1)}/{match.group(3)}/{match.group(4)}"
        body = self.raw_body()
        if self.headers.get("x-amz-content-sha256") != hashlib.sha256(body).hexdigest():
            return "the payload hash does not match the body"
        signed = match.group(5).split(";")
        headers = {name: self.headers.get(name) for name in signed if name != "host"}
        request = AWSRequest(method=method, url=f"http://{self.headers.get('host')}{self.path}", data=body, headers=headers)
        request.context["timestamp"] = self.headers.get("x-amz-date")
        auth = SigV4Auth(Credentials(key, secret, self.headers.get("x-amz-security-token")), service, region)
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        return None if expected == match.group(6) else "signature mismatch"

    def route(self, method):
        path = urlparse(self.path).path
        parts = [unquote(p) for p in path.strip("/").split("/")]
        with LOCK:
            try:
                return self.dispatch(method, parts)
            except NoSuchTableError as e:
                return error(404, "NoSuchTableException", str(e))
            except NoSuchNamespaceError as e:
                return error(404, "NoSuchNamespaceException", str(e))
            except (TableAlreadyExistsError, NamespaceAlreadyExistsError) as e:
                return error(409, "AlreadyExistsException", str(e))
            except CommitFailedException as e:
                STATE["stats"]["conflicts"] += 1
                return error(409, "CommitFailedException", str(e))
            except Exception as e:  # noqa: BLE001 - the server's own failure is a 500
                return error(500, type(e).__name__, str(e))

    def issue_token(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        # The client authenticates in the form (as Iceberg's clients do) or with HTTP Basic (as
        # RFC 6749 prefers, and librdkafka's OIDC client does).
        basic = self.headers.get("Authorization") or ""
        if basic.startswith("Basic "):
            given_id, _, given_secret = base64.b64decode(basic[6:]).decode().partition(":")
            form.setdefault("client_id", given_id)
            form.setdefault("client_secret", given_secret)
        client_id, _, secret = OAUTH["client"].partition(":")
        if (
            OAUTH["revoked"]
            or form.get("grant_type") != "client_credentials"
            or form.get("client_id") != client_id
            or form.get("client_secret") != secret
        ):
            return 401, {"error": "invalid_client", "error_description": "unknown or revoked client"}
        # JWT-shaped (unsigned), as identity providers issue them: Kafka clients read its claims.
        claims = {"sub": client_id, "iat": int(time.time()), "exp": int(time.time()) + OAUTH["lifetime"]}
        part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
        token = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_hex(16)}"
        OAUTH["tokens"][token] = time.monotonic() + OAUTH["lifetime"]
        STATE["stats"]["tokens"] += 1
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": OAUTH["lifetime"],
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        }

    def authorized(self):
        header = self.headers.get("Authorization") or ""
        token = header[len("Bearer "):] if header.startswith("Bearer ") else None
        expiry = OAUTH["tokens"].get(token)
        return expiry is not None and time.monotonic() < expiry

    def dispatch(self, method, parts):
        cat = self.catalog
        if parts[:1] == ["test"]:
            if method == "POST" and parts[1] == "faults":
                STATE["faults"].extend(self.body().get("commits", []))
                return 204, None
            if method == "POST" and parts[1] in ("expire-tokens", "revoke"):
                OAUTH["tokens"].clear()
                OAUTH["revoked"] = OAUTH["revoked"] or parts[1] == "revoke"
                return 204, None
            return 200, STATE["stats"]
        if parts[0] != "v1":
            return error(404, "NotFound", "unknown path")
        rest = parts[1:]
        if SIGV4["scope"] is not None:
            problem = self.signature_problem(method)
            if problem:
                STATE["stats"]["refused"] += 1
                return error(403, "ForbiddenException", f"SigV4: {problem}")
            STATE["stats"]["signed"] += 1
        if OAUTH["client"] is not None:
            if rest == ["oauth", "tokens"] and method == "POST":
                return self.issue_token()
            if not self.authorized():
                STATE["stats"]["refused"] += 1
                return error(401, "NotAuthorizedException", "missing, unknown or expired token")
        if rest == ["config"]:
            return 200, {"defaults": {}, "overrides": {}}
        if rest == ["namespaces"]:
            if method == "POST":
                body = self.body()
                cat.create_namespace(tuple(body["namespace"]), body.get("properties") or {})
                return 200, {"namespace": body["namespace"], "properties": {}}
            return 200, {"namespaces": [list(ns) for ns in cat.list_namespaces()]}
        namespace = tuple(rest[1].split("\x1f"))
        vend = "vended-credentials" in (self.headers.get("X-Iceberg-Access-Delegation") or "")
        if len(rest) == 3 and rest[2] == "tables":
            if method == "POST":
                return 200, table_result(self.create(namespace, self.body()), vend)
            return 200, {"identifiers": [{"namespace": list(i[:-1]), "name": i[-1]} for i in cat.list_tables(namespace)]}
        if len(rest) == 4 and rest[2] == "tables":
            identifier = namespace + (rest[3],)
            if method == "GET":
                return 200, table_result(cat.load_table(identifier), vend)
            if method == "DELETE":
                cat.drop_table(identifier)
                return 204, None
            if method == "POST":
                return self.commit(identifier, self.body())
        return error(404, "NotFound", "unknown path")

    def create(self, namespace, body):
        cat = self.catalog
        try:
            cat.create_namespace(namespace)
        except NamespaceAlreadyExistsError:
            pass
        schema = Schema.model_validate(body["schema"])
        spec = body.get("partition-spec")
        if spec:
            for i, field in enumerate(spec.get("fields", [])):
                field.setdefault("field-id", 1000 + i)
            spec.setdefault("spec-id", 0)
            spec = PartitionSpec.model_validate(spec)
        order = body.get("write-order")
        order = SortOrder.model_validate(order) if order else UNSORTED_SORT_ORDER
        return cat.create_table(
            namespace + (body["name"],),
            schema=schema,
            location=body.get("location"),
            partition_spec=spec or UNPARTITIONED_PARTITION_SPEC,
            sort_order=order,
            properties=body.get("properties") or {},
        )

    def commit(self, identifier, body):
        fault = STATE["faults"].pop(0) if STATE["faults"] else None
        if fault == "before-503":
            STATE["stats"]["faults"] += 1
            return error(503, "ServiceUnavailable", "injected: not applied")
        request = CommitTableRequest.model_validate(body)
        table = self.catalog.load_table(identifier)
        response = self.catalog.commit_table(table, request.requirements, request.updates)
        STATE["stats"]["commits"] += 1
        if fault == "after-500":
            STATE["stats"]["faults"] += 1
            return error(500, "CommitStateUnknownException", "injected: applied, then failed")
        return 200, {"metadata-location": response.metadata_location, "metadata": json.loads(response.metadata.model_dump_json())}

    def do_GET(self):
        self.reply(*self.route("GET"))

    def do_POST(self):
        self.reply(*self.route("POST"))

    def do_DELETE(self):
        self.reply(*self.route("DELETE"))

    def do_HEAD(self):
        code, _ = self.route("GET")
        self.send_response(204 if code == 200 else code)
        self.end_headers()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--catalog-db", required=True)
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--oauth-client")
    parser.add_argument("--token-lifetime", type=int, default=3600)
    parser.add_argument("--sigv4")
    parser.add_argument("--vend-s3", metavar="ENDPOINT")
    args = parser.parse_args()
    SIGV4["scope"] = tuple(args.sigv4.split(":")) if args.sigv4 else None
    OAUTH["client"] = args.oauth_client
    OAUTH["lifetime"] = args.token_lifetime
    if args.vend_s3:
        storage = bootstrap_s3(args.vend_s3)
        Handler.catalog = SqlCatalog("icefall", uri=f"sqlite:///{args.catalog_db}", warehouse="s3://lake/warehouse", **storage)
    else:
        Handler.catalog = SqlCatalog(
            "icefall", uri=f"sqlite:///{args.catalog_db}", warehouse=f"file://{args.warehouse}"
        )
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
