"""Signs requests with botocore (offline) and prints each canonical request and Authorization.

stdin: a JSON list of {service, region, method, url, headers: [[k, v]], body_b64}; credentials
AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY (session token optional: "token"), time
fixed at 2015-08-30T12:36:00Z. stdout: a JSON list of {canonical_request, authorization}.
Used by rft-launch/tests/sigv4.rs; needs botocore (rft-launch/tests/requirements.txt).
"""
import base64
import datetime
import json
import sys
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

FIXED = datetime.datetime(2015, 8, 30, 12, 36, 0)


def sign(item):
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", item.get("token"))
    cls = botocore.auth.S3SigV4Auth if item["service"] == "s3" else botocore.auth.SigV4Auth
    auth = cls(creds, item["service"], item["region"])
    body = base64.b64decode(item["body_b64"])
    req = AWSRequest(method=item["method"], url=item["url"], headers=dict(item["headers"]), data=body)
    seen = []
    compute = auth.canonical_request

    def record(request):
        seen.append(compute(request))
        return seen[-1]

    auth.canonical_request = record  # keep the canonical request add_auth signs
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=FIXED):
        auth.add_auth(req)
    return {"canonical_request": seen[0], "authorization": req.headers["Authorization"]}


print(json.dumps([sign(i) for i in json.load(sys.stdin)]))
