"""The MCP server: Keygate's control plane and gateway as tools an AI agent calls.

One set of tools (`tools.py`) serves both transports. Each tool talks to Keygate over its own
HTTP API with the caller's key, through a `KeygateAPI` (`keygate_api.py`): over the network for
`keygate mcp` (stdio, `stdio.py`), in process for the streamable HTTP endpoint at `/mcp`
(`endpoint.py`, `in_process.py`). So a tool can see and do exactly what the key can through the
API, no more: workspace confinement is the control plane's and the gateway's, not the tools'.
"""
