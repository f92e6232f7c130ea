// Drives bankguard with the official MCP TypeScript SDK (@modelcontextprotocol/sdk, exact version in package.json).
//
// tests/interop_mcp_clients.rs runs it with .peers/node22/node_modules/.bin/node and decides each transfer on the
// holder's device while this script waits. It prints one JSON object per line on stdout, the same events as
// tests/interop/python/mcp_client.py:
//
//   {"event": "initialized", "sdk": {"name", "version"}, "server": {"name", "version"}, "protocol_version"}
//   {"event": "tools", "names": [...]}
//   {"event": "list_accounts", "is_error", "text", "structured"}
//   {"event": "progress", "scenario", "progress", "total", "message"}   (from the request's onprogress callback)
//   {"event": "transfer", "scenario", "is_error", "text"}
//   {"event": "done"}
//
// Usage:
//   node client.mjs --transport http --url http://127.0.0.1:PORT/mcp --scenario approved --scenario denied
//   node client.mjs --transport stdio --cwd DIR --env KEY=VALUE ... --scenario approved -- /path/to/bankguard serve
//
// Scenarios run in the order given, in one session:
//   approved  initialize, tools/list, list_accounts, then transfer 25.00 acc_alice_chk -> acc_bob_chk (with
//             onprogress), which the holder is expected to approve;
//   denied    transfer 40.00 acc_alice_chk -> acc_bob_chk (with onprogress), which the holder is expected to deny.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const TRANSFERS = {
  approved: { from_account_id: 'acc_alice_chk', to_account_id: 'acc_bob_chk', amount: '25.00' },
  denied: { from_account_id: 'acc_alice_chk', to_account_id: 'acc_bob_chk', amount: '40.00' },
};

// Far above the approval wait (the test decides within a second or two), below the test's own limit.
const TOOL_CALL_TIMEOUT_MS = 30_000;

function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function textOf(result) {
  return (result.content ?? [])
    .filter((block) => block.type === 'text')
    .map((block) => block.text)
    .join('\n');
}

function usage(message) {
  process.stderr.write(`client.mjs: ${message}\n`);
  process.exit(2);
}

const { values: options, positionals: command } = parseArgs({
  allowPositionals: true,
  options: {
    transport: { type: 'string' },
    url: { type: 'string' },
    cwd: { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
    scenario: { type: 'string', multiple: true, default: [] },
  },
});

for (const scenario of options.scenario) {
  if (!(scenario in TRANSFERS)) usage(`unknown scenario ${scenario}`);
}

let transport;
if (options.transport === 'http') {
  if (!options.url) usage('http needs --url');
  transport = new StreamableHTTPClientTransport(new URL(options.url));
} else if (options.transport === 'stdio') {
  if (command.length === 0) usage("stdio needs the server's command line after --");
  const env = Object.fromEntries(
    options.env.map((pair) => {
      const at = pair.indexOf('=');
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
  // Only these variables reach the server (plus the SDK's safe defaults such as PATH and HOME); its stderr goes
  // to this script's stderr, which the test keeps for its failure messages.
  transport = new StdioClientTransport({
    command: command[0],
    args: command.slice(1),
    env,
    cwd: options.cwd,
    stderr: 'inherit',
  });
} else {
  usage('--transport must be stdio or http');
}

// The Client hands the negotiated protocol version to its transport through the optional
// Transport.setProtocolVersion hook (only the HTTP transport implements it); record it for both.
let protocolVersion = null;
const setProtocolVersion = transport.setProtocolVersion?.bind(transport);
transport.setProtocolVersion = (version) => {
  protocolVersion = version;
  setProtocolVersion?.(version);
};

const client = new Client({ name: 'bankguard-interop-typescript', version: '0.0.0' });
await client.connect(transport);
const server = client.getServerVersion();
// The SDK's package exports hide its package.json; read the installed one next to this script.
const sdk = JSON.parse(
  readFileSync(new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url), 'utf8'),
);
emit('initialized', {
  sdk: { name: sdk.name, version: sdk.version },
  server: server ? { name: server.name, version: server.version } : null,
  protocol_version: protocolVersion,
});

const { tools } = await client.listTools();
emit('tools', { names: tools.map((tool) => tool.name) });

const accounts = await client.callTool({ name: 'list_accounts', arguments: {} });
emit('list_accounts', {
  is_error: accounts.isError === true,
  text: textOf(accounts),
  structured: accounts.structuredContent ?? null,
});

for (const scenario of options.scenario) {
  const result = await client.callTool({ name: 'transfer_funds', arguments: TRANSFERS[scenario] }, undefined, {
    // Passing onprogress makes the SDK send a progressToken in the request's _meta.
    onprogress: ({ progress, total, message }) =>
      emit('progress', { scenario, progress, total: total ?? null, message: message ?? null }),
    timeout: TOOL_CALL_TIMEOUT_MS,
  });
  emit('transfer', { scenario, is_error: result.isError === true, text: textOf(result) });
}

await client.close();
emit('done');
