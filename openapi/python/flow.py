"""The seed's flow through a Python client generated from openapi/openapi.json.

scripts/contract-checks generates the package `jwt_todo_client` with openapi-python-client
into a git-ignored folder on PYTHONPATH, starts a server and runs:

    python openapi/python/flow.py http://127.0.0.1:PORT OAUTH_PUBLIC_CLIENT_ID

Logs in, creates a todo (and retries a creation with its Idempotency-Key), pages through
the todos, sets a phone number and tries a wrong code, refreshes, replays the spent refresh token, logs in again, logs out and checks the
token is refused; registers a fresh account, changes its password (its other session
ends), reads its audit trail page by page and deletes it; enrols a second factor (TOTP, codes
from pyotp, as an authenticator app computes them), logs in with a code, then with a recovery
code, and disables it; then reads the OAuth metadata and runs a password grant through the
generated OAuth operations (an OAuth library drives them in oauth_flow.py): every status
and every parsed body comes from the generated client.
"""

from __future__ import annotations

import sys
import time
import uuid

import pyotp
from http import HTTPStatus

from jwt_todo_client import AuthenticatedClient, Client
from jwt_todo_client.types import UNSET, Unset
from jwt_todo_client.api.auth import login, login_mfa, logout, refresh_token
from jwt_todo_client.api.o_auth import oauth_metadata, oauth_token
from jwt_todo_client.api.todos import create_todo, list_todos
from jwt_todo_client.api.users import (
    change_password,
    confirm_totp,
    delete_account,
    disable_totp,
    enrol_totp,
    list_events,
    me,
    mfa_status,
    register,
    renew_recovery_codes,
    set_phone,
    verify_phone,
)
from jwt_todo_client.models import (
    ChangePasswordProblem,
    ChangePasswordProblemType,
    ChangePasswordRequest,
    CompleteLoginProblem,
    CompleteLoginProblemType,
    CompleteLoginRequest,
    CreateTodoRequest,
    DeleteAccountRequest,
    EventPage,
    LoginRequest,
    LogoutResponse,
    MfaCodeRequest,
    MfaStatusResponse,
    RecoveryCodesResponse,
    SecondFactorChallenge,
    TotpEnrolmentResponse,
    TotpStatus,
    MeProblem,
    OAuthError,
    OAuthErrorCode,
    OAuthServerMetadata,
    OAuthTokenRequest,
    OAuthTokenResponse,
    PhoneCodeResponse,
    RefreshProblem,
    RefreshProblemType,
    RefreshRequest,
    RegisterRequest,
    SetPhoneRequest,
    TodoPage,
    TodoResponse,
    TokenResponse,
    UserResponse,
    VerifyPhoneProblem,
    VerifyPhoneProblemType,
    VerifyPhoneRequest,
)

SAMPLE = LoginRequest(username="username", password="password")


def expect(response, status: HTTPStatus, parsed_type: type, step: str):
    """The response has `status` and its body parsed as `parsed_type`; returns the body."""
    assert response.status_code == status, (
        f"{step}: expected {status.value}, got {response.status_code.value}: {response.content!r}"
    )
    assert isinstance(response.parsed, parsed_type), (
        f"{step}: expected a {parsed_type.__name__}, got {response.parsed!r}"
    )
    print(f"  {step}: HTTP {response.status_code.value} {parsed_type.__name__}")
    return response.parsed


def log_in(anonymous: Client, step: str) -> TokenResponse:
    tokens = expect(
        login.sync_detailed(client=anonymous, body=SAMPLE), HTTPStatus.OK, TokenResponse, step
    )
    assert tokens.token_type == "Bearer"
    return tokens


def no_content(response, step: str) -> None:
    """The response is a 204 without a body."""
    assert response.status_code == HTTPStatus.NO_CONTENT, (
        f"{step}: expected 204, got {response.status_code.value}: {response.content!r}"
    )
    print(f"  {step}: HTTP 204")


