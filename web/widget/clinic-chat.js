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
 * data-language    "es" or "en" (default: the page's <html lang>); Spanish for "es" and "es-*",
 *                  English for anything else. The widget's texts follow it, also when the page
 *                  changes it later, and the assistant gets it with the conversation's first
 *                  message (and again whenever it changes) as the message's metadata, so a
 *                  message whose words do not tell the language is answered in the page's.
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
    clinicName: data.clinicName || "",
    color: /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(data.color || "") ? data.color : "#0b5e55",
    historyUrl: data.historyUrl || new URL("../api/history", base).href
  };
  var STORE_KEY = "clinic-chat:" + config.serverUrl;
  var TYPING_TIMEOUT_MS = 15000;
  var MESSAGE_PAUSE_MS = 3000;

  // ------------------------------------------------------------------ language

  // Every text the widget itself shows or announces, per language; {clinic} is the clinic's name.
  // The Spanish says "tú", as the assistant's Spanish answers do.
  var STRINGS = {
    en: {
      launcher: "Chat with us",
      close: "Close chat",
      title: "{clinic}",
      ourClinic: "our clinic",
      statusBot: "Virtual assistant",
      statusStaff: "With our clinic team",
      handoff: "You're connected with our clinic team. A staff member will answer here; the assistant is paused. " +
        "In an emergency, call 911.",
      noticeTitle: "Before you start",
      noticeScope: "This chat answers general questions about ketamine treatment and {clinic}. It is not for " +
        "emergencies: in a crisis, call or text 988; in an emergency, call 911.",
      noticePrivacy: "Your messages are stored by the clinic, and our staff may read them to help you. " +
        "Please share only the personal health details you need to.",
      start: "Start chat",
      conversation: "Conversation",
      typing: "Typing\u2026",
      placeholder: "Type your question",
      messageLabel: "Your message",
      send: "Send",
      saidPatient: "You said: ",
      saidBot: "Assistant: ",
      saidStaff: "Clinic team: ",
      staffLabel: "Clinic team",
      suggested: "Suggested replies",
      sending: "Sending\u2026",
      loadFailed: "The chat could not load. Please call us instead.",
      reconnecting: "Connection lost. Reconnecting\u2026",
      unreachable: "Can't reach the chat right now. Retrying\u2026 In an emergency, call 911."
    },
    es: {
      launcher: "Chatea con nosotros",
      close: "Cerrar el chat",
      title: "{clinic}",
      ourClinic: "nuestra cl\u00ednica",
      statusBot: "Asistente virtual",
      statusStaff: "Con el equipo de la cl\u00ednica",
      handoff: "Est\u00e1s en contacto con el equipo de la cl\u00ednica. Una persona del equipo te responder\u00e1 " +
        "aqu\u00ed; el asistente est\u00e1 en pausa. En una emergencia, llama al 911.",
      noticeTitle: "Antes de empezar",
      noticeScope: "Este chat responde preguntas generales sobre el tratamiento con ketamina y sobre {clinic}. " +
        "No es para emergencias: si est\u00e1s en crisis, llama o escribe al 988 (marca 2 para espa\u00f1ol); " +
        "en una emergencia, llama al 911.",
      noticePrivacy: "La cl\u00ednica guarda tus mensajes, y nuestro personal puede leerlos para ayudarte. " +
        "Comparte solo los datos de salud personales que sean necesarios.",
      start: "Empezar el chat",
      conversation: "Conversaci\u00f3n",
      typing: "Escribiendo\u2026",
      placeholder: "Escribe tu pregunta",
      messageLabel: "Tu mensaje",
      send: "Enviar",
      saidPatient: "T\u00fa dijiste: ",
      saidBot: "Asistente: ",
      saidStaff: "Equipo de la cl\u00ednica: ",
      staffLabel: "Equipo de la cl\u00ednica",
      suggested: "Respuestas sugeridas",
      sending: "Enviando\u2026",
      loadFailed: "No se pudo cargar el chat. Por favor, ll\u00e1manos.",
      reconnecting: "Se perdi\u00f3 la conexi\u00f3n. Reconectando\u2026",
      unreachable: "No podemos conectar con el chat en este momento. Reintentando\u2026 En una emergencia, " +
        "llama al 911."
    }
  };

  // data-language on this script tag, else the page's <html lang>: "es", "es-MX"... are Spanish.
  function pageLanguage() {
    var declared = script.getAttribute("data-language") || document.documentElement.getAttribute("lang") || "";
    return /^es(?:[-_]|$)/i.test(declared.trim()) ? "es" : "en";
  }
  var language = pageLanguage();

  function t(key) {
    var clinic = config.clinicName || STRINGS[language].ourClinic;
    return STRINGS[language][key].replace("{clinic}", function () { return clinic; }); // "$&" in a name stays text
  }

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

  // A node's own texts are given by string key (`string`: its text, `label`: its aria-label,
  // `placeholder`), kept as data-cc-* attributes so that localize() can re-apply them.
  var LOCALIZED = { string: "data-cc-text", label: "data-cc-label", placeholder: "data-cc-placeholder" };
  function localizeNode(node) {
    var key = node.getAttribute(LOCALIZED.string);
    if (key) {
      node.textContent = t(key);
    }
    if ((key = node.getAttribute(LOCALIZED.label))) {
      node.setAttribute("aria-label", t(key));
    }
    if ((key = node.getAttribute(LOCALIZED.placeholder))) {
      node.setAttribute("placeholder", t(key));
    }
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") {
        node.textContent = attrs[key];
      } else if (LOCALIZED[key]) {
        node.setAttribute(LOCALIZED[key], attrs[key]);
      } else if (key === "hidden") {
        node.hidden = !!attrs[key];
      } else {
        node.setAttribute(key, attrs[key]);
      }
    });
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    localizeNode(node);
    return node;
  }
  function srOnly(key) {
    return el("span", { "class": "cc-sr", string: key });
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
    string: "launcher"
  });
  var closeButton = el("button", { "class": "cc-close", type: "button", label: "close" }, [
    el("span", { "aria-hidden": "true", text: "\u00d7" })
  ]);
  var statusLine = el("p", { "class": "cc-status", id: ids.status, role: "status", string: "statusBot" });
  var header = el("div", { "class": "cc-header" }, [
    el("div", { "class": "cc-heading" }, [
      el("h2", { "class": "cc-title", id: ids.title, string: "title" }),
      statusLine
    ]),
    closeButton
  ]);
  var handoffBanner = el("p", { "class": "cc-handoff", hidden: true, string: "handoff" });
  var startButton = el("button", { "class": "cc-start", type: "button", string: "start" });
  var notice = el("div", { "class": "cc-notice", id: ids.notice, role: "group", "aria-labelledby": "clinic-chat-notice-title" }, [
    el("h3", { id: "clinic-chat-notice-title", string: "noticeTitle" }),
    el("p", { string: "noticeScope" }),
    el("p", { string: "noticePrivacy" }),
    startButton
  ]);
  var log = el("div", {
    "class": "cc-log", id: ids.log, role: "log", "aria-live": "polite", "aria-relevant": "additions",
    label: "conversation", tabindex: "0"
  });
  var typing = el("div", { "class": "cc-typing", hidden: true, "aria-hidden": "true" }, [
    el("span", { "class": "cc-dots" }, [el("span"), el("span"), el("span")]),
    el("span", { string: "typing" })
  ]);
  var input = el("textarea", {
    id: ids.input, "class": "cc-input", rows: "1", maxlength: "1000", autocomplete: "off",
    placeholder: "placeholder", "aria-describedby": "clinic-chat-hint"
  });
  var sendButton = el("button", { "class": "cc-send", type: "submit", string: "send" });
  var connection = el("p", { "class": "cc-connection", role: "status", id: "clinic-chat-hint", text: "" });
  var form = el("form", { "class": "cc-form", hidden: true }, [
    el("label", { "for": ids.input, "class": "cc-sr", string: "messageLabel" }),
    input,
    sendButton
  ]);
  var panel = el("section", {
    "class": "cc-panel", id: ids.panel, "aria-labelledby": ids.title, "data-turn": "done", hidden: true
  }, [header, handoffBanner, notice, log, typing, form, connection]);
  // lang on the widget's own root: screen readers read its texts in its language, whatever the page's.
  var root = el("div", { "class": "cc-root", lang: language }, [panel, launcher]);

  // Re-applies every text in the current language (the page's language changed).
  function localize() {
    root.setAttribute("lang", language);
    var selector = Object.keys(LOCALIZED).map(function (key) { return "[" + LOCALIZED[key] + "]"; }).join(",");
    Array.prototype.forEach.call(root.querySelectorAll(selector), localizeNode);
  }
  function followPageLanguage() {
    var next = pageLanguage();
    if (next !== language) {
      language = next;
      localize();
    }
  }
  if (window.MutationObserver) {
    var languageWatch = new MutationObserver(followPageLanguage);
    languageWatch.observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
    languageWatch.observe(script, { attributes: true, attributeFilter: ["data-language"] });
  }

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
    var label = { patient: "saidPatient", bot: "saidBot", staff: "saidStaff" }[kind];
    var bubble = el("div", { "class": "cc-msg cc-" + kind });
    if (kind === "staff") {
      bubble.appendChild(el("span", { "class": "cc-label", "aria-hidden": "true", string: "staffLabel" }));
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
    var group = el("div", { "class": "cc-quick", role: "group", label: "suggested" });
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
    var key = on ? "statusStaff" : "statusBot";
    if (statusLine.getAttribute(LOCALIZED.string) !== key) { // a status region re-announces any change
      statusLine.setAttribute(LOCALIZED.string, key);
      localizeNode(statusLine);
    }
  }
  // What the connection line says (a string key; "" says nothing).
  function setConnection(key) {
    if (key) {
      connection.setAttribute(LOCALIZED.string, key);
      localizeNode(connection);
    } else {
      connection.removeAttribute(LOCALIZED.string);
      connection.textContent = "";
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
      setConnection("loadFailed");
    });
    document.head.appendChild(tag);
  }
  function connect() {
    if (socket) {
      return;
    }
    var state = loadState();
    if (!state.sessionId) {
      state = update({ sessionId: newSessionId(), sentLanguage: null });
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
          update({ sessionId: id, hadMessages: false, sentLanguage: null });
        }
        confirmedSession = id;
        setConnection("");
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
        setConnection("reconnecting");
      });
      socket.on("connect_error", function () {
        setConnection("unreachable");
      });
    });
  }
  // Messages typed before the connection is ready (or while it is lost) wait here, marked
  // "Sending…", and go out once the session is confirmed.
  var outbox = [];
  // The page's language goes with the conversation's first message and again only when it
  // changes: the assistant keeps the language a patient chose by writing or asking for it.
  function emitMessage(message, messageLanguage) {
    var payload = { message: message, session_id: confirmedSession };
    if (loadState().sentLanguage !== messageLanguage) {
      payload.metadata = { language: messageLanguage };
      update({ sentLanguage: messageLanguage });
    }
    socket.emit("user_uttered", payload);
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
      emitMessage(item.message, item.language);
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
      emitMessage(message, language);
    } else {
      var note = el("span", { "class": "cc-note", string: "sending" });
      bubble.classList.add("cc-pending");
      bubble.appendChild(note);
      outbox.push({ message: message, language: language, bubble: bubble, note: note });
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
