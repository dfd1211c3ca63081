// Drive VS Code's own MCP gallery code against a registry and print what it shows, as JSON.
//
//   node gallery.mjs --modules DIR [--search TERM] [--timeout SECONDS] BASE_URL
//
// DIR is the node_modules that `make install` fills from package.json here. The classes
// doing the work are VS Code's (src/vs/platform/mcp/common/mcpGalleryService.ts and
// src/vs/workbench/services/mcp/browser/mcpGalleryManifestService.ts, as published by
// @codingame in VS Code 1.128.1's build), built by VS Code's InstantiationService; they
// build every URL, probe the version, page, parse and convert. What this file gives them
// is the plumbing their constructors ask for:
// - IRequestService: VS Code's AbstractRequestService with the fetch-based request() that
//   its browser request service uses, minus the remote-agent fallback (there is none);
// - IConfigurationService: the user setting chat.mcp.gallery.serviceUrl = BASE_URL, parsed
//   by VS Code's own ConfigurationModelParser, as a settings.json would be;
// - IProductService without an mcpGallery entry (as in Code - OSS), so only the setting counts;
// - ILogService: VS Code's LogService over a logger that keeps what it is told;
// - IFileService, IRemoteAgentService: unused for an http(s) URL without a remote.
//
// Output: the manifest from the version probe, every server the list shows across every
// page, the same for TERM typed into the search box, the detail lookup
// (getMcpServersFromGallery) of every listed server, and every request made with its status.
// Each section that failed carries the error instead. Nothing in it depends on the time of
// the run; URLs start with BASE_URL, which callers replace to compare two registries.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const MAX_PAGES = 200;
const GALLERY_PACKAGE = '@codingame/monaco-vscode-mcp-service-override';

const { values: options, positionals } = parseArgs({
  allowPositionals: true,
  options: { modules: { type: 'string' }, search: { type: 'string' }, timeout: { type: 'string', default: '60' } },
});
if (!options.modules || positionals.length !== 1) {
  process.stderr.write('usage: node gallery.mjs --modules DIR [--search TERM] [--timeout SECONDS] BASE_URL\n');
  process.exit(2);
}
const [baseUrl] = positionals;
let phase = 'load';
const requests = [];
setTimeout(() => {
  process.stderr.write(`gallery.mjs: gave up after ${options.timeout} s in ${phase}; the requests so far:\n`
                       + JSON.stringify(requests, null, 1) + '\n');
  process.exit(3);
}, Number(options.timeout) * 1000).unref();

const modules = resolve(options.modules);
const require = createRequire(join(modules, 'package.json'));
const load = (specifier) => import(pathToFileURL(require.resolve(specifier)).href);
const vscode = (path) => load(`@codingame/monaco-vscode-api/vscode/vs/${path}`);

const [
  { McpGalleryService }, { WorkbenchMcpGalleryManifestService }, { request }, { AbstractRequestService },
  { IRequestService }, { InstantiationService }, { ServiceCollection }, { SyncDescriptor }, { LogService },
  { AbstractMessageLogger, LogLevel, LogLevelToString }, { ILogService }, { IFileService }, { IProductService },
  { IRemoteAgentService }, { IConfigurationService }, { ConfigurationModelParser }, { IMcpGalleryManifestService },
  { CancellationToken }, { Event },
] = await Promise.all([
  load(`${GALLERY_PACKAGE}/vscode/vs/platform/mcp/common/mcpGalleryService`),
  load(`${GALLERY_PACKAGE}/vscode/vs/workbench/services/mcp/browser/mcpGalleryManifestService`),
  load('@codingame/monaco-vscode-base-service-override/vscode/vs/base/parts/request/common/requestImpl'),
  vscode('platform/request/common/request'),
  vscode('platform/request/common/request.service'),
  vscode('platform/instantiation/common/instantiationService'),
  vscode('platform/instantiation/common/serviceCollection'),
  vscode('platform/instantiation/common/descriptors'),
  vscode('platform/log/common/logService'),
  vscode('platform/log/common/log'),
  vscode('platform/log/common/log.service'),
  vscode('platform/files/common/files.service'),
  vscode('platform/product/common/productService.service'),
  vscode('workbench/services/remote/common/remoteAgentService.service'),
  vscode('platform/configuration/common/configuration.service'),
  vscode('platform/configuration/common/configurationModels'),
  vscode('platform/mcp/common/mcpGalleryManifest.service'),
  vscode('base/common/cancellation'),
  vscode('base/common/event'),
]);

