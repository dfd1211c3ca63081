"""mcp-mirror: a static-site mirror generator for the MCP Registry v0.1 API."""

__version__ = "0.1.0"
__url__ = "https://github.com/mcp-mirror/mcp-mirror"  # named in the User-Agent every upstream sees
