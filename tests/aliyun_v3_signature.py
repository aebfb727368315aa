#!/usr/bin/env python3
"""Independent worked example of Alibaba Cloud's V3 signature (ACS3-HMAC-SHA256).

Follows the formulas of https://help.aliyun.com/document_detail/2593177.html with nothing but the
standard library, for fixed inputs. `src/providers/aliyun/signing.rs` pastes the printed value into
a unit test and also runs this script when python3 is installed; the two must agree.
"""
import hashlib
import hmac

SECRET = "YourAccessKeySecret"
BODY = "ak=1&UserName=%E5%BC%A0%E4%B8%89".encode()
HEADERS = {
    "host": "cloudauth.aliyuncs.com",
    "x-acs-action": "Id2MetaVerify",
    "x-acs-version": "2019-03-07",
    "x-acs-date": "2023-10-26T09:01:01Z",
    "x-acs-signature-nonce": "d410180a5abf7fe235dd9b74aca91fc0",
    "content-type": "application/x-www-form-urlencoded",
}

hashed_payload = hashlib.sha256(BODY).hexdigest()
headers = dict(HEADERS, **{"x-acs-content-sha256": hashed_payload})
names = sorted(headers)
canonical_headers = "".join(f"{n}:{headers[n].strip()}\n" for n in names)
signed_headers = ";".join(names)
canonical_request = "\n".join(["POST", "/", "", canonical_headers, signed_headers, hashed_payload])
string_to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical_request.encode()).hexdigest()
print(hmac.new(SECRET.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest())