def account(base_url: str, anonymous: Client) -> None:
    """A fresh account changes its password (other sessions end) and is deleted."""
    name = f"flow-{uuid.uuid4().hex[:12]}"
    first, second = "a python passphrase", "another python passphrase"
    expect(
        register.sync_detailed(
            client=anonymous, body=RegisterRequest(username=name, password=first)
        ),
        HTTPStatus.CREATED,
        UserResponse,
        "register a fresh account",
    )

    def session(password: str, step: str) -> AuthenticatedClient:
        tokens = expect(
            login.sync_detailed(
                client=anonymous, body=LoginRequest(username=name, password=password)
            ),
            HTTPStatus.OK,
            TokenResponse,
            step,
        )
        return AuthenticatedClient(
            base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True
        )

    caller, other = session(first, "log in"), session(first, "log in elsewhere")
    wrong = expect(
        change_password.sync_detailed(
            client=caller,
            body=ChangePasswordRequest(current_password="not it", new_password=second),
        ),
        HTTPStatus.FORBIDDEN,
        ChangePasswordProblem,
        "change the password with a wrong current one",
    )
    assert wrong.type_ == ChangePasswordProblemType("urn:jwt-todo:problem:wrong-password"), wrong
    no_content(
        change_password.sync_detailed(
            client=caller,
            body=ChangePasswordRequest(current_password=first, new_password=second),
        ),
        "change the password",
    )
    expect(me.sync_detailed(client=other), HTTPStatus.UNAUTHORIZED, MeProblem, "the other session ended")
    expect(me.sync_detailed(client=caller), HTTPStatus.OK, UserResponse, "the caller's goes on")
    trail = expect(
        list_events.sync_detailed(client=caller, limit=2),
        HTTPStatus.OK,
        EventPage,
        "read the audit trail",
    )
    assert [e.kind for e in trail.items] == ["password_changed", "login_succeeded"], trail
    older = expect(
        list_events.sync_detailed(client=caller, cursor=trail.next_),
        HTTPStatus.OK,
        EventPage,
        "read its next page",
    )
    assert [e.kind for e in older.items] == ["login_succeeded"], older
    no_content(
        delete_account.sync_detailed(client=caller, body=DeleteAccountRequest(password=second)),
        "delete the account",
    )
    expect(me.sync_detailed(client=caller), HTTPStatus.UNAUTHORIZED, MeProblem, "its token is dead")


