// VS Code's MCP allow/deny decision, rewritten from its published rules, over JSON lines.
//
//   node matcher_oracle.mjs  < requests  > answers
//
// The matcher (src/vs/platform/mcp/common/allowedMcpServers.ts, VS Code 1.130+) is in no
// installable npm build, so this is an oracle written from the rules as documented in
// ../shared/reference/governance-outputs.md section 2.2; it runs in node so that URLs are
// parsed by the same WHATWG `new URL` VS Code uses. One answer line per request line:
//
//   {"op": "check", "allow": A, "deny": D, "identities": [{name, url?, command?}, ...]}
//     -> {"results": ["Allowed" | "Denied" | "NotAllowed", ...],
//         "kept": {"allow": n | null, "deny": n | null}}   (entries left after parsing; null: unset)
//   {"op": "destination", "urls": [...]}
//     -> {"destinations": [origin+pathname+search | raw | null], "hostnames": [hostname | null]}

import { createInterface } from 'node:readline';

// 1. Parse: a non-array is "unset"; an entry survives only with exactly one valid field.
function parseList(value) {
  if (!Array.isArray(value)) return undefined;
  return value.filter((entry) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return false;
    const fields = [
      typeof entry.serverName === 'string' && entry.serverName.length > 0,
      typeof entry.serverUrl === 'string' && entry.serverUrl.length > 0,
      Array.isArray(entry.serverCommand) && entry.serverCommand.length > 0
        && entry.serverCommand.every((part) => typeof part === 'string'),
    ];
    return fields.filter(Boolean).length === 1;
  });
}

// 5. The URL a destination is compared as: what fetch would contact, for http(s).
function destination(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  return parsed.protocol === 'http:' || parsed.protocol === 'https:'
    ? parsed.origin + parsed.pathname + parsed.search : url;
}

// 5. The pattern: escaped literally, `*` within the authority cannot leave it, `*` after it
// is anything; anchored, case-insensitive, never normalised.
const compiled = new Map();
function patternRegExp(pattern) {
  if (compiled.has(pattern)) return compiled.get(pattern);
  const separator = pattern.indexOf('://');
  const start = separator >= 0 ? separator + 3 : 0;
  let end = pattern.length;
  for (let i = start; i < pattern.length; i++) {
    if ('/\\?#'.includes(pattern[i])) { end = i; break; }
  }
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === '*') source += i < end ? '[^/@\\\\?#]*' : '.*';
    else source += char.replace(/[.*+?^${}()|[\]\\\/-]/g, '\\$&');
  }
  const regExp = new RegExp(`^${source}$`, 'i');
  compiled.set(pattern, regExp);
  return regExp;
}

function hostname(url) {
  try {
    return new URL(url).hostname;
  } catch {
    return null;
  }
}

// 3, 4, 5. One entry against one identity: names and commands exactly, URLs by pattern.
function matches(entry, identity) {
  if (typeof entry.serverName === 'string') return entry.serverName === identity.name;
  if (typeof entry.serverUrl === 'string') {
    if (identity.url === undefined) return false;
    const target = destination(identity.url);
    return target !== null && patternRegExp(entry.serverUrl).test(target);
  }
  const command = identity.command;
  return command !== undefined && command.length === entry.serverCommand.length
    && command.every((part, i) => part === entry.serverCommand[i]);
}

// 2. Deny first, then a configured allowlist must match.
function decide(allow, deny, identity) {
  if (deny !== undefined && deny.some((entry) => matches(entry, identity))) return 'Denied';
  if (allow !== undefined && !allow.some((entry) => matches(entry, identity))) return 'NotAllowed';
  return 'Allowed';
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  const request = JSON.parse(line);
  let answer;
  if (request.op === 'check') {
    const allow = parseList(request.allow);
    const deny = parseList(request.deny);
    answer = {
      results: request.identities.map((identity) => decide(allow, deny, identity)),
      kept: { allow: allow === undefined ? null : allow.length, deny: deny === undefined ? null : deny.length },
    };
  } else if (request.op === 'destination') {
    answer = { destinations: request.urls.map(destination), hostnames: request.urls.map(hostname) };
  } else {
    answer = { error: `unknown op ${request.op}` };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
