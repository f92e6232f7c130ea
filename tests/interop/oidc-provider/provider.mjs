// node oidc-provider as an independent CIBA provider for bankguard's interop tests
// (tests/interop_oidc_provider.rs). Not bankguard code: a second, unrelated implementation of CIBA,
// RFC 8707 resource indicators, RFC 9396 rich authorization requests and RFC 9068 JWT access tokens.
//
//   node provider.mjs [--port N] [--ping-endpoint URL] [--mcp-resource URL]
//   (or PORT / PING_ENDPOINT / MCP_RESOURCE in the environment)
//
// Listens on 127.0.0.1:N (0, the default, picks a free port) and, once listening, prints its issuer
// URL alone on the first line of stdout. Logs go to stderr. Exits when stdin closes, so it never
// outlives the test that started it.
//
// Besides the provider's own routes, a loopback-only test API plays the account holder's phone:
//   GET  /test/pending                               pending backchannel requests, oldest first
//   POST /test/decide {"auth_req_id", "decision"}    "approve" (a Grant) or "deny" (AccessDenied)
//
// Registered clients (client_secret_basic, CIBA + client credentials):
//   bankguard-interop       poll mode
//   bankguard-interop-ping  ping mode, only when --ping-endpoint is given
//
// With --mcp-resource, it is also the authorization server of MCP clients that sign in to bankguard's MCP
// endpoint (mcp.auth = "oauth"): open dynamic client registration (RFC 7591), the authorization code flow with
// PKCE, `resource` (RFC 8707) naming the MCP endpoint, whose JWT access tokens carry scope mcp:tools, and
// rotating refresh tokens. The person signing in uses this script's own page at /interaction/:uid (pick alice or
// bob, then allow or deny), since the provider's built-in development pages are switched off.
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const AUDIENCE = 'urn:bankguard:bank-api';
const CLIENT = { id: 'bankguard-interop', secret: 'interop-secret-0123456789abcdef' };
const PING_CLIENT = { id: 'bankguard-interop-ping', secret: 'interop-ping-secret-0123456789ab' };
const READ_ACCOUNTS = 'read:accounts';
const CREATE_TRANSFER = 'create:transfer';
// The holders this provider knows (the bank API's demo users).
const ACCOUNTS = new Set(['alice', 'bob']);
// bankguard's binding messages: at most 64 of [A-Za-z0-9 +-_.,:#] (Auth0's rule; the default allows 20, no spaces).
const BINDING_MESSAGE = /^[A-Za-z0-9 +\-_.,:#]{1,64}$/;
const DECIMAL_AMOUNT = /^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$/;
// Auth0's ceiling on requested_expiry; oidc-provider's default would allow 600 s.
const MAX_REQUEST_TTL = 300;

const { values: args } = parseArgs({
  options: { port: { type: 'string' }, 'ping-endpoint': { type: 'string' }, 'mcp-resource': { type: 'string' } },
});
const mcpResource = args['mcp-resource'] ?? process.env.MCP_RESOURCE;
const MCP_TOOLS = 'mcp:tools';
const port = Number(args.port ?? process.env.PORT ?? 0);
const pingEndpoint = args['ping-endpoint'] ?? process.env.PING_ENDPOINT;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`provider.mjs: invalid port ${args.port ?? process.env.PORT}`);
  process.exit(2);
}

/** Backchannel requests waiting for the holder, by auth_req_id. */
const pending = new Map();

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-rs256', alg: 'RS256', use: 'sig' };

/** The `payment_initiation` detail as bankguard and the bank API shape it (RFC 9396 §2, bankguard's README). */
function validatePaymentInitiation(_ctx, detail) {
  const fail = (why) => {
    throw new errors.InvalidAuthorizationDetails(`payment_initiation: ${why}`);
  };
  if (!Array.isArray(detail.actions) || !detail.actions.includes('initiate')) fail("actions must include 'initiate'");
  const amount = detail.instructedAmount;
  if (typeof amount?.amount !== 'string' || !DECIMAL_AMOUNT.test(amount.amount)) fail('instructedAmount.amount');
  if (typeof amount?.currency !== 'string' || !/^[A-Z]{3}$/.test(amount.currency)) fail('instructedAmount.currency');
  for (const side of ['debtorAccount', 'creditorAccount']) {
    if (typeof detail[side]?.id !== 'string' || !detail[side].id) fail(`${side}.id`);
  }
}

/** RFC 8707 has `resource`; bankguard (like Auth0) sends `audience`. Backchannel requests carry it as an extra
 * parameter; the token endpoint strips unknown parameters, so there it is read from the raw body. */
function requestedAudience(ctx) {
  const audience = ctx.oidc.params?.audience ?? ctx.oidc.body?.audience;
  return typeof audience === 'string' && audience ? audience : undefined;
}

