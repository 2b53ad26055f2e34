/* Staff console: live updates by polling the pages' JSON endpoints, local times, confirmations
   and character counters. Patient and staff text is only ever set with textContent. */
(function () {
  "use strict";

  var INBOX_EVERY_MS = 5000;
  var CONVERSATION_EVERY_MS = 3000;
  var HIDDEN_EVERY_MS = 15000;

  // ---------------------------------------------------------------- small helpers

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function localTime(iso, withDate) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return iso;
    var options = withDate === false
      ? { hour: "2-digit", minute: "2-digit" }
      : { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
    return date.toLocaleString([], options);
  }

  function timeEl(iso) {
    var node = el("time", null, localTime(iso));
    node.dateTime = iso;
    node.title = iso;
    return node;
  }

  function localizeTimes(root) {
    var nodes = (root || document).querySelectorAll("time[datetime]:not([data-keep])");
    Array.prototype.forEach.call(nodes, function (node) {
      node.title = node.title || node.getAttribute("datetime");
      node.textContent = localTime(node.getAttribute("datetime"));
    });
  }

  function setLive(ok, text) {
    var status = document.getElementById("live-status");
    if (status) status.textContent = text;
    var dots = document.querySelectorAll(".live-dot");
    Array.prototype.forEach.call(dots, function (dot) { dot.classList.toggle("is-offline", !ok); });
  }

  function getJSON(url) {
    return fetch(url, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (response.status === 401) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          var here = window.location.pathname + window.location.search;
          var ended = body && body.ended ? "&ended=" + encodeURIComponent(body.ended) : "";
          window.location.assign("/login?next=" + encodeURIComponent(here) + ended);
          throw new Error("signed out");
        });
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  /* Calls task() every `every` ms (slower while the tab is hidden), never two at once. */
  function poll(task, every) {
    var timer = null;
    var busy = false;
    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(run, document.hidden ? HIDDEN_EVERY_MS : every);
    }
    function run() {
      if (busy) return;
      busy = true;
      task().then(function () {
        setLive(true, "Up to date at " + new Date().toLocaleTimeString());
      }, function (error) {
        if (String(error && error.message) !== "signed out") {
          setLive(false, "Connection lost, retrying…");
        }
      }).then(function () {
        busy = false;
        schedule();
      });
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) run();
    });
    schedule();
  }

  function staffName(person, me) {
    if (!person) return null;
    return person.display_name + (String(person.id) === me ? " (you)" : "");
  }

  // ---------------------------------------------------------------- inbox

  function inboxRow(item, show, me, known) {
    var resolved = show === "resolved";
    var row = el("tr", "row" + (item.urgency === "urgent" ? " row-urgent" : ""));
    row.dataset.id = String(item.id);
    if (known && !known[item.id]) row.classList.add("is-new");

    var urgency = el("td");
    urgency.dataset.label = "Urgency";
    urgency.appendChild(el("span", "badge badge-" + item.urgency, item.urgency === "urgent" ? "Urgent" : "Normal"));
    row.appendChild(urgency);

    var reason = el("td");
    reason.dataset.label = "Reason";
    var link = el("a", "row-link", item.reason_label);
    link.href = item.url;
    reason.appendChild(link);
    reason.appendChild(document.createTextNode(" "));
    reason.appendChild(el("span", "muted", "#" + item.id));
    if (item.new_patient_message) {
      reason.appendChild(document.createTextNode(" "));
      reason.appendChild(el("span", "tag tag-new", "New message"));
    } else if (item.status === "open" && !item.last_reply_at) {
      reason.appendChild(document.createTextNode(" "));
      reason.appendChild(el("span", "tag", "No reply yet"));
    }
    row.appendChild(reason);
    row.appendChild(previewCell(item));

    var rule = el("td", "mono", item.guard_rule || "—");
    rule.dataset.label = "Guard rule";
    row.appendChild(rule);

    var channel = el("td", null, item.channel_label);
    channel.dataset.label = "Channel";
    row.appendChild(channel);

    var language = el("td", null, item.language_label || "");
    language.dataset.label = "Language";
    row.appendChild(language);

    var waiting = el("td");
    waiting.dataset.label = resolved ? "Was open" : "Waiting";
    var since = el("time", null, item.waiting);
    since.dateTime = item.created_at;
    since.title = "Opened " + localTime(item.created_at);
    waiting.appendChild(since);
    row.appendChild(waiting);

    var who = resolved ? item.resolved_by : item.assigned_to;
    var assignee = el("td");
    assignee.dataset.label = resolved ? "Resolved by" : "Assignee";
    if (who) assignee.textContent = staffName(who, me);
    else assignee.appendChild(el("span", "muted", "Unassigned"));
    row.appendChild(assignee);
    return row;
  }

  /* The start of the latest patient message and how many arrived since the last staff reply
     (as inbox.html renders them). */
  function previewCell(item) {
    var cell = el("td", "preview-cell");
    cell.dataset.label = "Latest patient message";
    if (item.preview) {
      var text = el("p", "preview", item.preview);
      if (item.language_label) text.lang = item.language;
      cell.appendChild(text);
    }
    if (item.status === "open" && item.since_reply) {
      var count = el("p", "since-reply");
      count.dataset.sinceReply = String(item.since_reply);
      count.appendChild(el("span", "badge badge-waiting", item.since_reply));
      count.appendChild(document.createTextNode(" " + (item.since_reply === 1 ? "message" : "messages") + " " +
        (item.last_reply_at ? "since the last staff reply" : "with no staff reply yet")));
      cell.appendChild(count);
    }
    return cell;
  }

  function renderBanner(failing) {
    var banner = document.getElementById("notification-banner");
    var list = document.getElementById("notification-list");
    if (!banner || !list) return;
    list.replaceChildren();
    failing.slice(0, 5).forEach(function (item) {
      var line = el("li", null, item.notifier + " (" + item.event + ")");
      if (item.escalation_id) {
        line.appendChild(document.createTextNode(" for "));
        var link = el("a", null, "#" + item.escalation_id);
        link.href = "/escalations/" + encodeURIComponent(item.escalation_id);
        line.appendChild(link);
      }
      var text = ": " + item.attempts + " attempt(s)";
      if (item.last_error) text += ", last error: " + item.last_error;
      line.appendChild(document.createTextNode(text));
      list.appendChild(line);
    });
    if (failing.length > 5) list.appendChild(el("li", null, "and " + (failing.length - 5) + " more"));
    banner.hidden = failing.length === 0;
  }

  function startInbox(main) {
    var body = document.getElementById("inbox-rows");
    var empty = document.getElementById("inbox-empty");
    var me = document.body.dataset.userId || "";
    var known = {};
    Array.prototype.forEach.call(body.querySelectorAll("tr[data-id]"), function (row) {
      known[row.dataset.id] = true;
    });
    poll(function () {
      return getJSON(main.dataset.pollUrl).then(function (data) {
        var rows = data.rows.map(function (item) { return inboxRow(item, data.show, me, known); });
        body.replaceChildren.apply(body, rows);
        known = {};
        data.rows.forEach(function (item) { known[item.id] = true; });
        empty.hidden = data.rows.length > 0;
        var next = document.getElementById("inbox-next");
        if (next) {
          if (data.next) next.href = data.next;
          next.hidden = !data.next;
        }
        Object.keys(data.counts).forEach(function (key) {
          var badge = document.querySelector("[data-count='" + key + "']");
          if (badge) badge.textContent = String(data.counts[key]);
        });
        document.title = (data.counts.all ? "(" + data.counts.all + ") " : "") + "Inbox · Staff console";
        renderBanner(data.failing);
      });
    }, INBOX_EVERY_MS);
  }

  // ---------------------------------------------------------------- conversation

  function transcriptItem(entry, language) {
    var item = el("li", "msg msg-" + entry.sender + " is-new");
    item.dataset.id = String(entry.id);
    var meta = el("div", "msg-meta");
    meta.appendChild(el("span", "sender", entry.sender_label + (entry.staff_name ? " · " + entry.staff_name : "")));
    meta.appendChild(document.createTextNode(" "));
    meta.appendChild(timeEl(entry.at));
    item.appendChild(meta);
    var text = el("p", "msg-text", entry.text);
    if (language && entry.sender !== "staff") text.lang = language;  // as the page renders them
    item.appendChild(text);
    return item;
  }

  function replyItem(reply) {
    var item = el("li", "item reply reply-" + reply.status);
    item.appendChild(el("p", "item-text", reply.text));
    var meta = el("p", "item-meta");
    meta.appendChild(el("span", "badge badge-reply-" + reply.status, reply.status_label));
    meta.appendChild(document.createTextNode(" " + (reply.author ? reply.author.display_name : "Former staff") + " · "));
    meta.appendChild(timeEl(reply.created_at));
    item.appendChild(meta);
    if (reply.status === "failed") item.appendChild(el("p", "item-error", "Reason: " + (reply.error || "unknown")));
    return item;
  }

  function noteItem(note) {
    var item = el("li", "item note");
    item.appendChild(el("p", "item-text", note.text));
    var meta = el("p", "item-meta");
    meta.appendChild(document.createTextNode((note.author ? note.author.display_name : "Former staff") + " · "));
    meta.appendChild(timeEl(note.created_at));
    item.appendChild(meta);
    return item;
  }

  function replaceList(listId, emptyId, items, build) {
    var list = document.getElementById(listId);
    var empty = document.getElementById(emptyId);
    if (!list) return;
    list.replaceChildren.apply(list, items.map(build));
    if (empty) empty.hidden = items.length > 0;
  }

  /* An SMS patient may text STOP (or START) while the page is open: true, false or null (unknown). */
  function showOptOut(optedOut) {
    if (typeof optedOut !== "boolean") return;
    var notice = document.getElementById("sms-opt-out");
    if (notice) notice.hidden = !optedOut;
    var fact = document.getElementById("fact-sms");
    if (fact) {
      fact.replaceChildren(optedOut ? el("span", "badge badge-opted-out", "Opted out (STOP)") : document.createTextNode("Allowed"));
    }
  }

  function startConversation(main) {
    var lastId = parseInt(main.dataset.lastId || "0", 10) || 0;
    var status = main.dataset.status;
    var assignee = main.dataset.assignee || "";
    var me = document.body.dataset.userId || "";
    var transcript = document.getElementById("transcript");
    var emptyTranscript = document.getElementById("transcript-empty");
    var baseUrl = main.dataset.pollUrl;

    poll(function () {
      return getJSON(baseUrl + "?after=" + lastId).then(function (data) {
        data.transcript.forEach(function (entry) {
          if (entry.id <= lastId) return;
          transcript.appendChild(transcriptItem(entry, transcript.dataset.language));
          lastId = entry.id;
        });
        if (emptyTranscript && transcript.children.length) emptyTranscript.hidden = true;
        replaceList("reply-list", "reply-empty", data.replies, replyItem);
        replaceList("note-list", "note-empty", data.notes, noteItem);

        showOptOut(data.sms_opted_out);
        var escalation = data.escalation;
        var waiting = document.getElementById("fact-waiting");
        if (waiting) waiting.textContent = escalation.waiting;
        var who = document.getElementById("fact-assignee");
        if (who) who.textContent = staffName(escalation.assigned_to, me) || "Unassigned";
        var nowAssignee = escalation.assigned_to ? String(escalation.assigned_to.id) : "";
        if (escalation.status !== status || nowAssignee !== assignee) {
          var banner = document.getElementById("changed-banner");
          var text = document.getElementById("changed-text");
          if (text) {
            text.textContent = escalation.status === "resolved"
              ? "This conversation was resolved" + (escalation.resolved_by ? " by " + escalation.resolved_by.display_name : "") + "."
              : "The assignee changed to " + (staffName(escalation.assigned_to, me) || "nobody") + ".";
          }
          if (banner) banner.hidden = false;
        }
      });
    }, CONVERSATION_EVERY_MS);
  }

  // ---------------------------------------------------------------- saved replies

  /* The conversation page's saved replies: the chosen one (filled in by the server) goes into the
     reply box at the cursor, replacing any selection, for staff to edit before sending. */
  function setUpSavedReplies() {
    var picker = document.getElementById("saved-reply");
    var insert = document.getElementById("saved-reply-insert");
    if (!picker || !insert) return;
    var box = document.getElementById(picker.dataset.insertInto);
    if (!box) return;
    document.getElementById("saved-replies").hidden = false;
    insert.addEventListener("click", function () {
      var option = picker.options[picker.selectedIndex];
      if (!option || !option.value) { picker.focus(); return; }
      var text = option.dataset.text || "";
      var start = box.selectionStart, end = box.selectionEnd;
      if (typeof start !== "number" || !box.dataset.touched) start = end = box.value.length;  // not placed: append
      var before = box.value.slice(0, start), after = box.value.slice(end);
      var gap = before && !/\s$/.test(before) ? "\n\n" : "";
      box.value = before + gap + text + after;
      var caret = (before + gap + text).length;
      box.focus();
      box.setSelectionRange(caret, caret);
      box.dispatchEvent(new Event("input", { bubbles: true }));
      picker.selectedIndex = 0;
    });
    ["keyup", "mouseup", "select"].forEach(function (name) {
      box.addEventListener(name, function () { box.dataset.touched = "1"; });
    });
  }

  // ---------------------------------------------------------------- forms

  function setUpForms() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-counter-for]"), function (counter) {
      var field = document.getElementById(counter.dataset.counterFor);
      if (!field) return;
      var limit = parseInt(field.getAttribute("maxlength") || "0", 10);
      function update() {
        var left = limit - field.value.length;
        counter.textContent = left.toLocaleString() + " characters left";
      }
      field.addEventListener("input", update);
      update();
    });
    // One submission per form: a slow delivery must not send a reply twice.
    Array.prototype.forEach.call(document.querySelectorAll("form[method='post']"), function (form) {
      form.addEventListener("submit", function (event) {
        if (event.defaultPrevented) return;
        if (form.dataset.submitting) { event.preventDefault(); return; }
        form.dataset.submitting = "1";
        Array.prototype.forEach.call(form.querySelectorAll("button[type='submit']"), function (button) {
          button.setAttribute("aria-disabled", "true");
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    setUpForms();
    setUpSavedReplies();
    var main = document.getElementById("main");
    if (!main || !window.fetch) return;
    if (main.dataset.page === "inbox") startInbox(main);
    if (main.dataset.page === "conversation") startConversation(main);
  });
})();
