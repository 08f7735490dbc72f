/* The confidant console: the same chat, signed in by an HttpOnly cookie,
   with a case selector that sends "/case CODE" and tags later messages. */
"use strict";

(function () {
  const C = window.Confidant;
  const caseList = document.getElementById("case-list");
  const currentLabel = document.getElementById("current-case");
  const input = document.getElementById("compose-text");
  const cases = new Set();
  let current = null;
  let fresh = true;

  function select(code) {
    current = code;
    currentLabel.removeAttribute("data-i18n");
    currentLabel.textContent = code;
    caseList.querySelectorAll("button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.case === code));
    });
    chat.submit({ type: "message", text: "/case " + code }, "/case " + code);
  }

  function remember(code) {
    if (!code || cases.has(code)) return;
    cases.add(code);
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.case = code;
    b.textContent = code;
    b.setAttribute("aria-pressed", "false");
    li.appendChild(b);
    caseList.appendChild(li);
  }

  /* The case is gone (erased on the employee's request or after the
     retention period): nothing that names it may stay on screen.  The
     server names what it dropped from the history (`drop`); the case's own
     messages, the notices about it and the page-load overview (which names
     every case without belonging to one, and goes on any erasure, as on the
     server) go here too, also when the history no longer held them. */
  function erase(code, drop) {
    cases.delete(code);
    caseList.querySelectorAll("button[data-case]").forEach(function (b) {
      if (b.dataset.case === code) b.closest("li").remove();
    });
    const gone = new Set(Array.isArray(drop) ? drop : []);
    document.querySelectorAll("#log li").forEach(function (li) {
      if (li.dataset.case === code || gone.has(li.dataset.id) ||
          (li.dataset.about || "").split(" ").indexOf(code) >= 0) li.remove();
    });
    document.querySelectorAll("#log li[data-opening]").forEach(function (li) { li.remove(); });
    if (current === code) {
      current = null;
      currentLabel.textContent = C.t("no_case");
      currentLabel.dataset.i18n = "no_case";
    }
  }

  /* The overview a page load asked for replaces the one shown before (also
     when another tab was loaded): the server keeps only the newest, and so
     does the screen, so stale lists of cases never pile up. */
  function overview(item) {
    const log = document.getElementById("log");
    const li = log.querySelector('li[data-id="' + CSS.escape(item.id) + '"]');
    if (!li) return;
    log.querySelectorAll("li[data-opening]").forEach(function (old) { old.remove(); });
    li.dataset.opening = "1";
  }

  caseList.addEventListener("click", function (ev) {
    const b = ev.target.closest("button[data-case]");
    if (b) select(b.dataset.case);
  });
  document.getElementById("log").addEventListener("click", function (ev) {
    const b = ev.target.closest("button.case-badge");
    if (b) select(b.dataset.case);
  });

  document.getElementById("commands").addEventListener("click", function (ev) {
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.send) {
      chat.submit({ type: "message", text: b.dataset.send }, b.dataset.send);
    } else if (b.dataset.caseCommand) {
      if (current) {
        const text = b.dataset.caseCommand + " " + current;
        chat.submit({ type: "message", text: text }, text);
      } else {
        input.value = b.dataset.caseCommand + " ";
        input.focus();
      }
    } else if (b.dataset.insert) {
      input.value = b.dataset.insert + input.value.replace(/^\/\S+\s*/, "");
      input.focus();
    }
  });

  document.getElementById("logout").addEventListener("click", function () {
    C.stopChat();
    fetch("/console/logout", { method: "POST", credentials: "same-origin" })
      .finally(function () { location.replace("/weather"); });
  });

  const chat = C.chat({
    path: "/console/ws",
    relayLabel: "employee",
    showCase: true,
    hello: function () {
      // Only a page load asks for the case list, not every reconnect.
      const hello = { type: "hello", language: C.lang, fresh: fresh };
      fresh = false;
      return hello;
    },
    decorate: function (frame) { if (current) frame["case"] = current; },
    onItem: function (item) {
      remember(item["case"]);
      if (item.opening && item.id) overview(item);
    },
    onButton: function (b, btn) {
      btn.classList.add("chosen");
      chat.submit({ type: "button", token: b.token, label: b.label }, b.label);
    },
    onFrame: function (d) {
      if (d.type === "case-erased" && typeof d["case"] === "string") erase(d["case"], d.drop);
    },
  });
})();
