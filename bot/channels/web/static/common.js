/* Shared by the employee page, the resume page and the confidant console:
   UI strings, language choice, quick exit, message rendering and the
   WebSocket connection with resend of unconfirmed messages.
   No framework, no external asset; text is always set with textContent. */
"use strict";

(function () {
  const body = document.body;
  const C = {};
  window.Confidant = C;

  const LANGUAGE_NAMES = { nl: "Nederlands", fr: "Français", en: "English", de: "Deutsch" };
  C.languages = (body.dataset.languages || "en").split(",").filter(Boolean);
  C.maxText = parseInt(body.dataset.maxText || "4000", 10);
  let strings = {};

  function store(key, value) {
    try {
      if (value === null) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, value);
    } catch (e) { /* storage disabled: the tab simply forgets */ }
  }
  function load(key) {
    try { return sessionStorage.getItem(key); } catch (e) { return null; }
  }
  C.store = store;
  C.load = load;

  function pickLanguage() {
    const saved = load("confidant.lang");
    if (saved && C.languages.includes(saved)) return saved;
    const wanted = navigator.languages || [navigator.language || ""];
    for (const tag of wanted) {
      const primary = String(tag).toLowerCase().split("-")[0];
      if (C.languages.includes(primary)) return primary;
    }
    return body.dataset.defaultLanguage || C.languages[0];
  }
  C.lang = pickLanguage();

  C.t = function (key, vars) {
    const table = strings[C.lang] || strings.en || {};
    let text = table[key] || (strings.en || {})[key] || key;
    for (const name in vars || {}) text = text.replace("{" + name + "}", String(vars[name]));
    return text;
  };

  C.applyStrings = function () {
    document.documentElement.lang = C.lang;
    document.querySelectorAll("[data-i18n]").forEach(function (el) {
      el.textContent = C.t(el.dataset.i18n);
    });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (el) {
      el.placeholder = C.t(el.dataset.i18nPlaceholder);
    });
    document.querySelectorAll("[data-i18n-label]").forEach(function (el) {
      el.setAttribute("aria-label", C.t(el.dataset.i18nLabel));
    });
  };

  C.ready = fetch("/static/i18n.json", { credentials: "same-origin" })
    .then(function (r) { return r.json(); })
    .then(function (data) { strings = data; C.applyStrings(); })
    .catch(function () { /* keep the built-in English */ });

  const select = document.getElementById("lang");
  if (select) {
    for (const code of C.languages) {
      const opt = document.createElement("option");
      opt.value = code;
      opt.textContent = LANGUAGE_NAMES[code] || code;
      select.appendChild(opt);
    }
    select.value = C.lang;
    select.addEventListener("change", function () {
      C.lang = select.value;
      store("confidant.lang", C.lang);
      C.applyStrings();
      document.dispatchEvent(new CustomEvent("confidant:language"));
    });
  }

  C.uuid = function () {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" +
      h.slice(16, 20) + "-" + h.slice(20);
  };

  /* ---- quick exit: forget the tab and leave without a way back ---- */
  C.onExit = [];
  C.quickExit = function () {
    try { sessionStorage.clear(); } catch (e) { /* nothing to clear */ }
    for (const fn of C.onExit) { try { fn(); } catch (e) { /* leaving anyway */ } }
    document.body.textContent = "";
    document.title = C.t("weather_title");
    location.replace("/weather?l=" + encodeURIComponent(C.lang));
  };
  const exitButton = document.getElementById("quick-exit");
  if (exitButton) {
    exitButton.addEventListener("click", C.quickExit);
    let lastEscape = 0;
    document.addEventListener("keydown", function (ev) {
      if (ev.key !== "Escape") return;
      const now = Date.now();
      if (now - lastEscape < 1500) C.quickExit();
      lastEscape = now;
    });
  }

  /* ---- message rendering ---- */
  C.renderItem = function (item, options) {
    const li = document.createElement("li");
    li.className = "msg from-" + (item.from || "bot");
    if (item.id) li.dataset.id = item.id;
    if (item.cid) li.dataset.cid = item.cid;
    if (item.case) li.dataset.case = item.case;
    if (Array.isArray(item.about)) li.dataset.about = item.about.join(" ");
    const meta = document.createElement("div");
    meta.className = "meta";
    const who = document.createElement("span");
    who.className = "who";
    let whoKey = item.from === "me" ? "me" : item.from === "relay" ? options.relayLabel : "bot";
    if (item.from === "urgent") whoKey = "urgent";
    who.textContent = C.t(whoKey);
    meta.appendChild(who);
    if (item.case && options.showCase) {
      const badge = document.createElement("button");
      badge.type = "button";
      badge.className = "case-badge";
      badge.textContent = item.case;
      badge.dataset.case = item.case;
      meta.appendChild(badge);
    }
    if (item.ts) {
      const time = document.createElement("time");
      const d = new Date(item.ts * 1000);
      time.dateTime = d.toISOString();
      time.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      meta.appendChild(time);
    }
    li.appendChild(meta);
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = item.text || "";
    li.appendChild(text);
    if (item.image && /^data:image\/(png|jpeg|webp);base64,/.test(item.image)) {
      const img = document.createElement("img");
      img.src = item.image;
      img.alt = item.caption || "";
      li.appendChild(img);
    } else if (item.attachment) {
      const note = document.createElement("div");
      note.className = "attachment";
      note.textContent = C.t("attachment") + ": " + item.attachment;
      li.appendChild(note);
    }
    if (item.buttons && item.buttons.length) {
      const box = document.createElement("div");
      box.className = "buttons";
      for (const row of item.buttons) {
        const line = document.createElement("div");
        line.className = "row";
        for (const b of row) {
          const btn = document.createElement("button");
          btn.type = "button";
          btn.className = "choice";
          btn.textContent = b.label;
          btn.addEventListener("click", function () { options.onButton(b, btn); });
          line.appendChild(btn);
        }
        box.appendChild(line);
      }
      li.appendChild(box);
    }
    return li;
  };

  /* ---- the chat: one WebSocket, resend until the server confirms ---- */
  C.chat = function (options) {
    const log = document.getElementById("log");
    const status = document.getElementById("status");
    const form = document.getElementById("compose");
    const input = document.getElementById("compose-text");
    const pending = new Map();
    const seen = new Set();
    let ws = null;
    let stopped = false;
    let delay = 1000;

    function say(key, vars) { status.textContent = key ? C.t(key, vars) : ""; }
    function scrollDown() { log.lastElementChild && log.lastElementChild.scrollIntoView({ block: "end" }); }

    function add(item) {
      if (item.id && seen.has(item.id)) return;
      if (item.cid && log.querySelector('li[data-cid="' + CSS.escape(item.cid) + '"]')) return;
      if (item.id) seen.add(item.id);
      log.appendChild(C.renderItem(item, options));
      if (options.onItem) options.onItem(item);
      scrollDown();
    }

    function transmit(frame) {
      if (ws && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify(frame));
        return true;
      }
      return false;
    }

    function submit(frame, shownText) {
      frame.id = C.uuid();
      if (options.decorate) options.decorate(frame);
      const li = C.renderItem({ from: "me", cid: frame.id, text: shownText, case: frame.case },
        options);
      li.classList.add("pending");
      const note = document.createElement("div");
      note.className = "note";
      note.textContent = C.t("sending");
      li.appendChild(note);
      log.appendChild(li);
      scrollDown();
      pending.set(frame.id, { frame: frame, li: li, attempts: 0 });
      transmit(frame);
    }
    C.submit = submit;

    function confirmed(cid, item) {
      const entry = pending.get(cid);
      if (!entry) return;
      pending.delete(cid);
      entry.li.classList.remove("pending", "failed");
      const note = entry.li.querySelector(".note");
      if (note) note.remove();
      if (item && item.id) { entry.li.dataset.id = item.id; seen.add(item.id); }
    }

    function failed(cid, key) {
      const entry = pending.get(cid);
      if (!entry) { say(key); return; }
      pending.delete(cid);
      entry.li.classList.remove("pending");
      entry.li.classList.add("failed");
      const note = entry.li.querySelector(".note") || document.createElement("div");
      note.className = "note";
      note.textContent = C.t("not_sent") + " " + C.t(key);
      entry.li.appendChild(note);
    }

    function errorKey(code) {
      return { too_long: "err_too_long", invalid: "err_invalid", retry: "err_retry" }[code] ||
        "err_generic";
    }

    function frame(d) {
      switch (d.type) {
        case "ready":
          delay = 1000;
          say("connected");
          log.textContent = "";
          seen.clear();
          for (const item of d.history || []) if (!(item.cid && pending.has(item.cid))) add(item);
          for (const entry of pending.values()) { log.appendChild(entry.li); transmit(entry.frame); }
          scrollDown();
          if (options.onReady) options.onReady(d);
          break;
        case "message":
          add(d.item);
          break;
        case "ack":
          confirmed(d.id, d.item);
          break;
        case "error":
          if (d.code === "retry" && pending.has(d.id)) {
            const entry = pending.get(d.id);
            entry.attempts += 1;
            if (entry.attempts >= 5) { failed(d.id, "err_generic"); break; }
            say("err_retry");
            setTimeout(function () { transmit(entry.frame); }, 2000 * entry.attempts);
          } else if (d.code === "login") {
            stopped = true;
            say("login_required");
          } else if (d.id && pending.has(d.id)) {
            failed(d.id, errorKey(d.code));
          } else {
            say(errorKey(d.code));
          }
          break;
        default:
          if (options.onFrame) options.onFrame(d);
      }
    }

    function open() {
      if (stopped) return;
      say("connecting");
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      ws = new WebSocket(scheme + "//" + location.host + options.path);
      ws.addEventListener("open", function () { ws.send(JSON.stringify(options.hello())); });
      ws.addEventListener("message", function (ev) {
        let d;
        try { d = JSON.parse(ev.data); } catch (e) { return; }
        if (d && typeof d === "object") frame(d);
      });
      ws.addEventListener("close", function () {
        if (stopped) return;
        say("offline");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 15000);
      });
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      const text = input.value;
      if (!text.trim()) return;
      if (text.length > C.maxText) { say("err_too_long"); return; }
      input.value = "";
      say("");
      submit({ type: "message", text: text }, text);
      input.focus();
    });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
    document.addEventListener("confidant:language", function () { if (ws) ws.close(); });
    C.onExit.push(function () { stopped = true; if (ws) ws.close(); });

    C.stopChat = function () { stopped = true; if (ws) ws.close(); };
    C.ready.finally(open);
    return { submit: submit, say: say };
  };
})();
