/*
 * The clinic's website chat widget. Embed it with one script tag:
 *
 *   <script src="https://chat.example-clinic.org/widget/clinic-chat.js" defer
 *           data-server-url="https://assistant.example-clinic.org"
 *           data-clinic-name="Sample Ketamine Clinic"
 *           data-color="#0b5e55"></script>
 *
 * data-server-url  the Rasa server (socket.io channel); default: the page's host on port 5005
 * data-clinic-name shown in the header (default "our clinic")
 * data-color       the accent colour, #rgb or #rrggbb (text on it is black or white, whichever
 *                  contrasts more)
 * data-history-url where a reloaded page fetches the conversation so far (default: /api/history
 *                  next to this script)
 *
 * Everything it loads comes from the server that served this file (its stylesheet and the
 * socket.io client from npm): no CDN, font or tracker. The conversation id is a 256-bit random
 * value kept in this browser's localStorage; it is the only key to the conversation's history.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__clinicChatLoaded) {
    return;
  }
  window.__clinicChatLoaded = true;

  var base = new URL(".", script.src);
  var data = script.dataset;
  var config = {
    serverUrl: (data.serverUrl || location.protocol + "//" + location.hostname + ":5005").replace(/\/+$/, ""),
    clinicName: data.clinicName || "our clinic",
    color: /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(data.color || "") ? data.color : "#0b5e55",
    historyUrl: data.historyUrl || new URL("../api/history", base).href
  };
  var STORE_KEY = "clinic-chat:" + config.serverUrl;
  var TYPING_TIMEOUT_MS = 15000;
  var MESSAGE_PAUSE_MS = 3000;

  // ------------------------------------------------------------------ storage

  var memoryStore = {};
  function loadState() {
    try {
      return JSON.parse(window.localStorage.getItem(STORE_KEY) || "{}") || {};
    } catch (e) {
      return memoryStore;
    }
  }
  function saveState(state) {
    memoryStore = state;
    try {
      window.localStorage.setItem(STORE_KEY, JSON.stringify(state));
    } catch (e) {
      /* private mode: the conversation lasts as long as the page */
    }
  }
  function update(changes) {
    var state = loadState();
    Object.keys(changes).forEach(function (key) {
      state[key] = changes[key];
    });
    saveState(state);
    return state;
  }
  function newSessionId() {
    var bytes = new Uint8Array(32);
    window.crypto.getRandomValues(bytes);
    var text = "";
    bytes.forEach(function (b) {
      text += String.fromCharCode(b);
    });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // ------------------------------------------------------------------ colour (WCAG contrast)

  function luminance(hex) {
    var h = hex.replace("#", "");
    if (h.length === 3) {
      h = h[0] + h[0] + h[1] + h[1] + h[2] + h[2];
    }
    var rgb = [0, 2, 4].map(function (i) {
      var c = parseInt(h.substr(i, 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
  }
  function contrast(a, b) {
    var la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") {
        node.textContent = attrs[key];
      } else if (key === "hidden") {
        node.hidden = !!attrs[key];
      } else {
        node.setAttribute(key, attrs[key]);
      }
    });
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    return node;
  }
  function srOnly(text) {
    return el("span", { "class": "cc-sr", text: text });
  }

  // URLs and bare web addresses (988lifeline.org) become links; everything else stays text.
  var LINK = /(https?:\/\/[^\s<>"]+[^\s<>".,;:!?)'\]])|\b((?:[a-z0-9-]+\.)+(?:org|com|net|gov|edu|us|example)(?:\/[^\s<>"]*[^\s<>".,;:!?)'\]])?)(?![\w@])/gi;
  function richText(text) {
    var fragment = document.createDocumentFragment();
    var last = 0;
    text.replace(LINK, function (match, full, bare, offset) {
      var before = text.slice(Math.max(0, offset - 1), offset);
      if (before === "@") {
        return match; // part of an e-mail address
      }
      fragment.appendChild(document.createTextNode(text.slice(last, offset)));
      var href = full || "https://" + bare;
      fragment.appendChild(el("a", { href: href, target: "_blank", rel: "noopener noreferrer", text: match }));
      last = offset + match.length;
      return match;
    });
    fragment.appendChild(document.createTextNode(text.slice(last)));
    return fragment;
  }

  // ------------------------------------------------------------------ the widget

  var ids = {
    panel: "clinic-chat-panel",
    title: "clinic-chat-title",
    status: "clinic-chat-status",
    input: "clinic-chat-input",
    log: "clinic-chat-log",
    notice: "clinic-chat-notice"
  };

  var launcher = el("button", {
    "class": "cc-launcher", type: "button", "aria-expanded": "false", "aria-controls": ids.panel,
    text: "Chat with us"
  });
  var closeButton = el("button", { "class": "cc-close", type: "button", "aria-label": "Close chat" }, [
    el("span", { "aria-hidden": "true", text: "\u00d7" })
  ]);
  var statusLine = el("p", { "class": "cc-status", id: ids.status, role: "status", text: "Virtual assistant" });
  var header = el("div", { "class": "cc-header" }, [
    el("div", { "class": "cc-heading" }, [
      el("h2", { "class": "cc-title", id: ids.title, text: config.clinicName }),
      statusLine
    ]),
    closeButton
  ]);
  var handoffBanner = el("p", { "class": "cc-handoff", hidden: true,
    text: "You're connected with our clinic team. A staff member will answer here; the assistant is paused. " +
          "In an emergency, call 911." });
  var startButton = el("button", { "class": "cc-start", type: "button", text: "Start chat" });
  var notice = el("div", { "class": "cc-notice", id: ids.notice, role: "group", "aria-labelledby": "clinic-chat-notice-title" }, [
    el("h3", { id: "clinic-chat-notice-title", text: "Before you start" }),
    el("p", { text: "This chat answers general questions about ketamine treatment and " + config.clinicName +
      ". It is not for emergencies: in a crisis, call or text 988; in an emergency, call 911." }),
    el("p", { text: "Your messages are stored by the clinic, and our staff may read them to help you. " +
      "Please share only the personal health details you need to." }),
    startButton
  ]);
  var log = el("div", {
    "class": "cc-log", id: ids.log, role: "log", "aria-live": "polite", "aria-relevant": "additions",
    "aria-label": "Conversation", tabindex: "0"
  });
  var typing = el("div", { "class": "cc-typing", hidden: true, "aria-hidden": "true" }, [
    el("span", { "class": "cc-dots" }, [el("span"), el("span"), el("span")]),
    el("span", { text: "Typing\u2026" })
  ]);
  var input = el("textarea", {
    id: ids.input, "class": "cc-input", rows: "1", maxlength: "1000", autocomplete: "off",
    placeholder: "Type your question", "aria-describedby": "clinic-chat-hint"
  });
  var sendButton = el("button", { "class": "cc-send", type: "submit", text: "Send" });
  var connection = el("p", { "class": "cc-connection", role: "status", id: "clinic-chat-hint", text: "" });
  var form = el("form", { "class": "cc-form", hidden: true }, [
    el("label", { "for": ids.input, "class": "cc-sr", text: "Your message" }),
    input,
    sendButton
  ]);
  var panel = el("section", {
    "class": "cc-panel", id: ids.panel, "aria-labelledby": ids.title, "data-turn": "done", hidden: true
  }, [header, handoffBanner, notice, log, typing, form, connection]);
  var root = el("div", { "class": "cc-root" }, [panel, launcher]);

  var onAccent = contrast(config.color, "#ffffff") >= contrast(config.color, "#000000") ? "#ffffff" : "#000000";
  root.style.setProperty("--cc-accent", config.color);
  root.style.setProperty("--cc-on-accent", onAccent);
  root.style.setProperty("--cc-accent-text", contrast(config.color, "#ffffff") >= 4.5 ? config.color : "#1f2328");

  // ------------------------------------------------------------------ conversation view

  var quickReplies = null;
  var typingTimer = null;
  var historyLoaded = false;
  var historyPending = false;
  var buffered = [];

  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }
  // While the assistant works on a message (data-turn="pending" on the panel), the typing
  // indicator shows, also between the several messages of one answer; the turn ends with the
  // server's clinic_state event (or, failing that, after a pause in messages).
  function showTyping(on, timeout) {
    typing.hidden = !on;
    clearTimeout(typingTimer);
    if (on) {
      typingTimer = setTimeout(endTurn, timeout || TYPING_TIMEOUT_MS);
    }
  }
  function startTurn() {
    panel.setAttribute("data-turn", "pending");
    showTyping(true);
  }
  function endTurn() {
    panel.setAttribute("data-turn", "done");
    showTyping(false);
  }
  function removeQuickReplies() {
    if (quickReplies && quickReplies.parentNode) {
      quickReplies.parentNode.removeChild(quickReplies);
    }
    quickReplies = null;
  }
  function payloadTitle(text) {
    if (text.charAt(0) !== "/") {
      return text;
    }
    var titles = loadState().titles || {};
    return titles[text] || text.slice(1).replace(/\{.*$/, "").replace(/_/g, " ");
  }
  function addMessage(kind, text, container) {
    var label = { patient: "You said: ", bot: "Assistant: ", staff: "Clinic team: " }[kind];
    var bubble = el("div", { "class": "cc-msg cc-" + kind });
    if (kind === "staff") {
      bubble.appendChild(el("span", { "class": "cc-label", "aria-hidden": "true", text: "Clinic team" }));
    }
    bubble.appendChild(srOnly(label));
    var body = el("span", { "class": "cc-text" });
    body.appendChild(kind === "patient" ? document.createTextNode(text) : richText(text));
    bubble.appendChild(body);
    (container || log).appendChild(bubble);
    scrollToEnd();
    return bubble;
  }
  function addQuickReplies(replies) {
    removeQuickReplies();
    var group = el("div", { "class": "cc-quick", role: "group", "aria-label": "Suggested replies" });
    replies.forEach(function (reply) {
      var button = el("button", { type: "button", "class": "cc-quick-reply", text: reply.title });
      button.addEventListener("click", function () {
        var titles = loadState().titles || {};
        titles[reply.payload] = reply.title;
        update({ titles: titles });
        send(reply.payload, reply.title);
      });
      group.appendChild(button);
    });
    log.appendChild(group);
    quickReplies = group;
    scrollToEnd();
  }
  function receive(message) {
    if (!historyLoaded) {
      buffered.push(message);
      return;
    }
    if (panel.getAttribute("data-turn") === "pending") {
      showTyping(true, MESSAGE_PAUSE_MS);
    }
    if (message.text) {
      addMessage(message.clinic_team ? "staff" : "bot", message.text);
    }
    var replies = message.quick_replies || message.buttons;
    if (replies && replies.length) {
      addQuickReplies(replies);
    }
  }
  function setHandoff(on) {
    handoffBanner.hidden = !on;
    panel.classList.toggle("cc-with-staff", !!on);
    var text = on ? "With our clinic team" : "Virtual assistant";
    if (statusLine.textContent !== text) {
      statusLine.textContent = text;
    }
  }

  // ------------------------------------------------------------------ history (after a reload)

  function loadHistory(sessionId) {
    if (historyLoaded || historyPending) {
      return;
    }
    historyPending = true;
    log.setAttribute("aria-busy", "true");
    fetch(config.historyUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session_id: sessionId }),
      credentials: "omit",
      cache: "no-store"
    }).then(function (response) {
      return response.ok ? response.json() : { entries: [] };
    }).catch(function () {
      return { entries: [] };
    }).then(function (body) {
      var entries = body.entries || [];
      var earlier = document.createDocumentFragment();
      entries.forEach(function (entry) {
        addMessage(entry.from, entry.from === "patient" ? payloadTitle(entry.text) : entry.text, earlier);
      });
      log.insertBefore(earlier, log.firstChild); // before anything typed while it loaded
      scrollToEnd();
      historyLoaded = true;
      historyPending = false;
      log.setAttribute("aria-busy", "false");
      var tail = entries.slice(-buffered.length).map(function (e) { return e.text; });
      var pending = buffered;
      buffered = [];
      pending.forEach(function (message) {
        if (tail.indexOf(message.text) === -1) {
          receive(message);
        }
      });
    });
  }

  // ------------------------------------------------------------------ socket.io

  var socket = null;
  var confirmedSession = null;

  function loadSocketIo(callback) {
    if (window.io) {
      callback();
      return;
    }
    var tag = el("script", { src: new URL("vendor/socket.io.min.js", base).href });
    tag.addEventListener("load", callback);
    tag.addEventListener("error", function () {
      connection.textContent = "The chat could not load. Please call us instead.";
    });
    document.head.appendChild(tag);
  }
  function connect() {
    if (socket) {
      return;
    }
    var state = loadState();
    if (!state.sessionId) {
      state = update({ sessionId: newSessionId() });
    }
    if (!state.hadMessages) {
      historyLoaded = true; // nothing was said in this session yet: no history to fetch
    }
    loadSocketIo(function () {
      socket = window.io(config.serverUrl, { path: "/socket.io" });
      socket.on("connect", function () {
        confirmedSession = null;
        socket.emit("session_request", { session_id: loadState().sessionId });
      });
      socket.on("session_confirm", function (sessionId) {
        var id = typeof sessionId === "string" ? sessionId : (sessionId || {}).session_id;
        if (id && id !== loadState().sessionId) {
          update({ sessionId: id, hadMessages: false });
        }
        confirmedSession = id;
        connection.textContent = "";
        if (!historyLoaded) {
          loadHistory(id);
        }
        flushOutbox();
      });
      socket.on("bot_uttered", receive);
      socket.on("clinic_state", function (stateEvent) {
        setHandoff(!!(stateEvent && stateEvent.handoff));
        if (stateEvent && stateEvent.after === "turn" && !outbox.length) {
          endTurn();
        }
      });
      socket.on("disconnect", function () {
        confirmedSession = null;
        connection.textContent = "Connection lost. Reconnecting\u2026";
      });
      socket.on("connect_error", function () {
        connection.textContent = "Can't reach the chat right now. Retrying\u2026 In an emergency, call 911.";
      });
    });
  }
  // Messages typed before the connection is ready (or while it is lost) wait here, marked
  // "Sending…", and go out once the session is confirmed.
  var outbox = [];
  function emitMessage(message) {
    socket.emit("user_uttered", { message: message, session_id: confirmedSession });
    startTurn();
  }
  function flushOutbox() {
    var waiting = outbox;
    outbox = [];
    waiting.forEach(function (item) {
      item.bubble.classList.remove("cc-pending");
      if (item.note.parentNode) {
        item.note.parentNode.removeChild(item.note);
      }
      emitMessage(item.message);
    });
  }
  function send(text, shownAs) {
    var message = (text || "").trim();
    if (!message) {
      return false;
    }
    removeQuickReplies();
    var bubble = addMessage("patient", shownAs || message);
    update({ hadMessages: true });
    if (socket && confirmedSession) {
      emitMessage(message);
    } else {
      var note = el("span", { "class": "cc-note", text: "Sending\u2026" });
      bubble.classList.add("cc-pending");
      bubble.appendChild(note);
      outbox.push({ message: message, bubble: bubble, note: note });
      startTurn();
      connect();
    }
    input.focus();
    return true;
  }

  // ------------------------------------------------------------------ open, close, consent

  function showConversation() {
    notice.hidden = true;
    form.hidden = false;
    log.hidden = false;
  }
  function open(focus) {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.hidden = window.matchMedia("(max-width: 480px)").matches;
    update({ open: true });
    var state = loadState();
    if (state.consented) {
      showConversation();
      connect();
      if (focus) {
        input.focus();
      }
    } else {
      notice.hidden = false;
      form.hidden = true;
      log.hidden = true;
      if (focus) {
        startButton.focus();
      }
    }
  }
  function close() {
    panel.hidden = true;
    launcher.hidden = false;
    launcher.setAttribute("aria-expanded", "false");
    update({ open: false });
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (panel.hidden) {
      open(true);
    } else {
      close();
    }
  });
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  startButton.addEventListener("click", function () {
    update({ consented: true });
    showConversation();
    connect();
    input.focus();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (send(input.value)) {
      input.value = "";
    }
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (send(input.value)) {
        input.value = "";
      }
    }
  });

  function mount() {
    var stylesheet = el("link", { rel: "stylesheet", href: new URL("clinic-chat.css", base).href });
    document.head.appendChild(stylesheet);
    document.body.appendChild(root);
    if (loadState().open) {
      open(false);
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", mount);
  } else {
    mount();
  }
})();
