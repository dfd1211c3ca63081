// mcp-mirror {{ version }}: every GET /v0.1/servers, answered as upstream answers it from
// the rows index of the tree and the rows' own documents. A port of mirror/routes.py
// (compute_list, and resolve for the other API paths), serve's path decoding and
// mirror/query.py that answers byte for byte what `mcp-mirror serve` answers. The core is
// I/O-free; the wrappers at the end read the tree: nginx (njs, `js_content`, the list only),
// and fetch-style hosts (the Netlify Function, Cloudflare Pages' _worker.js) that read the
// deployed static assets and answer every API path.
// Written for njs 0.7 too: no classes, destructuring, spread or BigInt.

var CONFIG = {{ engine | tojson }};

// -- query strings, as Python's parse_qsl (keep_blank_values) and serve read them -------

var HEX = /^[0-9A-Fa-f]{2}$/;

function utf8Decode(bytes, escape) {
  // Python's UTF-8 decoder with errors="replace": one U+FFFD per maximal invalid subpart; with
  // `escape`, errors="surrogateescape": each byte of it as U+DC80..U+DCFF, as serve keeps a path.
  var out = "", i = 0, n = bytes.length;
  function invalid(from, to) {
    if (!escape) { return "\uFFFD"; }
    var text = "";
    for (var p = from; p < to; p++) { text += String.fromCharCode(0xDC00 + bytes[p]); }
    return text;
  }
  while (i < n) {
    var b = bytes[i];
    if (b < 0x80) { out += String.fromCharCode(b); i += 1; continue; }
    var need = 0, cp = 0, lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) { need = 1; cp = b & 0x1F; }
    else if (b >= 0xE0 && b <= 0xEF) {
      need = 2; cp = b & 0x0F;
      if (b === 0xE0) { lo = 0xA0; } else if (b === 0xED) { hi = 0x9F; }
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3; cp = b & 0x07;
      if (b === 0xF0) { lo = 0x90; } else if (b === 0xF4) { hi = 0x8F; }
    } else { out += invalid(i, i + 1); i += 1; continue; }
    var j = i + 1, ok = true;
    for (var k = 0; k < need; k++, j++) {
      var c = j < n ? bytes[j] : -1;
      if (c < lo || c > hi) { ok = false; break; }
      cp = (cp << 6) | (c & 0x3F);
      lo = 0x80; hi = 0xBF;
    }
    if (!ok) { out += invalid(i, j); i = j; continue; }
    out += String.fromCodePoint(cp);
    i = j;
  }
  return out;
}

function unquote(text) {
  // urllib.parse.unquote(errors="replace"): runs of ASCII are %-decoded as UTF-8, anything
  // else (a raw byte of the request line, read as Latin-1) is kept as it is.
  if (text.indexOf("%") < 0) { return text; }
  var out = "", i = 0;
  while (i < text.length) {
    var start = i;
    if (text.charCodeAt(i) > 0x7F) {
      while (i < text.length && text.charCodeAt(i) > 0x7F) { i++; }
      out += text.slice(start, i);
      continue;
    }
    while (i < text.length && text.charCodeAt(i) <= 0x7F) { i++; }
    var run = text.slice(start, i), bytes = [];
    for (var p = 0; p < run.length; p++) {
      if (run.charAt(p) === "%" && HEX.test(run.slice(p + 1, p + 3))) {
        bytes.push(parseInt(run.slice(p + 1, p + 3), 16));
        p += 2;
      } else {
        bytes.push(run.charCodeAt(p));
      }
    }
    out += utf8Decode(bytes);
  }
  return out;
}

function parseQuery(raw) {
  // The first value of each parameter, names as sent (upstream's are case-sensitive);
  // `raw` is the query string as sent, one character per byte.
  var query = Object.create(null), pairs = raw ? raw.split("&") : [];
  for (var i = 0; i < pairs.length; i++) {
    if (!pairs[i]) { continue; }
    var eq = pairs[i].indexOf("=");
    var key = eq < 0 ? pairs[i] : pairs[i].slice(0, eq);
    var value = eq < 0 ? "" : pairs[i].slice(eq + 1);
    key = unquote(key.replace(/\+/g, " "));
    if (!(key in query)) {
      query[key] = unquote(value.replace(/\+/g, " "));
    }
  }
  var set = Object.create(null);
  for (var name in query) {
    if (query[name] !== "") { set[name] = query[name]; }  // upstream binds an empty value as unset
  }
  return set;
}

