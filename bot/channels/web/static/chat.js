/* The employee's anonymous chat: the identity lives only in this tab's
   sessionStorage and is presented in the first WebSocket frame. */
"use strict";

(function () {
  const C = window.Confidant;
  const receipts = document.getElementById("receipts");

  function showReceipt(d) {
    const box = document.createElement("section");
    box.className = "receipt";
    box.setAttribute("role", "alert");
    const h = document.createElement("h2");
    h.textContent = C.t("receipt_title");
    const p = document.createElement("p");
    p.textContent = C.t("receipt_text");
    const dl = document.createElement("dl");
    const rows = [["receipt_code", d["case"], "receipt-code"], ["receipt_pass", d.passphrase, "receipt-pass"]];
    for (const row of rows) {
      const dt = document.createElement("dt");
      dt.textContent = C.t(row[0]);
      const dd = document.createElement("dd");
      const code = document.createElement("code");
      code.className = row[2];
      code.textContent = row[1];
      dd.appendChild(code);
      dl.appendChild(dt);
      dl.appendChild(dd);
    }
    const done = document.createElement("button");
    done.type = "button";
    done.textContent = C.t("receipt_done");
    done.addEventListener("click", function () {
      box.remove();
      document.getElementById("compose-text").focus();
    });
    box.append(h, p, dl, done);
    receipts.appendChild(box);
    done.focus();
  }

  /* After "erase my data" the core's farewell stays in view, above the
     fresh start, until the tab is closed; it is never stored anywhere. */
  let farewell = null;
  const log = document.getElementById("log");

  const options = {
    path: "/ws",
    relayLabel: "relay",
    showCase: false,
    hello: function () {
      return { type: "hello", identity: C.load("confidant.identity"), language: C.lang };
    },
    onReady: function (d) {
      if (d.identity) C.store("confidant.identity", d.identity);
      if (farewell) log.prepend(C.renderItem(farewell, options));
    },
    onButton: function (b, btn) {
      btn.classList.add("chosen");
      chat.submit({ type: "button", token: b.token, label: b.label }, b.label);
    },
    onFrame: function (d) {
      if (d.type === "receipt") showReceipt(d);
      if (d.type === "forgotten") {
        C.store("confidant.identity", null);
        log.textContent = "";
        receipts.textContent = "";
        if (d.item) {
          farewell = d.item;
          log.appendChild(C.renderItem(farewell, options));
        }
        chat.say("forgotten");
      }
    },
  };
  const chat = C.chat(options);
})();
