"""The HTML page of ``bump-global flamegraph`` (bump_global/_flamegraph.py fills it in).

One self-contained file: the style, the script and the data are inline, and a
Content-Security-Policy forbids every load, so the page opens offline and fetches
nothing.  ``{{TITLE}}`` and ``{{HEADER}}`` are HTML (escaped by the caller), ``{{DATA}}``
is JSON made inert inside a script element (``_flamegraph.embed_json``).

The data: ``strings`` (functions and files, each once) and ``nodes``, columns
``parent``, ``function``, ``file`` (indices into strings), ``line``, ``bytes``,
``allocations``, ``kind`` (0 code, 1 a marker such as ``[truncated]``, 2 a process,
3 the root of several processes), in preorder: a node's index is its id, the root is 0,
a parent comes before its children, which come heaviest first.

What the page does:

- An icicle graph: the root at the top, each frame as wide as its bytes, its callees
  below it.  A frame is a ``div.frame`` with ``data-id``, its ``left`` and ``width`` in
  percent of the graph; frames narrower than half a pixel are not drawn, and a frame's
  text (``function (file:line)``) is clipped to its width.  Colour by file (a hash of
  the file name, so the same file has the same colour in every page), grey for markers,
  blue-grey for processes.
- Hover: a tooltip and the detail line at the bottom give the name, file:line, the
  estimated bytes and allocations, the share of the total and of the zoomed frame.
- Click a frame: it becomes the full width (its ancestors stay above it, full width,
  faded); click an ancestor to zoom out to it, "Reset zoom" or Escape for the root.
- Search (the box, or ``/`` to focus it): frames whose name contains the text
  (case-insensitive) get the class ``match``, the others fade; ``#matched`` shows the
  matched bytes as a share of the total (a frame below a matched frame is not counted
  twice).
- The URL fragment ``#search=TEXT&zoom=ID`` (either part alone too, TEXT URL-encoded)
  sets both when the page opens or the fragment changes; searching and zooming write it
  back, so the address can be shared.
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
:root { --row: 18px; --ink: #1c232b; --muted: #5d6873; --line: #e1e5ea; --bg: #f7f8fa; }
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--ink); }
body { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
       Arial, sans-serif; padding-bottom: 34px; }
header { padding: 14px 20px 10px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 4px; font-size: 18px; font-weight: 600; }
.totals { margin: 0; font-size: 14px; }
.note { margin: 3px 0 0; font-size: 12px; color: var(--muted); }
.toolbar { position: sticky; top: 0; z-index: 3; display: flex; align-items: center;
           gap: 12px; padding: 8px 20px; background: var(--bg);
           border-bottom: 1px solid var(--line); }
#search { width: 340px; max-width: 45vw; padding: 5px 9px; font: inherit; color: inherit;
          border: 1px solid #c3cad3; border-radius: 5px; background: #fff; }
#search:focus { outline: 2px solid #7aa7e0; outline-offset: -1px; }
#matched { font-variant-numeric: tabular-nums; white-space: nowrap; }
#matched.hit { color: #9b1f86; font-weight: 600; }
#zoominfo { flex: 1; min-width: 0; color: var(--muted); white-space: nowrap;
            overflow: hidden; text-overflow: ellipsis; }
button { font: inherit; padding: 4px 12px; border: 1px solid #c3cad3; border-radius: 5px;
         background: #fff; color: inherit; cursor: pointer; }
button:hover:not(:disabled) { background: #eef2f6; }
button:disabled { opacity: .45; cursor: default; }
main { padding: 10px 20px 16px; }
#graph { position: relative; width: 100%; min-height: var(--row); }
.frame { position: absolute; box-sizing: border-box; height: calc(var(--row) - 1px);
         padding: 0;
         overflow: hidden; white-space: nowrap; text-overflow: ellipsis;
         font: 12px/17px ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono",
         monospace; color: #15191e; border-right: 1px solid var(--bg); border-radius: 2px;
         cursor: pointer; }
.frame.labelled { padding: 0 4px; }  /* a frame too narrow for text: no padding to widen it */
.frame:hover { box-shadow: inset 0 0 0 1px #15191e; }
.frame.ancestor { opacity: .6; }
#graph.searching .frame:not(.match) { opacity: .35; }
.frame.match { background: #d1459f !important; color: #fff; }
#tip { position: fixed; z-index: 10; display: none; max-width: 560px; pointer-events: none;
       padding: 8px 11px; border-radius: 6px; background: #1c232b; color: #eef1f4;
       font-size: 12px; box-shadow: 0 4px 14px rgba(0, 0, 0, .25); }
#tip b { display: block; font-size: 13px; word-break: break-all; }
#tip .where { color: #aab4bf; word-break: break-all; margin-bottom: 4px; }
#tip .hint { color: #8e99a5; margin-top: 4px; }
#detail { position: fixed; left: 0; right: 0; bottom: 0; z-index: 3; padding: 6px 20px;
          background: #fff; border-top: 1px solid var(--line); font-size: 12px;
          white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
noscript p { margin: 20px; }
</style>
</head>
<body>
<header>
<h1>{{TITLE}}</h1>
{{HEADER}}
<p class="note">All figures are estimates from sampling (one sample every so many bytes
allocated, on average): small sites may be missing and small figures are imprecise.</p>
</header>
<div class="toolbar">
<input id="search" type="search" placeholder="Search functions and files (press /)"
 autocomplete="off" spellcheck="false" aria-label="Search">
<span id="matched" aria-live="polite"></span>
<span id="zoominfo"></span>
<button id="reset" type="button" disabled title="Zoom out to the root (Escape)">Reset
zoom</button>
</div>
<main>
<noscript><p>This flame graph needs JavaScript.</p></noscript>
<div id="graph" role="img" aria-label="Flame graph of allocations"></div>
</main>
<div id="detail"></div>
<div id="tip"></div>
<script type="application/json" id="flame-data">{{DATA}}</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("flame-data").textContent);
  var S = data.strings, N = data.nodes;
  var count = N.parent.length, parent = N.parent, bytes = N.bytes, kind = N.kind;
  var ROW = 18, TEXT_MIN_PX = 28;
  var graph = document.getElementById("graph"), input = document.getElementById("search");
  var matchedBox = document.getElementById("matched"), reset = document.getElementById("reset");
  var zoomInfo = document.getElementById("zoominfo"), detail = document.getElementById("detail");
  var tip = document.getElementById("tip");
  var names = new Array(count), depth = new Array(count), children = [];
  for (var i = 0; i < count; i++) {
    var file = S[N.short[i]];
    names[i] = file ? S[N.function[i]] + " (" + file + ":" + N.line[i] + ")"
                    : S[N.function[i]];
    children.push([]);
    depth[i] = i === 0 ? 0 : depth[parent[i]] + 1;
    if (i > 0) children[parent[i]].push(i);
  }
  var total = bytes[0] || 1;
  var zoomed = 0, query = "", matched = null;
  var DEFAULT_DETAIL = "Hover over a frame for its figures; click it to zoom in; " +
    "type in the search box (or press /) to highlight frames.";

  function size(n) {
    if (n < 1024) return Math.round(n) + " B";
    var units = ["KiB", "MiB", "GiB", "TiB"], k = -1;
    do { n /= 1024; k++; } while (n >= 1024 && k < units.length - 1);
    return n.toFixed(1) + " " + units[k];
  }
  function whole(n) {
    return String(Math.round(n)).replace(/\\B(?=(\\d{3})+(?!\\d))/g, ",");
  }
  function percent(part, of) {
    return (of > 0 ? 100 * part / of : 0).toFixed(1) + "%";
  }

  var colours = {};
  function colour(i) {
    if (kind[i] === 3) return "#cfd6df";
    if (kind[i] === 2) return "#b3c4da";
    if (kind[i] === 1) return "#c9cccf";
    var key = N.file[i];
    if (!(key in colours)) {
      var h = 2166136261, text = S[key];
      for (var k = 0; k < text.length; k++) {
        h ^= text.charCodeAt(k);
        h = Math.imul(h, 16777619);
      }
      h >>>= 0;
      colours[key] = "hsl(" + (h % 360) + "," + (52 + (h >>> 9) % 22) + "%," +
        (70 + (h >>> 17) % 11) + "%)";
    }
    return colours[key];
  }

  function box(into, i, x, w, px, extra) {
    var el = document.createElement("div");
    el.className = "frame" + extra + (matched && matched[i] ? " match" : "");
    el.setAttribute("data-id", i);
    el.style.left = (100 * x).toFixed(4) + "%";
    el.style.width = (100 * w).toFixed(4) + "%";
    el.style.top = depth[i] * ROW + "px";
    el.style.background = colour(i);
    if (w * px >= TEXT_MIN_PX) {
      el.textContent = names[i];
      el.className += " labelled";
    }
    into.appendChild(el);
  }

  function render() {
    var px = graph.clientWidth || 1000, into = document.createDocumentFragment();
    var deepest = depth[zoomed];
    for (var a = parent[zoomed]; a >= 0; a = parent[a]) box(into, a, 0, 1, px, " ancestor");
    var pending = [[zoomed, 0, 1]];
    while (pending.length) {
      var item = pending.pop(), node = item[0], x = item[1], w = item[2];
      box(into, node, x, w, px, "");
      if (depth[node] > deepest) deepest = depth[node];
      var kids = children[node], at = x;
      for (var k = 0; k < kids.length; k++) {
        var cw = bytes[node] > 0 ? w * bytes[kids[k]] / bytes[node] : 0;
        if (cw * px >= 0.5) pending.push([kids[k], at, cw]);
        at += cw;
      }
    }
    graph.textContent = "";
    graph.appendChild(into);
    graph.style.height = (deepest + 1) * ROW + "px";
    graph.classList.toggle("searching", matched !== null);
    reset.disabled = zoomed === 0;
    zoomInfo.textContent = zoomed === 0 ? "" : "Zoomed to " + names[zoomed] + ": " +
      size(bytes[zoomed]) + ", " + percent(bytes[zoomed], total) + " of all";
  }

  function search(text) {
    query = text;
    if (!text) {
      matched = null;
      matchedBox.textContent = "";
      matchedBox.className = "";
      return;
    }
    var needle = text.toLowerCase(), inherited = new Uint8Array(count), sum = 0, hits = 0;
    matched = new Uint8Array(count);
    for (var i = 0; i < count; i++) {
      var p = parent[i];
      inherited[i] = p >= 0 && (inherited[p] || matched[p]) ? 1 : 0;
      if (kind[i] !== 3 && names[i].toLowerCase().indexOf(needle) >= 0) {
        matched[i] = 1;
        hits++;
        if (!inherited[i]) sum += bytes[i];
      }
    }
    matchedBox.textContent = hits ? "Matched: " + percent(sum, total) + " (" + size(sum) +
      ") in " + whole(hits) + (hits === 1 ? " frame" : " frames") : "No match";
    matchedBox.className = hits ? "hit" : "";
  }

  function writeHash() {
    var parts = [];
    if (query) parts.push("search=" + encodeURIComponent(query));
    if (zoomed) parts.push("zoom=" + zoomed);
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (hash === location.hash || (!hash && !location.hash)) return;
    try {
      history.replaceState(null, "", hash || location.pathname + location.search);
    } catch (e) { /* an address that cannot be rewritten: keep the old one */ }
  }

  function readHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    var z = parseInt(params.get("zoom") || "0", 10);
    zoomed = z >= 0 && z < count ? z : 0;
    input.value = params.get("search") || "";
    search(input.value);
    render();
  }

  function zoom(i) {
    zoomed = i;
    render();
    writeHash();
  }

  function describe(i) {
    var self = bytes[i];
    for (var k = 0; k < children[i].length; k++) self -= bytes[children[i][k]];
    return {
      bytes: size(bytes[i]) + " (" + percent(bytes[i], total) + " of all" +
        (zoomed !== 0 && zoomed !== i && depth[i] > depth[zoomed]
          ? ", " + percent(bytes[i], bytes[zoomed]) + " of the zoomed frame" : "") + ")",
      self: size(Math.max(self, 0)),
      allocations: whole(N.allocations[i])
    };
  }

  function line(into, text, cls) {
    var el = document.createElement(cls === "b" ? "b" : "div");
    if (cls && cls !== "b") el.className = cls;
    el.textContent = text;
    into.appendChild(el);
  }

  function show(i, cx, cy) {
    var d = describe(i), file = S[N.file[i]];
    tip.textContent = "";
    line(tip, S[N.function[i]], "b");
    if (file) line(tip, file + ":" + N.line[i], "where");
    line(tip, "Bytes (estimated): " + d.bytes);
    line(tip, "Self (in no callee): " + d.self);
    line(tip, "Allocations (estimated): " + d.allocations);
    line(tip, i === zoomed ? "Click an ancestor to zoom out" : "Click to zoom in (#zoom=" +
      i + ")", "hint");
    tip.style.display = "block";
    var w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.max(4, cx + 14 + w > innerWidth ? cx - w - 14 : cx + 14) + "px";
    tip.style.top = Math.max(4, cy + 16 + h > innerHeight ? cy - h - 12 : cy + 16) + "px";
    detail.textContent = names[i] + " \\u2014 " + d.bytes + ", " + d.allocations +
      " allocations";
  }

  function hide() {
    tip.style.display = "none";
    detail.textContent = DEFAULT_DETAIL;
  }

  graph.addEventListener("click", function (event) {
    var el = event.target.closest(".frame");
    if (el) zoom(+el.getAttribute("data-id"));
  });
  graph.addEventListener("mousemove", function (event) {
    var el = event.target.closest(".frame");
    if (el) show(+el.getAttribute("data-id"), event.clientX, event.clientY);
    else hide();
  });
  graph.addEventListener("mouseleave", hide);
  reset.addEventListener("click", function () { zoom(0); });
  input.addEventListener("input", function () {
    search(input.value);
    render();
    writeHash();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && document.activeElement !== input) {
      event.preventDefault();
      input.focus();
      input.select();
    } else if (event.key === "Escape") {
      if (document.activeElement === input && input.value) {
        input.value = "";
        search("");
        render();
        writeHash();
      } else {
        zoom(0);
      }
    }
  });
  window.addEventListener("hashchange", readHash);
  var pendingResize = false;
  window.addEventListener("resize", function () {
    if (pendingResize) return;
    pendingResize = true;
    requestAnimationFrame(function () { pendingResize = false; render(); });
  });
  hide();
  readHash();
})();
</script>
</body>
</html>
"""