// -- times: Go's time.Parse(time.RFC3339, ...) as microseconds since the epoch ----------

var RFC3339 = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})$/;
var DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
var MIN_SECOND = -62135596800;  // 0001-01-01T00:00:00Z: Python's datetime range
var MAX_SECOND = 253402300799;  // 9999-12-31T23:59:59Z

function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  var era = Math.floor(y / 400), yoe = y - era * 400;
  var doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  var doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function parseRfc3339(text) {
  // Microseconds (a fraction truncated to them); null when it is no such time. Beyond
  // 2^53 microseconds (after the year 2255) values are doubles, so compare as such.
  var m = RFC3339.exec(text);
  if (!m) { return null; }
  var year = +m[1], month = +m[2], day = +m[3], hour = +m[4], minute = +m[5], second = +m[6];
  var offset = 0;
  if (m[8] !== "Z") {
    var hours = +m[8].slice(1, 3), minutes = +m[8].slice(4, 6);
    if (hours > 24 || minutes > 59) { return null; }
    offset = (m[8].charAt(0) === "-" ? -1 : 1) * (hours * 3600 + minutes * 60);
  }
  var leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > DAYS[month - 1] + (month === 2 && leap ? 1 : 0)
      || hour > 23 || minute > 59 || second > 59) { return null; }
  var seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
  if (seconds < MIN_SECOND || seconds > MAX_SECOND) { return null; }
  var micro = +((m[7] || "0").slice(0, 6) + "00000").slice(0, 6);
  return seconds * 1000000 + micro;
}

// -- which rows: a case-insensitive substring of the name, taken literally ---------------

var MAX_NAME_CHARS = 200;

function asciiLower(text) {
  return text.replace(/[A-Z]+/g, function (s) { return s.toLowerCase(); });
}

function searchMatcher(term) {
  // upstream escapes \, % and _ in the term (registry #1227): ILIKE is a plain substring test;
  // a term longer than any name (in code points) matches nothing
  var needle = asciiLower(term);
  if (needle.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, "_").length > MAX_NAME_CHARS) {
    return function () { return false; };
  }
  return function (name) { return asciiLower(name).indexOf(needle) >= 0; };
}

// -- the rows index -------------------------------------------------------------------

var LATEST = 1, DELETED = 2;

var ASTRAL = /[\uD800-\uDFFF]/;

function compareText(a, b) {
  // code-point order, as Python and PostgreSQL's C collation compare: JavaScript's own `<`
  // compares UTF-16 units, which puts U+10000 and above before U+E000..U+FFFF
  if (!ASTRAL.test(a) && !ASTRAL.test(b)) { return a < b ? -1 : (a > b ? 1 : 0); }
  var i = 0, j = 0;
  while (i < a.length && j < b.length) {
    var x = a.codePointAt(i), y = b.codePointAt(j);
    if (x !== y) { return x < y ? -1 : 1; }
    i += x > 0xFFFF ? 2 : 1;
    j += y > 0xFFFF ? 2 : 1;
  }
  return (i < a.length) - (j < b.length);
}

function keyAfter(name, version, row) {
  // whether (name, version) < (row.name, row.version), as Python compares tuples of str
  var byName = compareText(name, row.name);
  return byName < 0 || (byName === 0 && version !== null && compareText(version, row.version) < 0);
}

function parseIndex(text) {
  var document = JSON.parse(text);
  if (!document || document.format !== CONFIG.rowsFormat) { throw new Error("not a " + CONFIG.rowsFormat + " rows index"); }
  var rows = [], groups = [];
  document.servers.forEach(function (server) {
    var start = rows.length;
    server[1].forEach(function (v) { rows.push({ name: server[0], version: v[0], updated: v[1], flags: v[2] }); });
    if (rows.length > start) { groups.push({ name: server[0], start: start, end: rows.length }); }
  });
  return { rows: rows, groups: groups, visible: document.documents.visible, deleted: document.documents.deleted };
}

function startPosition(index, cursor) {
  // the first position after the cursor: keyset on (name, version), or on the name alone
  if (!cursor) { return 0; }
  var colon = cursor.indexOf(":");
  var name = colon < 0 ? cursor : cursor.slice(0, colon), version = colon < 0 ? null : cursor.slice(colon + 1);
  var lo = 0, hi = index.rows.length;
  while (lo < hi) {
    var mid = (lo + hi) >> 1;
    if (keyAfter(name, version, index.rows[mid])) { hi = mid; } else { lo = mid + 1; }
  }
  return lo;
}

