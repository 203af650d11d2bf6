"""The cost map's inline style sheet and script (bpflint/report/html.py).

The script only switches the shading between time and instructions and keeps the
choice in the page's address (#by=insns); a script error, or a fetch the page's
policy blocks, is written into the page (``#js-error``) so a headless browser's DOM
dump shows it.
"""

STYLE = """
:root { --hot: 214, 62, 40; --ink: #1d232b; --muted: #66707c; --line: #e3e6ea; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--ink); background: #fff; }
header { position: sticky; top: 0; z-index: 2; background: #f6f7f9; padding: 8px 16px;
         border-bottom: 1px solid var(--line); }
header h1 { font-size: 18px; margin: 0 0 4px; display: inline-block; margin-right: 24px; }
.switch { display: inline-block; }
.legend { margin: 4px 0 0; color: var(--muted); font-size: 12px; }
main { padding: 8px 16px 40px; }
.headline { font-weight: 600; }
.error, .finding.error, .verdict.fail { color: #b3261e; }
.verdict.warn, .finding.warning { color: #9a6700; }
.verdict.pass { color: #1a7f37; }
.note, .diag, .missing, .limits, small { color: var(--muted); }
table { border-collapse: collapse; }
table.summary td, table.summary th { padding: 3px 10px; text-align: left;
                                      border-bottom: 1px solid var(--line); }
table.summary .value { font-variant-numeric: tabular-nums; }
table.summary td { white-space: nowrap; }
.limits { font-size: 11px; }
svg.bar, svg.trend { vertical-align: middle; }
svg.trend polyline { fill: none; stroke: #3465a4; stroke-width: 1.5; }
svg.trend circle { fill: rgb(var(--hot)); }
svg.bar .track { fill: #eef0f3; }
svg.bar .fill { fill: rgb(var(--hot)); opacity: 0.75; }
svg.bar .over { fill: #b3261e; }
svg.bar .budget { fill: #1d232b; }
svg.bar .baseline { fill: #3465a4; }
section.program { margin-top: 28px; border-top: 2px solid var(--line); }
section.program h2 { font-size: 16px; margin: 12px 0 4px; }
h3.file { font-size: 13px; font-family: ui-monospace, monospace; margin: 12px 0 4px; }
table.src { width: 100%; font: 12px/1.35 ui-monospace, SFMono-Regular, Menlo, monospace; }
table.src th { text-align: left; color: var(--muted); font-weight: normal; white-space: nowrap;
               border-bottom: 1px solid var(--line); padding: 0 6px; }
table.src td { padding: 0 6px; vertical-align: top; white-space: pre; }
table.src td.n, table.src td.v { text-align: right; color: var(--muted); }
table.src td.notes { font-family: system-ui, sans-serif; }
table.src tr.fold td { color: var(--muted); background: #fafbfc; }
body.by-ns tr.l td.s { background: rgba(var(--hot), calc(var(--hn) * 0.55)); }
body.by-insns tr.l td.s { background: rgba(var(--hot), calc(var(--hi) * 0.55)); }
body.by-ns tr.pn td.n { box-shadow: inset 3px 0 0 rgb(var(--hot)); }
body.by-insns tr.pi td.n { box-shadow: inset 3px 0 0 #3465a4; }
.mark { display: inline-block; width: 14px; text-align: center; border-radius: 3px;
        color: #fff; font-size: 10px; font-weight: 700; }
.mark.pn { background: rgb(var(--hot)); }
.mark.pi { background: #3465a4; }
.mark.pw { background: #1a7f37; }
tr.miss td.n { color: #b3261e; font-weight: 700; }
.witness b { color: #1a7f37; }
.witness.none { color: var(--muted); }
.loop { color: #3465a4; margin-right: 8px; }
.call { color: #8250df; margin-right: 8px; }
table.src td.d { color: #b3261e; white-space: nowrap; }
.left { color: var(--muted); font-size: 12px; }
#js-error { background: #b3261e; color: #fff; padding: 8px 16px; }
"""

# In <head>, before anything can fail: a script error, or anything the page tries to
# fetch (the Content-Security-Policy blocks it), is written into the page.
HEAD_SCRIPT = """
(function () {
  "use strict";
  var problems = [];
  function show() {
    if (!document.body) { return; }
    var box = document.getElementById("js-error") || document.createElement("div");
    box.id = "js-error";
    box.textContent = problems.join("; ");
    document.body.insertBefore(box, document.body.firstChild);
  }
  function report(text) {
    problems.push(text);
    show();
  }
  window.onerror = function (message, source, line) {
    report("script error: " + message + " (line " + line + ")");
  };
  document.addEventListener("securitypolicyviolation", function (event) {
    report("blocked: " + event.blockedURI + " (" + event.violatedDirective + ")");
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (problems.length) { show(); }
  });
})();
"""

SCRIPT = """
(function () {
  "use strict";
  function show(by) {
    document.body.classList.toggle("by-ns", by === "ns");
    document.body.classList.toggle("by-insns", by === "insns");
    var radios = document.querySelectorAll("input[name=by]");
    for (var i = 0; i < radios.length; i++) { radios[i].checked = radios[i].value === by; }
  }
  var chosen = /by=(ns|insns)/.exec(window.location.hash);
  if (chosen) { show(chosen[1]); }
  var radios = document.querySelectorAll("input[name=by]");
  for (var i = 0; i < radios.length; i++) {
    radios[i].addEventListener("change", function (event) {
      show(event.target.value);
      history.replaceState(null, "", "#by=" + event.target.value);
    });
  }
  document.body.setAttribute("data-ready", String(document.querySelectorAll(
    "section.program").length));
})();
"""
