// managedvm portal: live updates over server-sent events. No build step.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Devices: refetch the rows (server-rendered, escaped) on each change.
  var table = document.getElementById("devices");
  if (table) {
    var pending = false;
    var refresh = function () {
      if (pending) return;
      pending = true;
      fetch(table.dataset.rows, {credentials: "same-origin"}).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text();
      }).then(function (html) {
        var tbody = document.getElementById("rows");
        var tmp = document.createElement("tbody");
        tmp.innerHTML = html; // markup from our own server, escaped by html/template
        tbody.replaceWith(tmp);
        tmp.id = "rows";
        document.getElementById("count").textContent = tmp.querySelectorAll("tr a").length + " devices";
      }).catch(function () {}).finally(function () { pending = false; });
    };
    new EventSource("/api/events").addEventListener("devices", refresh);
  }
  // An operation: append each step as it happens.
  var steps = document.getElementById("steps");
  if (steps) {
    var seen = steps.children.length, count = 0;
    var es = new EventSource(steps.dataset.events);
    es.addEventListener("step", function (m) {
      count++;
      if (count <= seen) return; // already rendered by the server
      var e = JSON.parse(m.data);
      var li = document.createElement("li");
      li.className = "ev-" + e.kind;
      li.textContent = e.line;
      steps.appendChild(li);
    });
    es.addEventListener("done", function (m) {
      es.close();
      var r = JSON.parse(m.data) || {};
      var out = document.getElementById("outcome");
      if (r.error) {
        out.className = "error";
        out.textContent = "Failed (" + r.code + ")" + (r.failed_step ? " at step " + r.failed_step + ", rolled back" : "") + ": " + r.error;
      } else {
        out.className = "ok";
        out.textContent = "Done: " + r.state + (r.public_ip ? ", public IP " + r.public_ip : "");
      }
    });
  }
});