function select(index, query) {
  var start = startPosition(index, query.cursor);
  var matcher = query.search ? searchMatcher(query.search) : null;
  var chosen = [], rows = index.rows;
  var g = 0;
  while (g < index.groups.length && index.groups[g].end <= start) { g++; }
  for (; g < index.groups.length && chosen.length < query.limit; g++) {
    var group = index.groups[g];
    if (matcher !== null && !matcher(group.name)) { continue; }
    for (var p = Math.max(group.start, start); p < group.end; p++) {
      var row = rows[p];
      if ((row.flags & DELETED) && !query.includeDeleted) { continue; }
      if (query.version === "latest" && !(row.flags & LATEST)) { continue; }
      if (query.version !== null && query.version !== "latest" && row.version !== query.version) { continue; }
      if (query.since !== null && (row.updated === null || row.updated <= query.since)) { continue; }
      chosen.push(row);
      if (chosen.length >= query.limit) { break; }
    }
  }
  var last = chosen.length >= query.limit ? chosen[chosen.length - 1] : null;
  return { rows: chosen, nextCursor: last ? last.name + ":" + last.version : null };
}

function documentFile(index, row) {
  var leaf = (row.flags & DELETED) ? index.deleted : index.visible;
  return leaf ? CONFIG.api + "/servers/" + row.name + "/versions/" + row.version + "/" + leaf : null;
}

