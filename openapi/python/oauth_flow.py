"""jwt-todo's OAuth 2.0 endpoints, driven by Authlib (a client library this project did
not write), as a standard client and a resource server would use them.

Usage: python oauth_flow.py BASE_URL CLIENT_ID RESOURCE_SERVER_ID RESOURCE_SERVER_SECRET
The server must register CLIENT_ID as a public client allowed the password and
refresh_token grants, and RESOURCE_SERVER_ID (with that secret) as a confidential client
allowed to introspect; the development sample user (username / password) must exist.
"""

import sys

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client.errors import OAuthError


def check(condition, what):
    if not condition:
        raise SystemExit(f"oauth flow: {what}")
    print(f"ok: {what}")


def main(base, client_id, rs_id, rs_secret):
    metadata = requests.get(f"{base}/.well-known/oauth-authorization-server", timeout=10).json()
    check(metadata["issuer"] == base, "the metadata names this server as its issuer")
    token_url = metadata["token_endpoint"]
    revoke_url = metadata["revocation_endpoint"]
    introspect_url = metadata["introspection_endpoint"]
    check(
        "password" in metadata["grant_types_supported"],
        "the metadata lists the password grant",
    )

    # A public client: no secret, client_id in the body.
    client = OAuth2Session(client_id=client_id, token_endpoint_auth_method="none")
    token = client.fetch_token(token_url, username="username", password="password")
    check(token["token_type"] == "Bearer" and token["expires_in"] > 0, "password grant")
    me = client.get(f"{base}/me", timeout=10)
    check(me.status_code == 200 and me.json()["username"] == "username", "the token works")

    # A resource server: a confidential client authenticating with HTTP Basic.
    resource_server = OAuth2Session(
        client_id=rs_id,
        client_secret=rs_secret,
        token_endpoint_auth_method="client_secret_basic",
    )

    def introspect(tok, hint="access_token"):
        response = resource_server.introspect_token(
            introspect_url, token=tok, token_type_hint=hint
        )
        response.raise_for_status()
        return response.json()

    live = introspect(token["access_token"])
    check(
        live["active"] is True
        and live["username"] == "username"
        and live["client_id"] == client_id
        and live["token_type"] == "Bearer",
        "introspection of a live access token",
    )

    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(token_url, refresh_token=first_refresh)
    check(refreshed["refresh_token"] != first_refresh, "refresh grant rotates the refresh token")
    check(
        introspect(first_refresh, "refresh_token") == {"active": False},
        "the spent refresh token is inactive",
    )

    # Revoke the session by its refresh token: both its tokens are dead at once.
    response = client.revoke_token(
        revoke_url, token=refreshed["refresh_token"], token_type_hint="refresh_token"
    )
    check(response.status_code == 200, "revocation")
    check(
        introspect(refreshed["access_token"]) == {"active": False},
        "introspection of a revoked session's access token",
    )
    gone = requests.get(
        f"{base}/me",
        headers={"Authorization": f"Bearer {refreshed['access_token']}"},
        timeout=10,
    )
    check(gone.status_code == 401, "the revoked session's access token is refused")
    try:
        client.refresh_token(token_url, refresh_token=refreshed["refresh_token"])
        raise SystemExit("oauth flow: a revoked refresh token was accepted")
    except OAuthError as e:
        check(e.error == "invalid_grant", "a revoked refresh token is an invalid_grant")

    # No anonymous introspection.
    anonymous = requests.post(introspect_url, data={"token": token["access_token"]}, timeout=10)
    check(
        anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client",
        "introspection without client credentials is 401 invalid_client",
    )
    print("oauth flow: all checks passed")


if __name__ == "__main__":
    main(*sys.argv[1:5])
