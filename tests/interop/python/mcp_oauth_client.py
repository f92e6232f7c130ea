"""Signs in to bankguard with the official MCP Python SDK's OAuth client, then uses the tools.

Run by the Rust interop tests with .peers/venv/bin/python against `bankguard serve --transport http` with
`mcp.auth = "oauth"`. The SDK does everything a real client does: it gets the 401, reads the Protected Resource
Metadata it names, finds the authorization server's metadata, registers itself (RFC 7591), and runs the
authorization code flow with PKCE and `resource`. The one thing a desktop client would leave to a browser, the
person signing in, is played here by `Person`: it opens the authorization URL, fills the sign-in and consent
forms the authorization server shows (choosing --user, by a field or a button, and approving), and hands the redirect's `code`, `state`
and `iss` back to the SDK. It reads the pages' real forms (hidden fields, the user choice, the approve button);
nothing is skipped.

It prints one JSON object per line on stdout:

    {"event": "signed_in", "user", "client_id", "pages"}        the redirect reached the client; pages: forms filled
    {"event": "list_accounts", "is_error", "ids"}
    {"event": "transfer", "is_error", "status", "text"}           (with --transfer; the test decides on the device)
    {"event": "refreshed", "access_changed", "refresh_changed"}    the SDK used its refresh token (rotated)
    {"event": "list_accounts", ...}                               again, with the refreshed token
    {"event": "done"}

Usage: mcp_oauth_client.py --url http://127.0.0.1:PORT/mcp --user alice [--transfer]
"""

from __future__ import annotations

import argparse
import json
import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

# Nothing listens there: the person catches the redirect to it instead of following it.
REDIRECT_URI = "http://127.0.0.1/bankguard-interop/callback"
TRANSFER = {"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "12.00"}
APPROVE_WORDS = ("approve", "allow", "accept", "consent", "continue", "sign_in", "signin", "yes")
MAX_PAGES = 10


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Form:
    def __init__(self, action: str, method: str) -> None:
        self.action = action
        self.method = method
        self.fields: dict[str, str] = {}
        self.choices: dict[str, list[str]] = {}
        self.buttons: list[tuple[str, str]] = []


class Forms(HTMLParser):
    """The forms of a page: hidden and text fields, radio and select choices, submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
            return
        if not self.forms:
            return
        form = self.forms[-1]
        kind = a.get("type", "text" if tag == "input" else "submit").lower()
        name = a.get("name")
        if tag == "select" and name:
            self.select = name
        elif tag == "option" and self.select:
            form.choices.setdefault(self.select, []).append(a.get("value", ""))
        elif tag in ("input", "button") and kind == "submit":
            form.buttons.append((name or "", a.get("value", "")))
        elif tag == "input" and name and kind == "radio":
            form.choices.setdefault(name, []).append(a.get("value", ""))
        elif tag == "input" and name and kind in ("hidden", "text"):
            form.fields[name] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None


class Person:
    """Plays the holder at the authorization server's pages, in place of a browser."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.result: AuthorizationCodeResult | None = None
        self.pages = 0

    async def visit(self, authorization_url: str) -> None:
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10.0) as browser:
            response = await browser.get(authorization_url)
            for _ in range(MAX_PAGES):
                if response.is_redirect:
                    target = urljoin(str(response.url), response.headers["location"])
                    if target.startswith(REDIRECT_URI):
                        query = parse_qs(urlsplit(target).query)
                        if "error" in query:
                            raise RuntimeError(f"the authorization server answered {query}")
                        first = lambda key: query.get(key, [None])[0]  # noqa: E731
                        self.result = AuthorizationCodeResult(code=first("code"), state=first("state"), iss=first("iss"))
                        return
                    response = await browser.get(target)
                    continue
                if response.status_code != 200:
                    raise RuntimeError(f"{response.url} answered {response.status_code}: {response.text[:300]}")
                response = await self.submit(browser, response)
            raise RuntimeError(f"no redirect to the client after {MAX_PAGES} pages")

    async def submit(self, browser: httpx2.AsyncClient, page: httpx2.Response) -> httpx2.Response:
        parser = Forms()
        parser.feed(page.text)
        forms = [form for form in parser.forms if form.method == "post"]
        if not forms:
            raise RuntimeError(f"{page.url} shows no form to fill: {page.text[:300]}")
        form = forms[0]
        data = dict(form.fields)
        for name, values in form.choices.items():
            if self.user in values:
                data[name] = self.user
            elif len(values) == 1:
                data[name] = values[0]
        # A button that names the user ("sign in as bob"), else one that approves, else the first.
        as_user = [(n, v) for n, v in form.buttons if v == self.user]
        approve = [(n, v) for n, v in form.buttons if any(word in (n + " " + v).lower() for word in APPROVE_WORDS)]
        name, value = (as_user or approve or form.buttons or [("", "")])[0]
        if name:
            data[name] = value
        self.pages += 1
        return await browser.post(urljoin(str(page.url), form.action), data=data)

    async def callback(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise RuntimeError("the sign-in did not reach the client")
        return self.result


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", None) == "text")


async def list_accounts(session: ClientSession) -> None:
    result = await session.call_tool("list_accounts", {})
    ids = [account["id"] for account in (result.structured_content or {}).get("accounts", [])]
    emit("list_accounts", is_error=bool(result.is_error), ids=ids, text=text_of(result) if result.is_error else "")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--transfer", action="store_true")
    args = parser.parse_args()

    person = Person(args.user)
    storage = MemoryStorage()
    metadata = OAuthClientMetadata(
        client_name="bankguard interop (MCP Python SDK)",
        redirect_uris=[REDIRECT_URI],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    auth = OAuthClientProvider(args.url, metadata, storage, redirect_handler=person.visit, callback_handler=person.callback)
    async with httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30.0)) as http:
        async with streamable_http_client(args.url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                client_id = storage.client_info.client_id if storage.client_info else None
                emit("signed_in", user=args.user, client_id=client_id, pages=person.pages)
                await list_accounts(session)
                if args.transfer:
                    result = await session.call_tool("transfer_funds", TRANSFER)
                    status = (result.structured_content or {}).get("status")
                    emit("transfer", is_error=bool(result.is_error), status=status, text=text_of(result))
                # The access token runs out: the SDK must refresh it before the next request.
                before = storage.tokens
                auth.context.token_expiry_time = time.time() - 1
                await list_accounts(session)
                after = storage.tokens
                emit(
                    "refreshed",
                    access_changed=bool(before and after and before.access_token != after.access_token),
                    refresh_changed=bool(before and after and before.refresh_token != after.refresh_token),
                    had_refresh_token=bool(before and before.refresh_token),
                )
    emit("done")


if __name__ == "__main__":
    anyio.run(main)
