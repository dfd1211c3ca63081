"""mcp-mirror: a static-site mirror generator for the MCP Registry v0.1 API."""

__version__ = "0.1.0"