const log = [];
class KeepingLogger extends AbstractMessageLogger {
  constructor() {
    super();
    this.setLevel(LogLevel.Info);
  }
  log(level, message) {
    log.push({ phase, level: LogLevelToString(level), message });
  }
}
const logService = new LogService(new KeepingLogger());

class FetchRequestService extends AbstractRequestService {
  async request(requestOptions, token) {
    const entry = { phase, callSite: requestOptions.callSite, url: requestOptions.url };
    requests.push(entry);  // in the order the gallery issues them, before any answer
    try {
      const context = await this.logAndRequest(requestOptions, () => request(requestOptions, token));
      entry.status = context.res.statusCode;
      return context;
    } catch (error) {
      entry.error = String(error);
      throw error;
    }
  }
  async resolveProxy() { return undefined; }
  async lookupAuthorization() { return undefined; }
  async lookupKerberosAuthorization() { return undefined; }
  async loadCertificates() { return []; }
}

const settings = new ConfigurationModelParser('settings.json', logService);
settings.parse(JSON.stringify({ 'chat.mcp.gallery.serviceUrl': baseUrl }));
const configuration = settings.configurationModel;
const configurationService = {
  _serviceBrand: undefined,
  onDidChangeConfiguration: Event.None,
  getValue: (section) => configuration.getValue(section),
  inspect: (key) => ({ value: configuration.getValue(key), userValue: configuration.getValue(key) }),
};

const instantiation = new InstantiationService(new ServiceCollection(
  [ILogService, logService],
  [IRequestService, new FetchRequestService(logService)],
  [IConfigurationService, configurationService],
  [IProductService, { _serviceBrand: undefined }],
  [IRemoteAgentService, { _serviceBrand: undefined, getConnection: () => null }],
  [IFileService, { _serviceBrand: undefined, readFile: async (uri) => { throw new Error(`no files here: ${uri}`); } }],
  // as @codingame's getServiceOverride() registers it, and VS Code's workbench does
  [IMcpGalleryManifestService, new SyncDescriptor(WorkbenchMcpGalleryManifestService, [], true)],
), true);
const gallery = instantiation.createInstance(McpGalleryService);
const manifests = instantiation.invokeFunction((accessor) => accessor.get(IMcpGalleryManifestService));

async function section(name, run) {
  phase = name;
  try {
    return await run();
  } catch (error) {
    return { error: String(error) };
  }
}

// What the MCP servers view does while the user scrolls: the first page, then
// getNextPage() for as long as the pager says there is more.
async function walk(queryOptions) {
  const pager = await gallery.query(queryOptions, CancellationToken.None);
  let page = pager.firstPage;
  const pages = [{ count: page.items.length, hasMore: page.hasMore }];
  const servers = [...page.items];
  while (page.hasMore) {
    if (pages.length >= MAX_PAGES) {
      throw new Error(`more than ${MAX_PAGES} pages`);
    }
    page = await pager.getNextPage(CancellationToken.None);
    pages.push({ count: page.items.length, hasMore: page.hasMore });
    servers.push(...page.items);
  }
  return { pages, servers };
}

const manifest = await section('manifest', async () => ({
  ...(await manifests.getMcpGalleryManifest()),
  status: manifests.mcpGalleryManifestStatus,
  enabled: gallery.isEnabled(),
}));
const list = await section('list', () => walk({}));
const search = options.search === undefined ? null : await section('search', async () => ({
  text: options.search,
  ...(await walk({ text: options.search })),
}));
const names = (list.servers ?? []).map((server) => server.name);
const details = await section('details', async () => {
  // getMcpServersFromGallery answers in the order the lookups finish: sort by name.
  const found = await gallery.getMcpServersFromGallery(names.map((name) => ({ name })));
  found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const seen = new Set(found.map((server) => server.name));
  return { servers: found, missing: names.filter((name) => !seen.has(name)) };
});

const installed = JSON.parse(readFileSync(join(modules, GALLERY_PACKAGE, 'package.json'), 'utf8'));
process.stdout.write(JSON.stringify({
  client: `${installed.name}@${installed.version}`,
  manifest, list, search, details, requests, log,
}, null, 1) + '\n', () => process.exit(0));  // exit once a pipe took it all, not before
