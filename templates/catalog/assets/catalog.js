// mcp-mirror catalog: instant search over assets/search.json and copy buttons.
// No inline script anywhere (the pages' CSP forbids it); results are built with
// textContent, never HTML, so no upstream byte becomes markup.
(function () {
  "use strict";
  var LIMIT = 50;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function search() {
    var input = document.getElementById("search");
    var results = document.getElementById("results");
    var count = document.getElementById("result-count");
    var listing = document.getElementById("listing");
    if (!input || !results || !count) return;
    var form = input.form;
    var index = null;
    var loading = null;

    function load() {
      if (!loading) {
        loading = fetch(input.getAttribute("data-index"), {credentials: "same-origin"})
          .then(function (response) {
            if (!response.ok) throw new Error("search index: HTTP " + response.status);
            return response.json();
          })
          .then(function (data) {
            var f = data.fields;
            index = data.servers.map(function (row) {
              var server = {};
              for (var i = 0; i < f.length; i++) server[f[i]] = row[i] || "";
              server.haystack = [server.name, server.title, server.description, server.packages]
                .join("\n").toLowerCase();
              return server;
            });
            return index;
          })
          .catch(function () { count.textContent = "Search is unavailable: the index did not load."; });
      }
      return loading;
    }

    function serverHref(name) {
      var root = input.getAttribute("data-root") || "./";
      return root + "servers/" + name.split("/").map(encodeURIComponent).join("/") + "/";
    }

    function render(query) {
      var terms = query.toLowerCase().split(/\s+/).filter(Boolean);
      results.textContent = "";
      if (!terms.length) {
        results.hidden = true;
        if (listing) listing.hidden = false;
        count.textContent = "";
        return;
      }
      var found = index.filter(function (server) {
        return terms.every(function (term) { return server.haystack.indexOf(term) !== -1; });
      });
      found.slice(0, LIMIT).forEach(function (server) {
        var item = el("li", "server");
        var heading = el("h3");
        var link = el("a", "", server.title || server.name);
        link.href = serverHref(server.name);
        heading.appendChild(link);
        item.appendChild(heading);
        if (server.title) item.appendChild(el("p", "name", server.name));
        var description = el("p", "description", server.description);
        description.dir = "auto";
        item.appendChild(description);
        var meta = el("p", "meta");
        meta.appendChild(el("span", "badge status-" + (server.status === "deprecated" ? "deprecated" : "active"),
                            server.status));
        server.transports.split(" ").filter(Boolean).forEach(function (t) {
          meta.appendChild(el("span", "badge transport", t));
        });
        item.appendChild(meta);
        results.appendChild(item);
      });
      results.hidden = false;
      if (listing) listing.hidden = true;
      count.textContent = found.length + (found.length === 1 ? " server matches" : " servers match") +
        (found.length > LIMIT ? " (showing the first " + LIMIT + ")" : "");
    }

    function update() {
      var query = input.value;
      load().then(function () { if (index && input.value === query) render(query); });
    }

    input.addEventListener("input", update);
    input.addEventListener("focus", load);
    input.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { input.value = ""; update(); }
      if (event.key === "ArrowDown" || (event.key === "Enter" && !results.hidden)) {
        var first = results.querySelector("a");
        if (first) { event.preventDefault(); first.focus(); }
      }
    });
    results.addEventListener("keydown", function (event) {
      var links = Array.prototype.slice.call(results.querySelectorAll("a"));
      var at = links.indexOf(document.activeElement);
      if (at === -1) return;
      if (event.key === "ArrowDown" && at + 1 < links.length) { event.preventDefault(); links[at + 1].focus(); }
      if (event.key === "ArrowUp") { event.preventDefault(); (at ? links[at - 1] : input).focus(); }
      if (event.key === "Escape") { event.preventDefault(); input.focus(); }
    });
    if (form) form.addEventListener("submit", function (event) { event.preventDefault(); update(); });
    document.addEventListener("keydown", function (event) {
      var target = event.target;
      if (event.key === "/" && target.tagName !== "INPUT" && target.tagName !== "TEXTAREA") {
        event.preventDefault();
        input.focus();
      }
    });
    var initial = new URLSearchParams(window.location.search).get("q");
    if (initial) { input.value = initial.slice(0, 200); update(); }
  }

  function copyButtons() {
    if (!navigator.clipboard) return;
    var snippets = document.querySelectorAll("pre.snippet");
    Array.prototype.forEach.call(snippets, function (pre) {
      var tools = el("p", "snippet-tools");
      var button = el("button", "copy", "Copy");
      button.type = "button";
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(pre.textContent).then(function () {
          button.textContent = "Copied";
          setTimeout(function () { button.textContent = "Copy"; }, 1500);
        }, function () { button.textContent = "Copy failed"; });
      });
      tools.appendChild(button);
      pre.parentNode.insertBefore(tools, pre.nextSibling);
    });
  }

  // The pages name the snapshot their data is from; the state document also knows the last
  // crawl, which may be newer when upstream did not change.
  function lastCrawl() {
    var target = document.getElementById("last-crawl");
    if (!target) return;
    fetch(target.getAttribute("data-state"), {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (state) {
        var crawl = state && state.snapshot;
        if (crawl && state.content && crawl.id !== state.content.id && typeof crawl.finishedAt === "string") {
          target.textContent = " Last checked " + crawl.finishedAt.slice(0, 200) + " (snapshot " + crawl.id +
            "): no change since.";
        }
      })
      .catch(function () {});
  }

  function ready() { search(); copyButtons(); lastCrawl(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
