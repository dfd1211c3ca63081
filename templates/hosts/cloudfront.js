// mcp-mirror {{ version }}: CloudFront Function (cloudfront-js-2.0, viewer request) that
// routes the v0.1 API for the tree uploaded to S3, under {{ prefix or "/" }}.
//
// Distribution settings this function relies on:
// - origin: the S3 bucket holding the tree (`aws s3 sync {{ root }} s3://BUCKET --exclude '.mcp-mirror/*'`;
//   .mcp-mirror/objects.json lists each key's Content-Type and Cache-Control for other upload tools);
// - cache policy: query strings none (this function folds them into the URI), so caching stays per page;
// - response headers policy: Access-Control-Allow-Origin *, Access-Control-Allow-Methods GET, HEAD, OPTIONS,
//   Access-Control-Allow-Headers Authorization, Content-Type, X-Content-Type-Options nosniff,
//   Cache-Control "{{ headers['Cache-Control'] }}" (origin override), and for the HTML catalog
//   Content-Security-Policy "{{ page_headers['Content-Security-Policy'] }}" (its pages carry it in a <meta> too);
// - custom error responses: 403 and 404 -> response page /v0.1/_problems/server-not-found.json, code 404
//   (S3 answers 403 for a missing key when the reader cannot list the bucket).
var PREFIX = "{{ prefix }}";
var TRUE = {{ true_values | tojson }};
var FALSE = {{ false_values | tojson }};
var PAGE_SIZE = {{ page_size_by_limit | tojson }};
var CHAINS = {{ chain_by_flags | tojson }};
var PROBLEMS = {
{% for slug, body in problems.items() %}
  "{{ slug }}": {{ body }}{{ "," if not loop.last }}
{% endfor %}
};
var CORS = {{ headers | tojson }};

function headers(extra) {
  var out = {};
  var all = Object.assign({}, CORS, extra || {});
  for (var name in all) { out[name.toLowerCase()] = { value: all[name] }; }
  return out;
}

function problem(slug) {
  var p = PROBLEMS[slug];
  return { statusCode: p.status, statusDescription: p.title,
           headers: headers({ "Content-Type": "application/problem+json" }),
           body: { encoding: "text", data: JSON.stringify(p) } };
}

// %XX decoded as UTF-8, a lone `%` kept; bytes that are not UTF-8 become `bad`. A path's
// become NUL, which no key holds (it has no %00 by then): their segment names nothing while
// the `..` around it still resolve, as serve keeps them as bytes of a name not found.
function unquote(text, bad) {
  return text.replace(/(%[0-9a-fA-F]{2})+/g, function (run) {
    try { return decodeURIComponent(run); } catch (e) { /* not UTF-8: escape by escape */ }
    return run.replace(/%[0-7][0-9a-fA-F]|(?:%[89a-fA-F][0-9a-fA-F])+/g, function (part) {
      try { return decodeURIComponent(part); } catch (e) { return bad; }
    });
  });
}

function badPath() {
  return { statusCode: 400, statusDescription: "Bad Request",
           headers: headers({ "Content-Type": "application/problem+json" }),
           body: { encoding: "text", data: '{"title":"Bad Request","status":400,"detail":"Bad request path"}' } };
}

// The first value of a parameter, names and values decoded as serve's parse_qsl does (`+` a
// space): CloudFront hands them over as sent, one entry per spelling, in the request's order.
function arg(request, name) {
  for (var raw in request.querystring) {
    if (unquote(raw.replace(/\+/g, " "), "\uFFFD") === name) {
      return unquote((request.querystring[raw].value || "").replace(/\+/g, " "), "\uFFFD");
    }
  }
  return "";
}

function key(path) {
  return path.split("/").map(encodeURIComponent).join("/");
}

function list(request) {
  var version = arg(request, "version"), deleted = arg(request, "include_deleted");
  var since = arg(request, "updated_since"), limit = arg(request, "limit"), cursor = arg(request, "cursor");
  if (arg(request, "search")) return problem("search-unsupported");
  if (version && version !== "latest") return problem("version-filter-unsupported");
  if (deleted && TRUE.indexOf(deleted) < 0 && FALSE.indexOf(deleted) < 0) return problem("bad-include-deleted");
  if (since) {
    if (!/^{{ rfc3339_re }}$/i.test(since)) return problem("bad-updated-since");
    if (FALSE.indexOf(deleted) >= 0) return problem("updated-since-without-deleted");
  }
  if (limit && !/^({{ limit_re }})$/.test(limit)) return problem("bad-limit");
  if (cursor && !/^({{ cursor_re }})$/.test(cursor)) return problem("bad-cursor");
  var withDeleted = TRUE.indexOf(deleted) >= 0 || since !== "";
  var chain = CHAINS[(version === "latest" ? "latest" : "") + ":" + (withDeleted ? "deleted" : "")];
  var token = cursor || (PAGE_SIZE[limit || "{{ default_size }}"] + "-0");
  request.uri = "/v0.1/servers/{{ pages }}/" + chain + "/" + token + ".json";
  request.querystring = {};
  return request;
}

function handler(event) {
  var request = event.request;
  if (request.method === "OPTIONS") {
    return { statusCode: 204, statusDescription: "No Content",
             headers: headers({ "Access-Control-Max-Age": "{{ preflight_max_age }}" }) };
  }
  // Decoded, empty and `.` segments dropped, `..` resolved, as serve does.
  if (/%(?![0-9a-fA-F]{2})|%00/.test(request.uri)) return badPath();
  var uri = unquote(request.uri, "\0");
  var segments = [], slash = uri.length > 1 && uri.slice(-1) === "/";
  var raw = uri.split("/");
  for (var i = 0; i < raw.length; i++) {
    if (raw[i] === "" || raw[i] === ".") continue;
    if (raw[i] !== "..") segments.push(raw[i]);
    else if (!segments.length) return badPath();
    else segments.pop();
  }
  uri = "/" + segments.join("/");
  if (PREFIX) {
    if (uri !== PREFIX && uri.indexOf(PREFIX + "/") !== 0) return problem("endpoint-not-found");
    uri = uri.slice(PREFIX.length) || "/";
  }
  if (slash && uri !== "/") uri += "/";
  uri = uri.replace(/^\/v0(\/|$)/, "/v0.1$1");  // upstream serves the same API under /v0
  if (/^\/v0\.1\/servers\/?$/.test(uri)) return list(request);
  if (uri === "/v0.1" || uri.indexOf("/v0.1/") === 0) {
    var deleted = arg(request, "include_deleted");
    if (deleted && TRUE.indexOf(deleted) < 0 && FALSE.indexOf(deleted) < 0) return problem("bad-include-deleted");
    var view = TRUE.indexOf(deleted) >= 0 ? "{{ deleted_view }}" : "{{ index_view }}";
    request.uri = key(uri.replace(/\/+$/, "") + "/" + view);
    request.querystring = {};
    return request;
  }
  request.uri = key(uri.slice(-1) === "/" ? uri + "index.html" : uri);
  return request;
}
