// Signs in to bankguard with the official MCP TypeScript SDK's OAuth support, then uses the tools.
//
// Run by the Rust interop tests with .peers/node22/node_modules/.bin/node against `bankguard serve --transport http`
// with mcp.auth = "oauth". The SDK does what a real client does: it gets the 401, reads the Protected Resource
// Metadata, finds the authorization server's metadata, registers (RFC 7591), and runs the authorization code flow
// with PKCE and `resource`. What a desktop client leaves to a browser, the person signing in, is played by `Person`:
// it opens the authorization URL, fills the sign-in and consent forms the server shows (choosing --user, approving),
// keeps the server's cookies, and hands the redirect's `code` back (after checking its `state`). It reads the
// pages' real forms; nothing is skipped.
//
// Events, one JSON object per line on stdout (the same as tests/interop/python/mcp_oauth_client.py):
//   {"event": "signed_in", "user", "client_id", "pages"}
//   {"event": "list_accounts", "is_error", "ids"}
//   {"event": "transfer", "is_error", "status", "text"}              (with --transfer)
//   {"event": "refreshed", "access_changed", "refresh_changed", "had_refresh_token"}
//   {"event": "done"}
//
// The refresh: the stored access token is replaced by one the server refuses, so the next request gets 401
// invalid_token and the SDK must use its refresh token.
//
// Usage: node oauth_client.mjs --url http://127.0.0.1:PORT/mcp --user alice [--transfer]

import { parseArgs } from 'node:util';

import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const REDIRECT_URI = 'http://127.0.0.1/bankguard-interop/callback';
const TRANSFER = { from_account_id: 'acc_alice_chk', to_account_id: 'acc_bob_chk', amount: '12.00' };
const APPROVE_WORDS = ['approve', 'allow', 'accept', 'consent', 'continue', 'sign_in', 'signin', 'yes'];
const MAX_PAGES = 10;
const TOOL_CALL_TIMEOUT_MS = 30_000;

function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

const { values: options } = parseArgs({
  options: { url: { type: 'string' }, user: { type: 'string' }, transfer: { type: 'boolean', default: false } },
});
if (!options.url || !options.user) {
  process.stderr.write('oauth_client.mjs: --url and --user are required\n');
  process.exit(2);
}