function jsonString(text) {
  // orjson's escaping: only ", \ and control characters (no \u2028, no /)
  return '"' + text.replace(/["\\\u0000-\u001f]/g, function (c) {
    var short = { '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" }[c];
    return short || "\\u" + ("000" + c.charCodeAt(0).toString(16)).slice(-4);
  }) + '"';
}

function listDocument(items, nextCursor) {
  // items are the rows' documents as text, spliced in as they are stored
  var metadata = (nextCursor ? '"nextCursor":' + jsonString(nextCursor) + "," : "") + '"count":' + items.length;
  return '{"servers":[' + items.join(",") + '],"metadata":{' + metadata + "}}";
}

// -- checking the query: mirror/routes.py compute_list ----------------------------------

var INTEGER_RE = /^[+-]?[0-9]+$/;
var INT64_MAX = "9223372036854775807";

function problem(slug) {
  return { status: CONFIG.problems[slug].status, body: CONFIG.problems[slug].body };
}

function isOneOf(value, list) { return list.indexOf(value) >= 0; }

function integerText(text) {
  // the integer as Python writes int(text): no sign but "-", no leading zeros; null when it is
  // no integer or beyond Go's int64 (digits compared as text: njs has no BigInt)
  if (!INTEGER_RE.test(text)) { return null; }
  var negative = text.charAt(0) === "-", digits = text.replace(/^[+-]/, "").replace(/^0+(?=[0-9])/, "");
  var bound = negative ? "9223372036854775808" : INT64_MAX;
  if (digits.length > bound.length || (digits.length === bound.length && digits > bound)) { return null; }
  return negative && digits !== "0" ? "-" + digits : digits;
}

function validationProblem(errors) {
  // Huma's 422 body, as orjson writes it (values are text or integers already written)
  var items = errors.map(function (e) {
    return '{"message":' + jsonString(e.message) + ',"location":' + jsonString(e.location) + ',"value":' + e.value + "}";
  });
  return { status: 422, body: '{"title":"Unprocessable Entity","status":422,"detail":"validation failed","errors":['
           + items.join(",") + "]}" };
}

function computeList(query) {
  // Huma binds every parameter first (one 422 naming each bad one), then the handler's rules (400)
  var includeDeleted = query.include_deleted, limit = query.limit, since = null, errors = [];
  if (limit !== undefined) {
    var number = integerText(limit);
    if (number === null) {
      errors.push({ message: "invalid integer", location: "query.limit", value: jsonString(limit) });
    } else if (+number < 1 || +number > 100) {
      errors.push({ message: "expected number " + (+number < 1 ? ">= 1" : "<= 100"), location: "query.limit",
                    value: number });
    }
  }
  if (includeDeleted !== undefined && !isOneOf(includeDeleted, CONFIG.trueValues.concat(CONFIG.falseValues))) {
    errors.push({ message: "invalid boolean", location: "query.include_deleted", value: jsonString(includeDeleted) });
  }
  if (errors.length) { return validationProblem(errors); }
  if (query.updated_since !== undefined) {
    since = parseRfc3339(query.updated_since);
    if (since === null) { return problem("bad-updated-since"); }
    if (isOneOf(includeDeleted, CONFIG.falseValues)) { return problem("updated-since-without-deleted"); }
  }
  return { status: 200, computed: {
    limit: limit !== undefined ? +limit : CONFIG.defaultSize, cursor: query.cursor || null,
    search: query.search || null, version: query.version || null, since: since,
    includeDeleted: isOneOf(includeDeleted, CONFIG.trueValues) || since !== null } };
}

function plan(rawQuery) {
  // What GET /v0.1/servers?rawQuery answers: a problem or a computed list.
  return computeList(parseQuery(rawQuery));
}

// -- every other path: serve's normalize and mirror/routes.py resolve ------------------

var BAD_TARGET = /[\u0000-\u0020\u007f]|%(?![0-9A-Fa-f]{2})/;  // what nginx, Go and serve refuse in a path

function decodePath(raw) {
  // serve's normalize: %XX decoded as UTF-8 (bytes that are not kept as U+DC80..U+DCFF, which
  // no name of the tree holds), so a name's %2F is its directory level, and `.`/`..`
  // resolved; null for a path serve refuses with a 400 (NUL, a bad escape, `..` above the root)
  if (BAD_TARGET.test(raw)) { return null; }
  var decoded = raw;
  if (raw.indexOf("%") >= 0) {
    var bytes = [];
    for (var p = 0; p < raw.length; p++) {
      if (raw.charAt(p) === "%") { bytes.push(parseInt(raw.slice(p + 1, p + 3), 16)); p += 2; }
      else { bytes.push(raw.charCodeAt(p)); }
    }
    decoded = utf8Decode(bytes, true);
  }
  if (decoded.indexOf("\u0000") >= 0) { return null; }
  var stack = [], segments = decoded.split("/");
  for (var i = 0; i < segments.length; i++) {
    var part = segments[i];
    if (part === "" || part === ".") { continue; }
    if (part === "..") {
      if (!stack.length) { return null; }
      stack.pop();
    } else {
      stack.push(part);
    }
  }
  return "/" + stack.join("/");
}

function problemFile(slug) { return CONFIG.problemDir + "/" + slug + ".json"; }

function resolvePath(path, query) {
  // routes.resolve for a host that computes: `path` is decoded and relative to the base,
  // `query` is parseQuery's. {list: true} for GET /v0.1/servers; else the tree files to
  // try in order (the first the deploy has answers with `status`), then `fallback` (a file
  // or null) with `fallbackStatus`.
  var parts = path.split("/").filter(function (part) { return part !== ""; });
  if (parts.length && parts[0] === CONFIG.apiAlias) { parts[0] = CONFIG.api; }  // one API under both prefixes
  if (parts.length && parts[0] === CONFIG.hostDir) {  // the host's own files are never served
    return { status: 200, files: [], fallback: CONFIG.notFoundPage, fallbackStatus: 404 };
  }
  if (!parts.length || parts[0] !== CONFIG.api) {
    var here = parts.join("/");
    return { status: 200, files: parts.length ? [here, here + "/index.html"] : [CONFIG.landingPage],
             fallback: CONFIG.notFoundPage, fallbackStatus: 404 };
  }
  if (parts.length === 2 && parts[1] === "servers") { return { list: true }; }
  var includeDeleted = query.include_deleted;
  if (includeDeleted !== undefined && !isOneOf(includeDeleted, CONFIG.trueValues.concat(CONFIG.falseValues))) {
    return { status: 422, files: [problemFile("bad-include-deleted")], fallback: null, fallbackStatus: 404 };
  }
  var directory = parts.join("/");
  var missing = parts.length > 2 && parts[1] === "servers" ? "server-not-found" : "endpoint-not-found";
  var files = isOneOf(includeDeleted, CONFIG.trueValues) ? [directory + "/" + CONFIG.deletedView] : [];
  files.push(directory + "/" + CONFIG.indexView);
  return { status: 200, files: files, fallback: problemFile(missing), fallbackStatus: 404 };
}

function contentType(rel) {
  // hosts.content_type: every file under the API prefix is JSON, its problems problem+json,
  // and Server Cards are their own type
  if (rel.indexOf(CONFIG.problemDir + "/") === 0) { return CONFIG.problemType; }
  if (rel.indexOf(CONFIG.api + "/") === 0) { return CONFIG.jsonType; }
  var card = "/" + CONFIG.cardFile;
  if (rel.indexOf(CONFIG.cardsDir + "/") === 0 && rel.slice(-card.length) === card) {
    return CONFIG.cardType;
  }
  var dot = rel.lastIndexOf(".");
  return (dot > rel.lastIndexOf("/") && CONFIG.types[rel.slice(dot)]) || "application/octet-stream";
}

// -- answers: the I/O is the caller's ---------------------------------------------------

var REPUBLISHING = { status: 503, body: '{"title":"Service Unavailable","status":503,' +
                     '"detail":"The tree is being republished: retry"}' };

function problemAnswer(step) { return { status: step.status, type: CONFIG.problemType, body: step.body }; }

function listAnswer(selection, items) {
  // null when a document is missing: a publish swapped the tree between the reads
  for (var i = 0; i < items.length; i++) {
    if (items[i] === null) { return problemAnswer(REPUBLISHING); }
  }
  return { status: 200, type: CONFIG.jsonType, body: listDocument(items, selection.nextCursor) };
}

function loadIndex(text) {
  if (text === null) { return null; }
  try { return parseIndex(text); } catch (e) { return null; }
}

function documents(index, selection) {
  return selection.rows.map(function (row) { return documentFile(index, row); });
}

function answerWith(rawQuery, read) {
  // `read(treePath)` returns the file's text or null. Returns {status, type, body}.
  var step = plan(rawQuery);
  if (step.body !== undefined) { return problemAnswer(step); }
  var index = loadIndex(read(CONFIG.rowsIndexFile));
  if (index === null) { return problemAnswer(REPUBLISHING); }
  var selection = select(index, step.computed);
  return listAnswer(selection, documents(index, selection).map(function (rel) { return rel === null ? null : read(rel); }));
}

function answerFetching(rawQuery, fetchText, fetchIndex) {
  // answerWith for hosts whose reads are asynchronous: `fetchText(treePath)` resolves to the
  // asset's text or null, `fetchIndex()` to the parsed rows index or null; a list's documents
  // are fetched all at once.
  var step = plan(rawQuery);
  if (step.body !== undefined) { return Promise.resolve(problemAnswer(step)); }
  return fetchIndex().then(function (index) {
    if (index === null) { return problemAnswer(REPUBLISHING); }
    var selection = select(index, step.computed);
    return Promise.all(documents(index, selection).map(function (rel) { return rel === null ? null : fetchText(rel); }))
      .then(function (items) { return listAnswer(selection, items); });
  });
}

{% if host == "njs" %}
// -- nginx (njs): js_content, reading the tree under $document_root ----------------------

function latin1(buffer) {
  var out = "";
  for (var i = 0; i < buffer.length; i++) { out += String.fromCharCode(buffer[i]); }
  return out;
}

function nginx(r) {
  var fs = require("fs");
  var root;
  try { root = fs.realpathSync(r.variables.document_root); } catch (e) { root = null; }  // one generation
  var raw = r.rawVariables.args;
  var answer = root === null ? problemAnswer(REPUBLISHING) : answerWith(raw ? latin1(raw) : "", function (rel) {
    try { return fs.readFileSync(root + "/" + rel, "utf8"); } catch (e) { return null; }
  });
  r.headersOut["Content-Type"] = answer.type || CONFIG.problemType;
  r.return(answer.status, answer.body);
}
{% endif %}

// -- fetch-style hosts: the Netlify Function, Cloudflare Pages' _worker.js ---------------

var indexCache = { etag: null, index: null };  // kept while the isolate lives, revalidated per request

function respond(status, type, body, extra) {
  var headers = Object.assign({}, CONFIG.headers, type ? { "Content-Type": type } : {}, extra || {});
  return new Response(body, { status: status, headers: headers });
}

function segment(text) {
  // a path segment as a client sends it: what a segment may hold literally (a version's "+")
  // stays, as netlify dev reads a file named with "+" only when it is sent so
  return encodeURIComponent(text).replace(/%(2B|3A|40|24|26|2C|3B|3D)/g, function (escape) {
    return decodeURIComponent(escape);
  });
}

function servedProblem(status, detail) {
  // serve's own problem body, for a path it refuses or a problem file the tree lacks
  var title = { 400: "Bad Request", 404: "Not Found" }[status];
  return { status: status, type: CONFIG.problemType,
           body: '{"title":' + jsonString(title) + ',"status":' + status + ',"detail":' + jsonString(detail) + "}" };
}

function edge(request, fetchAsset) {
  // `fetchAsset(url, headers)` resolves to the static asset's Response. Tree paths are asked
  // from the deploy's root, each segment percent-encoded as a client would send it.
  var url = new URL(request.url);
  if (request.method === "OPTIONS") {
    return Promise.resolve(respond(204, null, null, { "Access-Control-Max-Age": CONFIG.preflightMaxAge }));
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return Promise.resolve(respond(405, CONFIG.problemType,
      '{"title":"Method Not Allowed","status":405,"detail":"Read-only mirror: GET, HEAD and OPTIONS only"}'));
  }
  function asset(rel, headers) {
    // a path with bytes that are not UTF-8 (kept as U+DC80..U+DCFF) names no file of the tree
    if (/[\uDC80-\uDCFF]/.test(rel)) { return Promise.resolve(new Response(null, { status: 404 })); }
    var path = "/" + rel.split("/").map(segment).join("/");
    return fetchAsset(new URL(path, url).toString(), headers || {});
  }
  function fetchText(rel) {
    return asset(rel).then(function (response) { return response.status === 200 ? response.text() : null; });
  }
  function fetchIndex() {
    var cached = indexCache;
    return asset(CONFIG.rowsIndexFile, cached.etag ? { "If-None-Match": cached.etag } : {}).then(function (response) {
      if (response.status === 304 && cached.index !== null) { return cached.index; }
      if (response.status !== 200) { return null; }
      var etag = response.headers.get("ETag");
      return response.text().then(function (text) {
        var index = loadIndex(text);
        if (index !== null && etag) { indexCache = { etag: etag, index: index }; }
        return index;
      });
    });
  }
  function first(files, status) {
    // the first of `files` the deploy has, as {status, type, body}; null when it has none
    if (!files.length) { return Promise.resolve(null); }
    return asset(files[0]).then(function (response) {
      if (response.status !== 200) { return first(files.slice(1), status); }
      return response.arrayBuffer().then(function (body) {
        return { status: status, type: contentType(files[0]), body: body };
      });
    });
  }
  function answer() {
    var path = decodePath(url.pathname);
    if (path === null) { return Promise.resolve(servedProblem(400, "Bad request path")); }
    var prefix = CONFIG.prefix;
    if (prefix && path !== prefix && path.indexOf(prefix + "/") !== 0) {
      return Promise.resolve(servedProblem(404, "Endpoint not found"));
    }
    var raw = url.search.slice(1);
    var step = resolvePath(path.slice(prefix.length), parseQuery(raw));
    if (step.list) { return answerFetching(raw, fetchText, fetchIndex); }
    return first(step.files, step.status).then(function (found) {
      if (found !== null) { return found; }
      return first(step.fallback === null ? [] : [step.fallback], step.fallbackStatus).then(function (fallback) {
        return fallback || servedProblem(step.fallbackStatus, step.fallbackStatus === 404 ? "Not found" : "Bad request");
      });
    });
  }
  return answer().then(function (found) {
    return respond(found.status, found.type || CONFIG.problemType, request.method === "HEAD" ? null : found.body);
  });
}

{% if host == "netlify" %}
// A Netlify Function (v2): every API path is its own but the tree's files it reads from the
// deploy's root (excludedPath: every leaf file under /v0.1/, which a missing one then answers as
// a 404 without coming back here). A read that comes back all the same (marked) ends at once.
var ASSET_READ = "X-MCP-Mirror-Asset-Read";

export default async function (request) {
  if (request.headers.get(ASSET_READ)) { return new Response(null, { status: 404 }); }
  return edge(request, function (url, headers) {
    var marked = Object.assign({}, headers);
    marked[ASSET_READ] = "1";
    return fetch(url, { headers: marked });
  });
}

export const config = { path: {{ function_paths | tojson }}, excludedPath: {{ excluded_paths | tojson }} };
{% elif host == "cloudflare" %}
// Cloudflare Pages in advanced mode: _routes.json sends every API path here; the static
// assets (with _redirects and _headers) answer everything else, and env.ASSETS reads them.

export default {
  fetch: function (request, env) {
    return edge(request, function (url, headers) { return env.ASSETS.fetch(new Request(url, { headers: headers })); });
  }
};
{% else %}
export default { parseQuery: parseQuery, parseRfc3339: parseRfc3339, searchMatcher: searchMatcher,
                 compareText: compareText, parseIndex: parseIndex, select: select, plan: plan,
                 answerWith: answerWith, answerFetching: answerFetching, listDocument: listDocument,
                 decodePath: decodePath, resolvePath: resolvePath, contentType: contentType, segment: segment,
                 nginx: nginx, edge: edge, config: CONFIG };
{% endif %}
