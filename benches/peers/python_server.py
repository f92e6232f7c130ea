"""A stdio MCP server with two tools on the official MCP Python SDK (mcp 2.x, MCPServer, formerly
FastMCP): the Python reference that benches/suite/cold_start.rs starts beside bankguard."""

from mcp.server import MCPServer

server = MCPServer("bankguard-bench-python")


@server.tool()
def echo(text: str) -> str:
    """Returns the text it is given."""
    return text


@server.tool()
def add(left: int, right: int) -> int:
    """Adds two integers."""
    return left + right


if __name__ == "__main__":
    server.run()
