"""Drives bankguard with the official MCP Python SDK (`mcp`, pinned in requirements.txt).

tests/interop_mcp_clients.rs runs it with .peers/venv/bin/python and decides each transfer on the
holder's device while this script waits. It prints one JSON object per line on stdout:

    {"event": "initialized", "sdk": {"name", "version"}, "server": {"name", "version"}, "protocol_version"}
    {"event": "tools", "names": [...]}
    {"event": "list_accounts", "is_error", "text", "structured"}
    {"event": "progress", "scenario", "progress", "total", "message"}   (from the SDK's progress callback)
    {"event": "transfer", "scenario", "is_error", "text"}
    {"event": "done"}

Usage:
    mcp_client.py --transport http --url http://127.0.0.1:PORT/mcp --scenario approved --scenario denied
    mcp_client.py --transport stdio --cwd DIR --env KEY=VALUE ... --scenario approved -- /path/to/bankguard serve

Scenarios run in the order given, in one session:
    approved  initialize, tools/list, list_accounts, then transfer 25.00 acc_alice_chk -> acc_bob_chk (with a
              progress callback), which the holder is expected to approve;
    denied    transfer 40.00 acc_alice_chk -> acc_bob_chk (with a progress callback), which the holder is expected
              to deny;
    late      transfer 30.00 acc_alice_chk -> acc_bob_chk that the holder approves only after the server's wait
              bound: expects a pending result, then calls get_transfer_status (wait_seconds = --status-wait) until
              the outcome is known. Every call uses --read-timeout, the client's patience, so an answer that
              came later than that would fail the run.

    {"event": "status", "scenario", "is_error", "status", "text"}   (each get_transfer_status answer)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Implementation

TRANSFERS = {
    "approved": {"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "25.00"},
    "denied": {"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "40.00"},
    "late": {"from_account_id": "acc_alice_chk", "to_account_id": "acc_bob_chk", "amount": "30.00"},
}
MAX_STATUS_CALLS = 10

# Far above the approval wait (the test decides within a second or two), below the test's own limit.
TOOL_CALL_TIMEOUT_SECONDS = 30.0


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", None) == "text")


def transport(args: argparse.Namespace) -> AbstractAsyncContextManager[Any]:
    if args.transport == "http":
        return streamable_http_client(args.url)
    if not args.command:
        sys.exit("stdio needs the server's command line after --")
    env = dict(pair.split("=", 1) for pair in args.env)
    server = StdioServerParameters(command=args.command[0], args=args.command[1:], env=env, cwd=args.cwd)
    # The server's logs go to this script's stderr, which the test keeps for its failure messages.
    return stdio_client(server, errlog=sys.stderr)


async def transfer(session: ClientSession, scenario: str, args: argparse.Namespace) -> None:
    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        emit("progress", scenario=scenario, progress=progress, total=total, message=message)

    result = await session.call_tool(
        "transfer_funds",
        TRANSFERS[scenario],
        read_timeout_seconds=args.read_timeout,
        progress_callback=on_progress,
    )
    structured = result.structured_content or {}
    emit(
        "transfer",
        scenario=scenario,
        is_error=bool(result.is_error),
        text=text_of(result),
        status=structured.get("status"),
    )
    if scenario != "late":
        return
    status = structured.get("status")
    for _ in range(MAX_STATUS_CALLS):
        if status != "pending":
            return
        answer = await session.call_tool(
            "get_transfer_status",
            {"intent_id": structured["intent_id"], "wait_seconds": args.status_wait},
            read_timeout_seconds=args.read_timeout,
            progress_callback=on_progress,
        )
        status = (answer.structured_content or {}).get("status")
        emit("status", scenario=scenario, is_error=bool(answer.is_error), status=status, text=text_of(answer))


async def run(args: argparse.Namespace) -> None:
    async with transport(args) as (read, write):
        client_info = Implementation(name="bankguard-interop-python", version="0.0.0")
        async with ClientSession(read, write, client_info=client_info) as session:
            initialized = await session.initialize()
            server = session.server_info
            emit(
                "initialized",
                sdk={"name": "mcp", "version": importlib.metadata.version("mcp")},
                server={"name": server.name, "version": server.version} if server else None,
                protocol_version=initialized.protocol_version,
            )
            tools = await session.list_tools()
            emit("tools", names=[tool.name for tool in tools.tools])
            accounts = await session.call_tool("list_accounts", {})
            emit(
                "list_accounts",
                is_error=bool(accounts.is_error),
                text=text_of(accounts),
                structured=accounts.structured_content,
            )
            for scenario in args.scenario:
                await transfer(session, scenario, args)
    emit("done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transport", choices=["stdio", "http"], required=True)
    parser.add_argument("--url", help="the MCP endpoint (http)")
    parser.add_argument("--cwd", help="the server's working directory (stdio)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server (stdio)")
    parser.add_argument("--scenario", action="append", choices=sorted(TRANSFERS), default=[])
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=TOOL_CALL_TIMEOUT_SECONDS,
        help="seconds the client waits for any one call (the SDK's read timeout)",
    )
    parser.add_argument("--status-wait", type=int, default=45, help="wait_seconds for get_transfer_status")
    parser.add_argument("command", nargs="*", help="the server's command line (stdio), after --")
    args = parser.parse_args()
    if args.transport == "http" and not args.url:
        parser.error("http needs --url")
    anyio.run(run, args)


if __name__ == "__main__":
    main()
