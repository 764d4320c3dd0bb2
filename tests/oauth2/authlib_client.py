"""Authlib's OAuth2Session (requests) against a running Palisade over HTTPS.

Usage: REQUESTS_CA_BUNDLE=CA_FILE authlib_client.py BASE_URL USERNAME PASSWORD MFA_USERNAME

(requests reads the test CA from REQUESTS_CA_BUNDLE: it takes precedence
over a session's `verify` in requests 2.32.)

Prints one JSON object: what each step gave, for the Rust test
(tests/api/oauth2_clients.rs) to check. Errors are reported as the
exception class and the OAuth2 error code Authlib read.
"""

import json
import sys

from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client.errors import OAuthError

base, username, password, mfa_username = sys.argv[1:5]
token_url = base + "/auth/token"
revoke_url = base + "/auth/revoke"
out = {}


def session():
    # A public client: no secret, client_id in the body.
    s = OAuth2Session(
        client_id="a-public-client",
        token_endpoint_auth_method="none",
        revocation_endpoint_auth_method="none",
    )
    return s


def error_of(call):
    try:
        call()
    except OAuthError as e:
        return {"class": type(e).__name__, "error": e.error}
    except Exception as e:  # anything else is a failure to read the answer
        return {"class": type(e).__name__, "error": None, "text": str(e)}
    return None


s = session()
token = s.fetch_token(token_url, username=username, password=password, grant_type="password")
out["token_type"] = token.get("token_type")
out["expires_in"] = token.get("expires_in")
out["profile"] = s.get(base + "/profile").status_code

refreshed = s.refresh_token(token_url, refresh_token=token["refresh_token"])
out["rotated"] = refreshed["refresh_token"] != token["refresh_token"]
out["profile_after_refresh"] = s.get(base + "/profile").status_code
out["replayed_refresh"] = error_of(
    lambda: session().refresh_token(token_url, refresh_token=token["refresh_token"])
)

fresh = session()
fresh.fetch_token(token_url, username=username, password=password, grant_type="password")
revoked = fresh.revoke_token(revoke_url, token=fresh.token["refresh_token"], token_type_hint="refresh_token")
out["revoke_status"] = revoked.status_code
out["refresh_after_revoke"] = error_of(
    lambda: session().refresh_token(token_url, refresh_token=fresh.token["refresh_token"])
)
out["profile_after_revoke"] = fresh.get(base + "/profile").status_code

out["wrong_password"] = error_of(
    lambda: session().fetch_token(token_url, username=username, password="not the password at all", grant_type="password")
)
out["bad_scope"] = error_of(
    lambda: session().fetch_token(token_url, username=username, password=password, grant_type="password", scope="admin")
)
out["mfa"] = error_of(
    lambda: session().fetch_token(token_url, username=mfa_username, password=password, grant_type="password")
)
print(json.dumps(out))