def second_factor(base_url: str, anonymous: Client) -> None:
    """A fresh account enrols TOTP (codes from pyotp) and logs in with it."""
    name = f"totp-{uuid.uuid4().hex[:12]}"
    password = "a second factor passphrase"
    credentials = LoginRequest(username=name, password=password)
    expect(
        register.sync_detailed(
            client=anonymous, body=RegisterRequest(username=name, password=password)
        ),
        HTTPStatus.CREATED,
        UserResponse,
        "register an account for TOTP",
    )
    tokens = expect(
        login.sync_detailed(client=anonymous, body=credentials),
        HTTPStatus.OK,
        TokenResponse,
        "log in with the password alone",
    )
    caller = AuthenticatedClient(
        base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True
    )
    enrolment = expect(
        enrol_totp.sync_detailed(client=caller),
        HTTPStatus.CREATED,
        TotpEnrolmentResponse,
        "enrol TOTP",
    )
    app = pyotp.parse_uri(enrolment.otpauth_uri)
    assert app.secret == enrolment.secret, enrolment
    codes = expect(
        confirm_totp.sync_detailed(client=caller, body=MfaCodeRequest(code=app.now())),
        HTTPStatus.OK,
        RecoveryCodesResponse,
        "confirm it with the app's code",
    )
    assert len(codes.recovery_codes) == 10, codes
    status = expect(
        mfa_status.sync_detailed(client=caller),
        HTTPStatus.OK,
        MfaStatusResponse,
        "the second factor is on",
    )
    assert status.totp == TotpStatus.ON and status.recovery_codes_left == 10, status

    def challenge(step: str) -> str:
        return expect(
            login.sync_detailed(client=anonymous, body=credentials),
            HTTPStatus.OK,
            SecondFactorChallenge,
            step,
        ).challenge

    pending = challenge("log in: a challenge, no tokens")
    reused = expect(
        login_mfa.sync_detailed(
            client=anonymous, body=CompleteLoginRequest(challenge=pending, code=app.now())
        ),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        CompleteLoginProblem,
        "the confirmation's code again",
    )
    assert reused.type_ == CompleteLoginProblemType("urn:jwt-todo:problem:wrong-code"), reused
    # The next step's code: the server takes the step beside the current one.
    expect(
        login_mfa.sync_detailed(
            client=anonymous,
            body=CompleteLoginRequest(challenge=pending, code=app.at(time.time() + 30)),
        ),
        HTTPStatus.OK,
        TokenResponse,
        "complete it with the next code",
    )
    second = expect(
        login_mfa.sync_detailed(
            client=anonymous,
            body=CompleteLoginRequest(
                challenge=challenge("log in again"), code=codes.recovery_codes[0]
            ),
        ),
        HTTPStatus.OK,
        TokenResponse,
        "complete it with a recovery code",
    )
    owner = AuthenticatedClient(
        base_url=base_url, token=second.access_token, raise_on_unexpected_status=True
    )
    renewed = expect(
        renew_recovery_codes.sync_detailed(
            client=owner, body=MfaCodeRequest(code=codes.recovery_codes[1])
        ),
        HTTPStatus.OK,
        RecoveryCodesResponse,
        "renew the recovery codes with one of them",
    )
    assert len(renewed.recovery_codes) == 10, renewed
    assert not set(renewed.recovery_codes) & set(codes.recovery_codes), renewed
    no_content(
        disable_totp.sync_detailed(
            client=owner, body=MfaCodeRequest(code=renewed.recovery_codes[0])
        ),
        "disable it with a renewed recovery code",
    )
    expect(
        login.sync_detailed(client=anonymous, body=credentials),
        HTTPStatus.OK,
        TokenResponse,
        "the password alone logs in again",
    )


def oauth(anonymous: Client, client_id: str) -> None:
    """The OAuth operations through the generated client."""
    metadata = expect(
        oauth_metadata.sync_detailed(client=anonymous),
        HTTPStatus.OK,
        OAuthServerMetadata,
        "OAuth metadata",
    )
    assert metadata.token_endpoint.endswith("/oauth/token"), metadata
    grant = OAuthTokenRequest(
        grant_type="password", username="username", password="password", client_id=client_id
    )
    token = expect(
        oauth_token.sync_detailed(client=anonymous, body=grant),
        HTTPStatus.OK,
        OAuthTokenResponse,
        "OAuth password grant",
    )
    assert token.token_type == "Bearer" and token.expires_in > 0, token
    wrong = OAuthTokenRequest(
        grant_type="password", username="username", password="not it", client_id=client_id
    )
    refused = expect(
        oauth_token.sync_detailed(client=anonymous, body=wrong),
        HTTPStatus.BAD_REQUEST,
        OAuthError,
        "OAuth password grant, wrong password",
    )
    assert refused.error == OAuthErrorCode.INVALID_GRANT, refused


