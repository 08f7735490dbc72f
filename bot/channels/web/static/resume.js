/* The resume form: trade a case code and passphrase for the identity of an
   earlier conversation, keep it in this tab only, and open the chat. */
"use strict";

(function () {
  const C = window.Confidant;
  const form = document.getElementById("resume");
  const status = document.getElementById("status");

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    status.textContent = "";
    fetch("/api/resume", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        code: document.getElementById("code").value,
        passphrase: document.getElementById("passphrase").value,
      }),
    })
      .then(function (r) {
        return r.json().then(function (d) { return { status: r.status, data: d }; });
      })
      .then(function (res) {
        if (res.status === 200 && res.data.identity) {
          C.store("confidant.identity", res.data.identity);
          location.replace("/");
          return;
        }
        if (res.status === 429) status.textContent = C.t("resume_wait", { s: res.data.retry_after });
        else if (res.status === 403) status.textContent = C.t("resume_wrong");
        else status.textContent = C.t("err_generic");
      })
      .catch(function () { status.textContent = C.t("err_generic"); })
      .finally(function () { button.disabled = false; });
  });
})();
