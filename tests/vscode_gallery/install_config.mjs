// VS Code's own server.json -> mcp.json conversion, and its install-link handler, over JSON
// lines, for tests/test_allowlist.py, tests/test_vscode.py and tests/test_catalog.py.
//
//   node install_config.mjs --modules DIR  < requests  > answers
//
// Each answer line answers the request line in the same place:
// - {"server": <server.json>, "type": <registryType or "remote">} ->
//   {"config": <the mcp.json entry VS Code writes>, "inputs": <the inputs it adds>} (JSON
//   leaves out what VS Code leaves undefined), or {"error": <message>} when VS Code throws.
//   The conversion is AbstractCommonMcpManagementService's getMcpServerConfigurationFromManifest
//   (src/vs/platform/mcp/common/mcpManagementService.ts in VS Code 1.128.1, as published by
//   @codingame), called as the install path calls it. It reads no field of the service, so a
//   bare prototype object stands in for the DI-built service.
// - {"link": "vscode:mcp/install?..."} -> {"handled": <handleURL's answer>, "opened":
//   {"name", "config", "inputs"}} (no "opened" when nothing would be installed): the link
//   parsed by VS Code's URI.parse and handed to McpWorkbenchService.handleURL
//   (src/vs/workbench/contrib/mcp/browser/mcpWorkbenchService.ts), the handler VS Code calls
//   for vscode: links. Its service has the gallery off (so the link's own entry is used) and
//   records what it would open for install instead of opening an editor.

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
const load = (specifier) => import(pathToFileURL(require.resolve(specifier)).href);
const { AbstractCommonMcpManagementService } = await load(
  '@codingame/monaco-vscode-api/vscode/vs/platform/mcp/common/mcpManagementService');
const service = Object.create(AbstractCommonMcpManagementService.prototype);

let linkHandler;  // loaded on the first link: the conversion alone needs less
async function handleLink(link) {
  if (!linkHandler) {
    const [{ McpWorkbenchService }, { URI }] = await Promise.all([
      load('@codingame/monaco-vscode-mcp-service-override/vscode/vs/workbench/contrib/mcp/browser/mcpWorkbenchService'),
      load('@codingame/monaco-vscode-api/vscode/vs/base/common/uri'),
    ]);
    const workbench = Object.create(McpWorkbenchService.prototype);
    Object.assign(workbench, {
      mcpGalleryService: { isEnabled: () => false },
      // new McpWorkbenchServer(installState, runtimeStatus, local, gallery, installable)
      instantiationService: { createInstance: (ctor, ...args) => ({ installable: args[4] }) },
      open(server) { this.opened = server.installable; },
      logService: { info() {}, warn() {}, error() {} },
    });
    linkHandler = { workbench, URI };
  }
  const { workbench, URI } = linkHandler;
  workbench.opened = undefined;
  const handled = await workbench.handleURL(URI.parse(link));
  return { handled, opened: workbench.opened };
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  const request = JSON.parse(line);
  let answer;
  try {
    if ('link' in request) {
      answer = await handleLink(request.link);
    } else {
      const { config, inputs } = service.getMcpServerConfigurationFromManifest(
        request.server, request.type).mcpServerConfiguration;
      answer = { config, inputs };
    }
  } catch (error) {
    answer = { error: String(error) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