const decode = (text) =>
  text.replace(/&#(\d+);/g, (_, code) => String.fromCharCode(Number(code)))
    .replace(/&quot;/g, '"').replace(/&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function attributes(tag) {
  const found = {};
  for (const [, name, , double, single, bare] of tag.matchAll(/([a-zA-Z_:-]+)(\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    found[name.toLowerCase()] = decode(double ?? single ?? bare ?? '');
  }
  return found;
}

/** The POST forms of a page: hidden and text fields, radio and select choices, submit buttons. */
function postForms(html) {
  const forms = [];
  for (const [, open, body] of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const form = attributes(open);
    if ((form.method ?? 'get').toLowerCase() !== 'post') continue;
    const fields = {};
    const choices = {};
    const buttons = [];
    for (const [tag, name] of body.matchAll(/<(input|button|option|select)\b[^>]*>/gi)) {
      const a = attributes(tag.slice(name.length + 1, -1));
      const type = (a.type ?? (name.toLowerCase() === 'input' ? 'text' : 'submit')).toLowerCase();
      if (name.toLowerCase() === 'select') choices.__select = a.name;
      else if (name.toLowerCase() === 'option' && choices.__select) (choices[choices.__select] ??= []).push(a.value ?? '');
      else if (type === 'submit') buttons.push([a.name ?? '', a.value ?? '']);
      else if (type === 'radio' && a.name) (choices[a.name] ??= []).push(a.value ?? '');
      else if (['hidden', 'text'].includes(type) && a.name) fields[a.name] = a.value ?? '';
    }
    delete choices.__select;
    forms.push({ action: form.action ?? '', fields, choices, buttons });
  }
  return forms;
}

/** Plays the holder at the authorization server's pages, in place of a browser (cookies included). */
class Person {
  constructor(user) {
    this.user = user;
    this.cookies = new Map();
    this.pages = 0;
    this.code = undefined;
  }

  async fetch(url, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const at = pair.indexOf('=');
      this.cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    return response;
  }

  async visit(authorizationUrl) {
    const state = authorizationUrl.searchParams.get('state');
    let response = await this.fetch(authorizationUrl);
    for (let page = 0; page < MAX_PAGES; page += 1) {
      if (response.status >= 300 && response.status < 400) {
        const target = new URL(response.headers.get('location'), response.url || authorizationUrl);
        if (target.href.startsWith(REDIRECT_URI)) {
          if (target.searchParams.has('error')) throw new Error(`the authorization server answered ${target.search}`);
          if (target.searchParams.get('state') !== state) throw new Error('the redirect carries another state');
          this.code = target.searchParams.get('code');
          return;
        }
        response = await this.fetch(target);
        continue;
      }
      const html = await response.text();
      if (response.status !== 200) throw new Error(`${response.url} answered ${response.status}: ${html.slice(0, 300)}`);
      const [form] = postForms(html);
      if (!form) throw new Error(`${response.url} shows no form to fill: ${html.slice(0, 300)}`);
      const data = new URLSearchParams(form.fields);
      for (const [name, values] of Object.entries(form.choices)) {
        if (values.includes(this.user)) data.set(name, this.user);
        else if (values.length === 1) data.set(name, values[0]);
      }
      // A button that names the user ("sign in as bob"), else one that approves, else the first.
      const asUser = form.buttons.filter(([, v]) => v === this.user);
      const approve = form.buttons.filter(([n, v]) => APPROVE_WORDS.some((w) => `${n} ${v}`.toLowerCase().includes(w)));
      const [name, value] = asUser[0] ?? approve[0] ?? form.buttons[0] ?? ['', ''];
      if (name) data.set(name, value);
      this.pages += 1;
      response = await this.fetch(new URL(form.action, response.url), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: data.toString(),
      });
    }
    throw new Error(`no redirect to the client after ${MAX_PAGES} pages`);
  }
}

/** The SDK's OAuthClientProvider, keeping everything in memory exactly as the SDK hands it over. */
class MemoryProvider {
  constructor(person) {
    this.person = person;
    this.saved = {};
  }
  get redirectUrl() {
    return REDIRECT_URI;
  }
  get clientMetadata() {
    return {
      client_name: 'bankguard interop (MCP TypeScript SDK)',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() {
    return this.saved.client;
  }
  saveClientInformation(client) {
    this.saved.client = client;
  }
  tokens() {
    return this.saved.tokens;
  }
  saveTokens(tokens) {
    this.saved.tokens = tokens;
  }
  async redirectToAuthorization(url) {
    await this.person.visit(url);
  }
  saveCodeVerifier(verifier) {
    this.saved.verifier = verifier;
  }
  codeVerifier() {
    return this.saved.verifier;
  }
}

async function connect(provider) {
  const client = new Client({ name: 'bankguard-interop-oauth', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(options.url), { authProvider: provider }));
  return client;
}

async function listAccounts(client) {
  const result = await client.callTool({ name: 'list_accounts', arguments: {} }, undefined, {
    timeout: TOOL_CALL_TIMEOUT_MS,
  });
  const ids = (result.structuredContent?.accounts ?? []).map((account) => account.id);
  emit('list_accounts', { is_error: Boolean(result.isError), ids });
}

const person = new Person(options.user);
const provider = new MemoryProvider(person);
let client;
try {
  client = await connect(provider);
  throw new Error('the server let an unauthenticated client in');
} catch (error) {
  if (!(error instanceof UnauthorizedError)) throw error;
}
// The person came back with a code: the SDK exchanges it, then the client connects again.
const transport = new StreamableHTTPClientTransport(new URL(options.url), { authProvider: provider });
await transport.finishAuth(person.code);
client = new Client({ name: 'bankguard-interop-oauth', version: '1.0.0' });
await client.connect(transport);
emit('signed_in', { user: options.user, client_id: provider.saved.client?.client_id ?? null, pages: person.pages });
await listAccounts(client);
if (options.transfer) {
  const result = await client.callTool({ name: 'transfer_funds', arguments: TRANSFER }, undefined, {
    timeout: TOOL_CALL_TIMEOUT_MS,
  });
  const text = (result.content ?? []).filter((b) => b.type === 'text').map((b) => b.text).join('\n');
  emit('transfer', { is_error: Boolean(result.isError), status: result.structuredContent?.status ?? null, text });
}
const before = provider.saved.tokens;
provider.saved.tokens = { ...before, access_token: 'a-token-the-server-refuses' };
await client.close();
client = await connect(provider);
await listAccounts(client);
const after = provider.saved.tokens;
emit('refreshed', {
  access_changed: after.access_token !== before.access_token && after.access_token !== 'a-token-the-server-refuses',
  refresh_changed: after.refresh_token !== before.refresh_token,
  had_refresh_token: Boolean(before.refresh_token),
});
await client.close();
emit('done');
