"""ComEd's login (Exelon's Azure AD B2C) as the ``opower`` library (``utilities/exelon.py``) walks it.

The library builds ``https://<host>/...`` URLs itself; ``upstreams.opower_route`` sends them here
with their path and ``Host`` header, so routes match on the path and check the host (a request
straight to the simulator's own address is let through). Hosts: the login page on
``secure.comed.com``, the B2C tenant ``/euazurecomed.onmicrosoft.com/<policy>/...`` on
``secure1.comed.com``, the account list on ``eudapi.comed.com``.

1. ``GET /Pages/Login.aspx`` -> 302 to the web policy's ``.../B2C_1A_SignIn/oauth2/v2.0/authorize``,
   an HTML page holding ``var SETTINGS = {...};`` on one line (``hosts.tenant``, ``hosts.policy``,
   ``csrf``, ``transId``, ``api``, ``pageViewId``). The library reads the tenant from it.
2. The same authorize path with ``p=B2C_1A_SignIn_Mobile`` (the mobile app's client id, redirect
   ``msauth.com.comed.mobile://auth``, PKCE S256): a new transaction, its own SETTINGS.
3. ``POST .../B2C_1A_SignIn_Mobile/SelfAsserted?tx=&p=`` (header ``X-CSRF-TOKEN``, form
   ``signInName``/``password``): HTTP 200 with JSON ``{"status":"200"}``, or ``{"status":"400",
   "message":...}`` for a wrong password or unknown user (B2C answers 200 either way).
4. ``GET .../api/SelfAsserted/confirmed?csrf_token=&tx=&p=&diags=``: the MFA page, SETTINGS plus
   ``var SA_FIELDS = {...};`` (forced e-mail MFA: ``extension_isMFAEnabled`` False and an
   ``emailVerificationControl`` showing the masked address, which the library "bypasses" to).
5. ``POST .../SelfAsserted/DisplayControlAction/vbeta/emailVerificationControl/SendCode`` then
   ``VerifyCode`` (``verificationCode``; a wrong code is ``{"status":"400"}``), then the form again
   with ``request_type=RESPONSE``.
6. ``GET .../api/SelfAsserted/confirmed`` (not followed) -> 302 ``Location:
   msauth.com.comed.mobile://auth/?code=<code>``: a one-time code (10 minutes) bound to the PKCE
   challenge.
7. ``POST .../oauth2/v2.0/token``: ``authorization_code`` (checks the code verifier) and
   ``refresh_token`` grants. Scope ``openid offline_access <client id>`` gives a token for the
   account list; ``https://euazurecomed.onmicrosoft.com/opower/opower_connect`` one for Opower.
   Access tokens are opaque and live an hour. **Refresh tokens rotate**: every grant returns a new
   one with a fresh ``refresh_token_lifetime``; an old one stays valid until its own expiry.
   Expired, revoked or unknown: HTTP 400 ``{"error": "invalid_grant", "error_description":
   "AADB2C900xx: ..."}`` (the library then restarts the MFA flow).
8. ``GET https://eudapi.comed.com/mobile/custom/auth/accounts`` (bearer): ``{"success": true,
   "data": [one Active, default account]}``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from simulator.config import MeterConfig

LOGIN_HOST = "secure.comed.com"
B2C_HOST = "secure1.comed.com"
EU_HOST = "eudapi.comed.com"
TENANT = "euazurecomed"
WEB_POLICY = "B2C_1A_SignIn"
MOBILE_POLICY = "B2C_1A_SignIn_Mobile"
CLIENT_ID = "b587ed2d-28a5-462c-8c1f-835f9d73f7c3"  # ComEd's mobile app, as the library sends it
WEB_CLIENT_ID = "0b6d1f6c-7d6b-4b6a-9a52-4ba8a5f1b7f1"  # the web portal's (only shown in the redirect)
MOBILE_ID = "msauth.com.comed.mobile"
OPENID_SCOPE = "openid offline_access"
OPOWER_SCOPE = f"https://{TENANT}.onmicrosoft.com/opower/opower_connect"
ACCESS_TOKEN_LIFETIME_S = 3600.0
CODE_LIFETIME_S = 600.0
MAX_TRANSACTIONS = 100
PREFIX = f"/{TENANT}.onmicrosoft.com/{{policy}}"
KNOWN_HOSTS = (LOGIN_HOST, B2C_HOST, EU_HOST, "cec.opower.com")


def host_ok(request: web.Request, expected: str) -> bool:
    """The routed ``Host`` is the one the library aimed at (direct requests to the simulator pass)."""
    host = (request.headers.get("Host") or "").rsplit(":", 1)[0].lower()
    return host == expected or host not in KNOWN_HOSTS


def masked_email(address: str) -> str:
    """``demo@example.com`` -> ``d***@example.com``, as the MFA page shows it."""
    name, _, domain = address.partition("@")
    return f"{name[:1]}***@{domain}" if domain else f"{name[:1]}***"


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


# --- state ----------------------------------------------------------------------------------------


@dataclass
class Transaction:
    """One B2C sign-in: signin -> mfa -> code_sent -> verified -> done."""

    id: str
    policy: str
    csrf: str
    code_challenge: str | None = None
    step: str = "signin"


@dataclass
class RefreshToken:
    issued: float
    expires: float
    account: str | None = None
    revoked: bool = False


@dataclass
class Credentials:
    """Every code and token issued, on simulated time."""

    cfg: MeterConfig
    transactions: dict[str, Transaction] = field(default_factory=dict)
    codes: dict[str, tuple[str | None, float]] = field(default_factory=dict)  # code -> (challenge, expiry)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    access: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (audience, expiry)
    revoked_at: float | None = None

    def begin(self, policy: str, code_challenge: str | None) -> Transaction:
        while len(self.transactions) >= MAX_TRANSACTIONS:  # abandoned sign-ins: drop the oldest
            self.transactions.pop(next(iter(self.transactions)))
        tid = base64.b64encode(json.dumps({"TID": str(uuid.uuid4())}).encode()).decode().rstrip("=")
        tx = Transaction(f"StateProperties={tid}", policy, secrets.token_urlsafe(48), code_challenge)
        self.transactions[tx.id] = tx
        return tx

    def issue_code(self, tx: Transaction, now: float) -> str:
        code = "eyJraWQiOiJjcGltY29yZV8wOTI1MjAxNSIsInZlciI6IjEuMCIsInppcCI6IkRlZmxhdGUiLCJzZXIiOiIxLjAifQ.." \
               + secrets.token_urlsafe(96)
        self.codes[code] = (tx.code_challenge, now + CODE_LIFETIME_S)
        self.transactions.pop(tx.id, None)
        return code

    def redeem_code(self, code: str, verifier: str, now: float) -> str | None:
        """None when the code is good (and now spent), else the B2C error description."""
        entry = self.codes.pop(code, None)
        if entry is None:
            return "AADB2C90088: The provided grant has not been issued for this endpoint."
        challenge, expiry = entry
        if now >= expiry:
            return "AADB2C90080: The provided grant has expired. Please re-authenticate and try again."
        if challenge is not None and pkce_challenge(verifier) != challenge:
            return "AADB2C90183: The supplied code_verifier is invalid."
        return None

    def check_refresh(self, token: str, now: float) -> str | None:
        """None when the refresh token may be redeemed, else the B2C error description."""
        entry = self.refresh.get(token)
        if entry is None:
            return "AADB2C90088: The provided grant has not been issued for this endpoint."
        if entry.revoked:
            return "AADB2C90129: The provided grant has been revoked. Please reauthenticate and try again."
        if now >= entry.expires:
            return ("AADB2C90080: The provided grant has expired. Please re-authenticate and try again. "
                    f"Current time: {int(now)}, Grant issued time: {int(entry.issued)}, "
                    f"Grant expiration time: {int(entry.expires)}")
        return None

    def grant(self, audience: str, now: float) -> dict[str, Any]:
        """A token response: a new access token for ``audience`` and a new refresh token."""
        for stale in [token for token, (_, expiry) in self.access.items() if expiry <= now]:
            del self.access[stale]
        access = secrets.token_urlsafe(64)
        self.access[access] = (audience, now + ACCESS_TOKEN_LIFETIME_S)
        refresh = secrets.token_urlsafe(64)
        lifetime = self.cfg.refresh_token_lifetime_s
        self.refresh[refresh] = RefreshToken(now, now + lifetime)
        body: dict[str, Any] = {
            "access_token": access, "token_type": "Bearer", "not_before": int(now),
            "expires_in": int(ACCESS_TOKEN_LIFETIME_S), "expires_on": int(now + ACCESS_TOKEN_LIFETIME_S),
            "resource": CLIENT_ID if audience == "openid" else OPOWER_SCOPE.rsplit("/", 1)[0],
            "refresh_token": refresh, "refresh_token_expires_in": int(lifetime),
            "scope": f"{OPENID_SCOPE} {CLIENT_ID}" if audience == "openid" else OPOWER_SCOPE,
        }
        if audience == "openid":
            body["id_token"] = secrets.token_urlsafe(64)
        return body

    def access_ok(self, header: str | None, audience: str, now: float) -> bool:
        """Whether ``Authorization`` carries a live access token for ``audience``."""
        if not header or not header.lower().startswith("bearer "):
            return False
        entry = self.access.get(header[7:].strip())
        return entry is not None and entry[0] == audience and now < entry[1]

    def revoke(self, now: float) -> int:
        """A password change: every refresh token issued so far stops working."""
        live = [t for t in self.refresh.values() if not t.revoked]
        for token in live:
            token.revoked = True
        self.revoked_at = now
        return len(live)

    def status(self, now: float) -> dict[str, Any]:
        return {
            "refresh_tokens_issued": len(self.refresh),
            "refresh_tokens_valid": sum(1 for t in self.refresh.values() if not t.revoked and now < t.expires),
            "access_tokens_valid": sum(1 for _, expiry in self.access.values() if now < expiry),
            "refresh_token_lifetime": self.cfg.refresh_token_lifetime_s,
            "revoked_at": self.revoked_at,
        }


# --- pages ----------------------------------------------------------------------------------------


def settings(tx: Transaction, api: str) -> dict[str, Any]:
    """The page's ``SETTINGS`` object, the fields the library reads among B2C's usual ones."""
    return {
        "remoteResource": f"https://{B2C_HOST}/static/signin.html", "retryLimit": 7,
        "trimSpacesInPassword": True, "api": api, "csrf": tx.csrf, "transId": tx.id,
        "pageViewId": str(uuid.uuid4()), "suppressElementCss": False, "isPageViewIdSentWithHeader": False,
        "allowAutoFocusOnPasswordField": True, "pageMode": 0,
        "config": {"showSignupLink": "False", "sendHintOnSignup": "False", "includePasswordRequirements": "true"},
        "hosts": {"tenant": f"/{TENANT}.onmicrosoft.com/{tx.policy}", "policy": tx.policy,
                  "static": f"https://{B2C_HOST}/static/"},
        "locale": {"lang": "en"},
        "xhrSettings": {"retryEnabled": False, "retryMaxAttempts": 3, "retryDelay": 200},
    }


def page(title: str, variables: dict[str, dict[str, Any]]) -> web.Response:
    """An HTML page with each ``var NAME = {...};`` on its own line (the library's regex is per line)."""
    script = "\n".join(f"var {name} = {json.dumps(value)};" for name, value in variables.items())
    body = (f"<!DOCTYPE html>\n<html><head><title>{html.escape(title)}</title>\n"
            f'<script data-container="true" nonce="{secrets.token_hex(8)}">\n{script}\n</script>\n'
            "</head><body><div id=\"api\"></div></body></html>\n")
    return web.Response(text=body, content_type="text/html")


def sa_fields(email: str) -> dict[str, Any]:
    """Forced e-mail MFA, as the library recognises it (phone MFA off, one e-mail control)."""
    return {"AttributeFields": [
        {"ID": "extension_isMFAEnabled", "PRE": "False", "UX_INPUT_TYPE": "Paragraph", "IS_REQ": False},
        {"ID": "emailVerificationControl", "UX_INPUT_TYPE": "VerificationControl", "DISPLAY_FIELDS": [
            {"ID": "displayEmailAddress", "PRE": masked_email(email), "UX_INPUT_TYPE": "TextBox", "IS_REQ": True},
            {"ID": "verificationCode", "PRE": "", "UX_INPUT_TYPE": "TextBox", "IS_REQ": True}]},
    ]}


def status_json(ok: bool, message: str = "") -> web.Response:
    """B2C's SelfAsserted answer: always HTTP 200, the verdict in the body."""
    payload = {"status": "200"} if ok else {"status": "400", "message": message}
    return web.Response(text=json.dumps(payload), content_type="application/json")


def oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def error_page(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=f"<html><body><h1>Sorry, but we're having trouble signing you in."
                        f"</h1><p>{html.escape(message)}</p></body></html>", content_type="text/html")


# --- routes ---------------------------------------------------------------------------------------


def routes(cfg: MeterConfig, creds: Credentials, now: Callable[[], float],
           account: Callable[[], dict[str, Any]]) -> list[web.RouteDef]:
    """The login's routes; ``account()`` is the account list's one entry."""

    def b2c(request: web.Request) -> bool:
        return host_ok(request, B2C_HOST) and request.match_info.get("policy") in (WEB_POLICY, MOBILE_POLICY)

    def transaction(request: web.Request, csrf: str | None) -> Transaction | None:
        tx = creds.transactions.get(request.query.get("tx", ""))
        return tx if tx is not None and csrf == tx.csrf else None

    async def login_page(request: web.Request) -> web.StreamResponse:
        if not host_ok(request, LOGIN_HOST):
            raise web.HTTPNotFound()
        query = urlencode({"client_id": WEB_CLIENT_ID, "redirect_uri": f"https://{LOGIN_HOST}/",
                           "response_type": "code id_token", "scope": "openid", "response_mode": "form_post",
                           "state": secrets.token_urlsafe(16), "nonce": secrets.token_urlsafe(16)})
        location = f"https://{B2C_HOST}/{TENANT}.onmicrosoft.com/{WEB_POLICY}/oauth2/v2.0/authorize?{query}"
        return web.Response(status=302, headers={"Location": location})

    async def authorize(request: web.Request) -> web.StreamResponse:
        if not b2c(request):
            raise web.HTTPNotFound()
        q = request.query
        policy = q.get("p", request.match_info["policy"])
        if policy == MOBILE_POLICY:
            if q.get("client_id") != CLIENT_ID or q.get("redirect_uri") != f"{MOBILE_ID}://auth":
                return error_page(400, "AADB2C90006: The redirect URI provided in the request is not registered "
                                       "for the client id.")
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                return error_page(400, "AADB2C90183: A code_challenge is required (S256).")
            tx = creds.begin(MOBILE_POLICY, q["code_challenge"])
        elif policy == WEB_POLICY:
            tx = creds.begin(WEB_POLICY, None)
        else:
            return error_page(400, f"AADB2C90007: The policy {policy} does not exist.")
        return page("Sign in", {"SETTINGS": settings(tx, "CombinedSigninAndSignup")})

    async def self_asserted(request: web.Request) -> web.Response:
        if not b2c(request):
            raise web.HTTPNotFound()
        tx = transaction(request, request.headers.get("X-CSRF-TOKEN"))
        if tx is None:
            return status_json(False, "Your session has expired. Please sign in again.")
        form = await request.post()
        if tx.step == "signin":
            user, password = str(form.get("signInName", "")), str(form.get("password", ""))
            if user.strip().lower() != cfg.username.lower():
                return status_json(False, "We can't seem to find your account.")
            if password != cfg.password:
                return status_json(False, "Your password is incorrect.")
            tx.step = "mfa"
            return status_json(True)
        if tx.step in ("mfa", "code_sent") and "mfaEnabledRadio" in form:
            return status_json(True)  # the opted-in flavour's choice: nothing to do for e-mail
        if tx.step == "verified" and form.get("request_type") == "RESPONSE":
            tx.step = "done"
            return status_json(True)
        return status_json(False, "Please verify your email address first.")

    async def display_control(request: web.Request) -> web.Response:
        if not b2c(request):
            raise web.HTTPNotFound()
        tx = transaction(request, request.headers.get("X-CSRF-TOKEN"))
        if tx is None:
            return status_json(False, "Your session has expired. Please sign in again.")
        control, action = request.match_info["control"], request.match_info["action"]
        form = await request.post()
        if control != "emailVerificationControl":
            return status_json(False, "This verification method is not available for your account.")
        if form.get("displayEmailAddress") != masked_email(cfg.username):
            return status_json(False, "Please enter a valid email address.")
        if action == "SendCode" and tx.step in ("mfa", "code_sent"):
            tx.step = "code_sent"
            return status_json(True)
        if action == "VerifyCode" and tx.step == "code_sent":
            if str(form.get("verificationCode", "")).strip() != cfg.mfa_code:
                return status_json(False, "The verification code you have entered does not match our records. "
                                          "Please try again, or request a new code.")
            tx.step = "verified"
            return status_json(True)
        return status_json(False, "Please request a verification code first.")

    async def confirmed(request: web.Request) -> web.Response:
        if not b2c(request):
            raise web.HTTPNotFound()
        tx = transaction(request, request.query.get("csrf_token"))
        if tx is None:
            return error_page(200, "AADB2C90077: The session has expired. Please sign in again.")
        if tx.step in ("mfa", "code_sent"):
            return page("Verify", {"SETTINGS": settings(tx, "SelfAsserted"), "SA_FIELDS": sa_fields(cfg.username)})
        if tx.step == "done" and tx.policy == MOBILE_POLICY:
            code = creds.issue_code(tx, now())
            return web.Response(status=302, headers={"Location": f"{MOBILE_ID}://auth/?code={code}"})
        return error_page(200, "AADB2C90075: The claims exchange has not completed.")

    async def token(request: web.Request) -> web.Response:
        if not b2c(request):
            raise web.HTTPNotFound()
        form = await request.post()
        t = now()
        if form.get("client_id") != CLIENT_ID:
            return oauth_error("unauthorized_client", "AADB2C90057: The provided application is not configured.")
        grant, scope = form.get("grant_type"), str(form.get("scope", ""))
        if grant == "authorization_code":
            problem = creds.redeem_code(str(form.get("code", "")), str(form.get("code_verifier", "")), t)
            return oauth_error("invalid_grant", problem) if problem else web.json_response(creds.grant("openid", t))
        if grant == "refresh_token":
            if scope == OPOWER_SCOPE:
                audience = "opower"
            elif scope.split()[:2] == OPENID_SCOPE.split():
                audience = "openid"
            else:
                return oauth_error("invalid_scope", f"AADB2C90205: This application does not have sufficient "
                                                    f"permissions against this web resource: {scope}")
            problem = creds.check_refresh(str(form.get("refresh_token", "")), t)
            return oauth_error("invalid_grant", problem) if problem else web.json_response(creds.grant(audience, t))
        return oauth_error("unsupported_grant_type", f"AADB2C90086: The supplied grant_type [{grant}] is not "
                                                     "supported.")

    async def accounts(request: web.Request) -> web.Response:
        if not host_ok(request, EU_HOST):
            raise web.HTTPNotFound()
        if not creds.access_ok(request.headers.get("Authorization"), "openid", now()):
            return web.json_response({"success": False, "meta": {"code": "401"},
                                      "error": {"message": "Unauthorized"}}, status=401)
        return web.json_response({"success": True, "meta": {"code": "200"}, "data": [account()]})

    return [
        web.get("/Pages/Login.aspx", login_page),
        web.get(PREFIX + "/oauth2/v2.0/authorize", authorize),
        web.post(PREFIX + "/oauth2/v2.0/token", token),
        web.post(PREFIX + "/SelfAsserted", self_asserted),
        web.post(PREFIX + "/SelfAsserted/DisplayControlAction/vbeta/{control}/{action}", display_control),
        web.get(PREFIX + "/api/SelfAsserted/confirmed", confirmed),
        web.get("/mobile/custom/auth/accounts", accounts),
    ]


def is_login_path(path: str) -> bool:
    return path.startswith(("/Pages/", "/mobile/custom/", f"/{TENANT}.onmicrosoft.com/"))