def main(base_url: str, client_id: str) -> None:
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)

    tokens = log_in(anonymous, "log in")
    authed = AuthenticatedClient(
        base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True
    )

    todo = expect(
        create_todo.sync_detailed(client=authed, body=CreateTodoRequest(title="Buy milk")),
        HTTPStatus.CREATED,
        TodoResponse,
        "create a todo",
    )
    assert todo.title == "Buy milk" and not todo.completed

    # A creation retried with its Idempotency-Key is answered with the first todo.
    key = "flow-" + str(todo.id)
    first = expect(
        create_todo.sync_detailed(
            client=authed, body=CreateTodoRequest(title="Buy bread"), idempotency_key=key
        ),
        HTTPStatus.CREATED,
        TodoResponse,
        "create a todo with an Idempotency-Key",
    )
    retried = create_todo.sync_detailed(
        client=authed, body=CreateTodoRequest(title="Buy bread"), idempotency_key=key
    )
    assert retried.status_code == HTTPStatus.CREATED, retried
    assert retried.parsed.id == first.id, "the retry is the first todo, not a second"
    assert retried.headers.get("idempotent-replayed") == "true", retried.headers
    print("  retry with the same Idempotency-Key: HTTP 201, the same todo")

    # Pages of one, linked by `next`, list both todos in order.
    seen, cursor = [], UNSET
    while True:
        page = expect(
            list_todos.sync_detailed(client=authed, limit=1, cursor=cursor),
            HTTPStatus.OK,
            TodoPage,
            f"list a page of todos ({len(seen) + 1})",
        )
        seen.extend(t.id for t in page.items)
        if isinstance(page.next_, Unset) or page.next_ is None:
            break
        cursor = page.next_
    assert seen == [todo.id, first.id], seen

    # A phone number is set unverified, a code is texted (here: only queued, no Vonage),
    # and a wrong code is refused, saying how many tries are left.
    sent = expect(
        set_phone.sync_detailed(client=authed, body=SetPhoneRequest(phone="+4915112345678")),
        HTTPStatus.ACCEPTED,
        PhoneCodeResponse,
        "set the phone number",
    )
    assert sent.phone == "+4915112345678" and not sent.phone_verified, sent
    wrong = expect(
        verify_phone.sync_detailed(client=authed, body=VerifyPhoneRequest(code="000000")),
        HTTPStatus.UNPROCESSABLE_ENTITY,
        VerifyPhoneProblem,
        "verify with a wrong code",
    )
    # Each operation's problem `type` is an enum of exactly the kinds it can answer.
    assert isinstance(wrong.type_, VerifyPhoneProblemType), wrong
    assert wrong.type_ in (
        "urn:jwt-todo:problem:wrong-code",
        "urn:jwt-todo:problem:no-pending-code",
    ), wrong

    rotated = expect(
        refresh_token.sync_detailed(
            client=anonymous, body=RefreshRequest(refresh_token=tokens.refresh_token)
        ),
        HTTPStatus.CREATED,
        TokenResponse,
        "refresh",
    )
    assert rotated.session_id == tokens.session_id
    assert rotated.refresh_token != tokens.refresh_token

    replay = expect(
        refresh_token.sync_detailed(
            client=anonymous, body=RefreshRequest(refresh_token=tokens.refresh_token)
        ),
        HTTPStatus.UNAUTHORIZED,
        RefreshProblem,
        "replay the spent refresh token",
    )
    assert replay.type_ == RefreshProblemType("urn:jwt-todo:problem:invalid-token"), replay

    tokens = log_in(anonymous, "log in again")
    authed = AuthenticatedClient(
        base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True
    )
    ended = expect(
        logout.sync_detailed(client=authed), HTTPStatus.OK, LogoutResponse, "log out"
    )
    assert ended.message == "Successfully logged out" and ended.sessions_ended == 1

    refused = expect(
        me.sync_detailed(client=authed),
        HTTPStatus.UNAUTHORIZED,
        MeProblem,
        "the logged-out token is refused",
    )
    assert refused.status == 401, refused

    account(base_url, anonymous)
    second_factor(base_url, anonymous)
    oauth(anonymous, client_id)
    print("Python client flow: all statuses as documented")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: flow.py BASE_URL OAUTH_PUBLIC_CLIENT_ID")
    main(sys.argv[1], sys.argv[2])
