// VS Code's own server.json -> mcp.json conversion, over JSON lines, for tests/test_allowlist.py.
//
//   node install_config.mjs --modules DIR  < requests  > answers
//
// Each request line is {"server": <server.json>, "type": <registryType or "remote">}; each
// answer line, in the same order, is {"config": <what VS Code writes>} or {"error": <message>}
// when VS Code throws. The conversion is AbstractCommonMcpManagementService's
// getMcpServerConfigurationFromManifest (src/vs/platform/mcp/common/mcpManagementService.ts in
// VS Code 1.128.1, as published by @codingame), called as the install path calls it. It reads
// no field of the service, so a bare prototype object stands in for the DI-built service.

import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: options } = parseArgs({ options: { modules: { type: 'string' } } });
if (!options.modules) {
  process.stderr.write('usage: node install_config.mjs --modules DIR\n');
  process.exit(2);
}
const require = createRequire(join(resolve(options.modules), 'package.json'));
const { AbstractCommonMcpManagementService } = await import(pathToFileURL(require.resolve(
  '@codingame/monaco-vscode-api/vscode/vs/platform/mcp/common/mcpManagementService')).href);
const service = Object.create(AbstractCommonMcpManagementService.prototype);

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  const { server, type } = JSON.parse(line);
  let answer;
  try {
    answer = { config: service.getMcpServerConfigurationFromManifest(server, type).mcpServerConfiguration.config };
  } catch (error) {
    answer = { error: String(error) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
