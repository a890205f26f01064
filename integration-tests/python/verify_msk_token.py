"""Checks an Amazon MSK IAM token with botocore's own SigV4 presigner (an implementation
independent of Icefall's): the token must be a base64url presigned GET of
kafka-cluster:Connect on kafka.<region>.amazonaws.com whose signature botocore computes too.
Prints "ok" or why not; exits non-zero on a mismatch."""
import argparse
import base64
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args()
    url = base64.urlsafe_b64decode(args.token + "=" * (-len(args.token) % 4)).decode()
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.netloc != f"kafka.{args.region}.amazonaws.com" or query.get("Action") != "kafka-cluster:Connect":
        sys.exit(f"not a kafka-cluster:Connect request to the region's endpoint: {url}")
    if not query.get("User-Agent"):
        sys.exit("no User-Agent")
    expected = query["X-Amz-Signature"]
    request = AWSRequest(method="GET", url=f"https://{parts.netloc}/?{urlencode({'Action': 'kafka-cluster:Connect'})}")
    # add_auth would sign at the current time: sign at the token's own time, step by step.
    request.context["timestamp"] = query["X-Amz-Date"]
    auth = SigV4QueryAuth(Credentials(args.key, args.secret), "kafka-cluster", args.region, expires=int(query["X-Amz-Expires"]))
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    if signature != expected:
        sys.exit(f"signature mismatch: botocore {signature}, token {expected}\n{canonical}")
    print("ok")


if __name__ == "__main__":
    main()