const configuration = {
  clients: [
    {
      client_id: CLIENT.id,
      client_secret: CLIENT.secret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['urn:openid:params:grant-type:ciba', 'client_credentials'],
      response_types: [],
      redirect_uris: [],
      backchannel_token_delivery_mode: 'poll',
      authorization_details_types: ['payment_initiation'],
    },
    ...(pingEndpoint
      ? [{
        client_id: PING_CLIENT.id,
        client_secret: PING_CLIENT.secret,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['urn:openid:params:grant-type:ciba', 'client_credentials'],
        response_types: [],
        redirect_uris: [],
        backchannel_token_delivery_mode: 'ping',
        // The client schema insists on https; see `fetch` below for how the ping reaches bankguard's http listener.
        backchannel_client_notification_endpoint: pingEndpoint.replace(/^http:/, 'https:'),
        authorization_details_types: ['payment_initiation'],
      }]
      : []),
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  async findAccount(_ctx, id) {
    if (!ACCOUNTS.has(id)) return undefined;
    return { accountId: id, claims: async () => ({ sub: id }) };
  },
  extraParams: ['audience'],
  // What a client may register or ask for by name; the APIs' own scopes come with their resource (below).
  scopes: ['openid', 'offline_access', MCP_TOOLS],
  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // MCP clients are public clients: a refresh token whenever the client registered the grant (rotated on use).
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    registration: { enabled: !!mcpResource },
    ciba: {
      enabled: true,
      deliveryModes: ['poll', 'ping'],
      async processLoginHint(ctx, loginHint) {
        // A plain subject, or Auth0's {"format":"iss_sub","iss":…,"sub":…} naming this issuer.
        if (loginHint.startsWith('{')) {
          try {
            const hint = JSON.parse(loginHint);
            if (hint.format === 'iss_sub' && hint.iss === ctx.oidc.provider.issuer) return hint.sub;
          } catch {}
          return undefined;
        }
        return loginHint;
      },
      async processLoginHintToken() {
        throw new errors.InvalidRequest('login_hint_token is not supported');
      },
      async verifyUserCode(_ctx, _account, userCode) {
        if (userCode !== undefined) throw new errors.InvalidRequest('user_code is not supported');
      },
      async validateBindingMessage(_ctx, bindingMessage) {
        // Required, as at Auth0 (FAPI-CIBA lets an OP insist on it).
        if (bindingMessage === undefined || !BINDING_MESSAGE.test(bindingMessage)) {
          throw new errors.InvalidBindingMessage('binding_message is required: 1 to 64 of A-Za-z0-9 +-_.,:#');
        }
      },
      async validateRequestContext() {},
      async triggerAuthenticationDevice(_ctx, request, account, client) {
        // The "push notification": remember the request for GET /test/pending.
        pending.set(request.jti, {
          auth_req_id: request.jti,
          client_id: client.clientId,
          subject: account.accountId,
          binding_message: request.params.binding_message,
          scope: request.scope,
          resource: request.resource ?? null,
          authorization_details: request.params.authorization_details
            ? JSON.parse(request.params.authorization_details)
            : null,
          requested_expiry: request.params.requested_expiry ?? null,
          expires_at: Math.floor(Date.now() / 1000) + request.expiration,
        });
        console.error(`ciba: request for ${account.accountId} from ${client.clientId}: "${request.params.binding_message}"`);
      },
    },
    resourceIndicators: {
      enabled: true,
      async defaultResource(ctx, _client, oneOf) {
        return oneOf ?? requestedAudience(ctx);
      },
      // The CIBA token request names no resource: use the one the backchannel request was granted.
      useGrantedResource: async () => true,
      async getResourceServerInfo(ctx, resourceIndicator) {
        if (mcpResource && resourceIndicator === mcpResource) {
          return {
            scope: MCP_TOOLS,
            audience: mcpResource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 300,
            jwt: { sign: { alg: 'RS256' } },
          };
        }
        if (resourceIndicator !== AUDIENCE) throw new errors.InvalidTarget(`unknown audience ${resourceIndicator}`);
        // The server's own token (client credentials) may read, never move money.
        const ownToken = ctx.oidc.route === 'token' && ctx.oidc.params.grant_type === 'client_credentials';
        return {
          scope: ownToken ? READ_ACCOUNTS : `${READ_ACCOUNTS} ${CREATE_TRANSFER}`,
          audience: AUDIENCE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 300,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
    richAuthorizationRequests: {
      enabled: true,
      types: { payment_initiation: { validate: validatePaymentInitiation } },
      // What the holder approved (set by /test/decide) goes into the access token, nothing else.
      authorizationDetailsForGrantSource: async (_ctx, source) => source.rar,
      authorizationDetailsForAccessToken: async (_ctx, _token, source) => source?.rar,
      authorizationDetailsForIntrospection: async (_ctx, token) => token.rar,
    },
  },
  ttl: {
    BackchannelAuthenticationRequest(ctx) {
      const requested = Number(ctx?.oidc?.params?.requested_expiry);
      return requested > 0 ? Math.min(requested, MAX_REQUEST_TTL) : MAX_REQUEST_TTL;
    },
    AccessToken: 300,
    ClientCredentials: 300,
    IdToken: 300,
    Grant: 600,
  },
  // Outgoing requests are only CIBA pings. oidc-provider's SSRF guard drops connections to loopback, where the
  // test's MCP server listens, and the client schema demands an https notification endpoint while bankguard
  // serves /ciba/notify over plain http on loopback: for loopback targets only, drop the guard and use http.
  fetch(url, options) {
    const target = new URL(url);
    if (['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) {
      delete options.dispatcher;
      target.protocol = 'http:';
    }
    return globalThis.fetch(target, options);
  },
};

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

/** backchannelResult saves the decision, then pings a ping-mode client: a failed ping must not pass unnoticed. */
async function settle(result) {
  try {
    await result;
  } catch (error) {
    throw new Error(`the decision is saved, but the ping failed: ${error.cause?.message ?? error.message}`);
  }
}

/** The holder's decision, as their phone would send it. */
async function decide(provider, authReqId, decision) {
  const request = await provider.BackchannelAuthenticationRequest.find(authReqId, { ignoreExpiration: true });
  if (!request) return [404, { error: 'unknown auth_req_id' }];
  if (request.isExpired) return [409, { error: 'the request has expired' }];
  if (request.grantId || request.error) return [409, { error: 'the request is already decided' }];
  pending.delete(authReqId);
  if (decision === 'deny') {
    await settle(provider.backchannelResult(request, new errors.AccessDenied('the holder declined')));
    return [200, { decided: 'deny' }];
  }
  const grant = new provider.Grant({ clientId: request.clientId, accountId: request.accountId });
  const scopes = request.scope.split(' ').filter(Boolean);
  grant.addOIDCScope(scopes.filter((scope) => scope === 'openid').join(' '));
  if (request.resource) grant.addResourceScope(request.resource, scopes.filter((s) => s !== 'openid').join(' '));
  await grant.save();
  const details = request.params.authorization_details;
  await settle(provider.backchannelResult(request, grant, {
    acr: 'urn:bankguard:interop:device',
    amr: ['user'],
    authTime: Math.floor(Date.now() / 1000),
    rar: details ? JSON.parse(details) : undefined,
  }));
  return [200, { decided: 'approve' }];
}

async function testApi(provider, req, res) {
  try {
    if (req.method === 'GET' && req.url === '/test/pending') {
      const now = Math.floor(Date.now() / 1000);
      return json(res, 200, [...pending.values()].filter((request) => request.expires_at > now));
    }
    if (req.method === 'POST' && req.url === '/test/decide') {
      const { auth_req_id: authReqId, decision } = await readJson(req);
      if (typeof authReqId !== 'string' || !['approve', 'deny'].includes(decision)) {
        return json(res, 400, { error: 'send {"auth_req_id": "...", "decision": "approve" | "deny"}' });
      }
      const [status, body] = await decide(provider, authReqId, decision);
      return json(res, status, body);
    }
    return json(res, 404, { error: 'not found' });
  } catch (error) {
    console.error('test API:', error);
    return json(res, 500, { error: String(error?.message ?? error) });
  }
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** The person signing in: this test page, then the grant of exactly what the client asked for the MCP endpoint. */
async function interaction(provider, req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const { uid, params } = details;
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(`<!doctype html><title>Sign in (interop test page)</title>
<p>Sign in to <b>${escapeHtml(params.client_id)}</b> for ${escapeHtml(params.resource ?? 'no resource')}
 (scope ${escapeHtml(params.scope ?? '')})</p>
<form method="post" action="/interaction/${escapeHtml(uid)}">
<label><input type="radio" name="user" value="alice"> alice</label>
<label><input type="radio" name="user" value="bob"> bob</label>
<button type="submit" name="decision" value="allow">Sign in and allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`);
    }
    const form = await readForm(req);
    if (form.get('decision') !== 'allow') {
      return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the holder declined' });
    }
    const user = form.get('user');
    if (!ACCOUNTS.has(user)) return json(res, 400, { error: `no such holder ${user}` });
    const grant = new provider.Grant({ accountId: user, clientId: params.client_id });
    const scopes = String(params.scope ?? '').split(' ').filter(Boolean);
    // The scopes a client may ask for by name (`scopes` above) are granted as such, mcp:tools also for the resource.
    const oidc = scopes.filter((scope) => configuration.scopes.includes(scope));
    if (oidc.length) grant.addOIDCScope(oidc.join(' '));
    if (params.resource) grant.addResourceScope(params.resource, scopes.filter((scope) => scope === MCP_TOOLS).join(' '));
    const grantId = await grant.save();
    console.error(`interaction: ${user} signed in to ${params.client_id} for ${params.resource}`);
    return provider.interactionFinished(req, res, { login: { accountId: user }, consent: { grantId } }, {
      mergeWithLastSubmission: false,
    });
  } catch (error) {
    console.error('interaction:', error);
    return json(res, 400, { error: String(error?.message ?? error) });
  }
}

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (_ctx, error) => console.error('server_error:', error));
  provider.on('backchannel.error', (_ctx, error) => console.error('backchannel.error:', error));
  provider.on('grant.error', (_ctx, error) => console.error('grant.error:', error.message));
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url.startsWith('/test/')) return testApi(provider, req, res);
    if (mcpResource && req.url.startsWith('/interaction/')) return interaction(provider, req, res);
    return callback(req, res);
  });
  process.stdout.write(`${issuer}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
