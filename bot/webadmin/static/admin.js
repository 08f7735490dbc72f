/* Shared by every page of the admin console: asks before a removal, and
   posts a form for a script, asking for JSON instead of a page.
   Plain module, no framework, nothing from elsewhere; text is set with
   textContent only. */

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

/** Post fields (they carry the session's csrf token) and read the JSON answer. */
export async function post(url, fields) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      body: fields,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
  } catch (error) {
    return { ok: false, error: String(error) };
  }
  try {
    return await response.json();
  } catch (error) {
    return { ok: false, error: response.status + " " + response.statusText };
  }
}

/** The JSON a page hands its script, in a block the browser never runs. */
export function pageData(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : null;
}
