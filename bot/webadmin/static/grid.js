/* The rota week grid: lays each confidant's day out as a time line, draws a
   shift by dragging across a day (mouse or pen; a tap or a click opens the
   form), moves a shift along its day or stretches it by its right end, and
   opens the add/change form in a dialog.  Every change is the
   same form post as without a script; the server's answer (saved, or
   refused with the admin service's reason) is shown as it comes. */
import { pageData, post } from "./admin.js";

const data = pageData("rota-data");
const table = document.querySelector("table.grid");
const alertBox = document.getElementById("grid-alert");
const SNAP = 15;

const [lo, hi] = data ? data.range : [7, 20];
const first = lo * 60;
const span = (hi - lo) * 60;

const minutes = (text) => {
  const [h, m] = text.split(":").map(Number);
  return h * 60 + m;
};
const clock = (value) => {
  const m = Math.min(Math.max(value, 0), 24 * 60 - 1);
  return String(Math.floor(m / 60)).padStart(2, "0") + ":" + String(m % 60).padStart(2, "0");
};
const percent = (value) => ((value - first) / span) * 100;

function place(element, start, end) {
  element.style.left = percent(start) + "%";
  element.style.width = Math.max(percent(end) - percent(start), 0.5) + "%";
}

function layOut() {
  table.classList.add("timeline");
  const drawKind = document.querySelector(".draw-kind");
  if (drawKind) drawKind.hidden = false;
  const hourWidth = 100 / (hi - lo) + "% 100%";
  for (const track of table.querySelectorAll(".track")) track.style.backgroundSize = hourWidth;
  for (const bar of table.querySelectorAll("a.shift")) {
    place(bar, minutes(bar.dataset.start), minutes(bar.dataset.end));
  }
  const step = Math.max(1, Math.ceil((hi - lo) / 4));
  for (const th of table.querySelectorAll("thead th[data-date]")) {
    const scale = document.createElement("div");
    scale.className = "scale";
    scale.setAttribute("aria-hidden", "true");
    for (let h = lo; h < hi; h += step) {
      const mark = document.createElement("span");
      mark.textContent = String(h);
      mark.style.left = percent(h * 60) + "%";
      scale.appendChild(mark);
    }
    th.appendChild(scale);
  }
  for (const gap of table.querySelectorAll(".coverage .gap[data-start]")) {
    const mark = document.createElement("div");
    mark.className = "gapmark";
    mark.setAttribute("aria-hidden", "true");
    place(mark, minutes(gap.dataset.start), minutes(gap.dataset.end));
    gap.parentElement.appendChild(mark);
  }
}

function kindToDraw() {
  const chosen = document.querySelector("input[name=draw-kind]:checked");
  return chosen ? chosen.value : "duty";
}

function say(text) {
  for (const old of document.querySelectorAll(".flash")) old.remove();
  alertBox.textContent = text;
}

function done(what) {
  window.location.assign("/admin/rota?week=" + encodeURIComponent(data.week) + "&done=" + what);
}

// ------------------------------------------------------------ the dialog

const body = document.getElementById("shift-form-body");
const dialog = document.createElement("dialog");
const editForm = document.getElementById("shift-edit");
const removeForm = document.getElementById("shift-remove");
const formError = document.getElementById("form-error");
const title = document.getElementById("shift-form-title");

function setUpDialog() {
  dialog.id = "shift-dialog";
  dialog.setAttribute("aria-labelledby", "shift-form-title");
  dialog.appendChild(body);
  document.body.appendChild(dialog);
  document.getElementById("shift-form").hidden = true;
  document.getElementById("shift-cancel").addEventListener("click", (event) => {
    event.preventDefault();
    dialog.close();
  });
  editForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const field of editForm.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
    const result = await post(editForm.action, new URLSearchParams(new FormData(editForm)));
    if (result.ok) {
      done(editForm.dataset.mode === "edit" ? "changed" : "added");
      return;
    }
    formError.textContent = result.error;
    const field = result.field && editForm.elements.namedItem(result.field);
    if (field && field.setAttribute) field.setAttribute("aria-invalid", "true");
  });
  removeForm.addEventListener("submit", async (event) => {
    if (event.defaultPrevented) return; // the admin said no
    event.preventDefault();
    const result = await post(removeForm.action, new URLSearchParams(new FormData(removeForm)));
    if (result.ok) done("removed");
    else formError.textContent = result.error;
  });
}

function openDialog(mode, values) {
  editForm.dataset.mode = mode;
  title.textContent = mode === "edit" ? title.dataset.edit : title.dataset.add;
  formError.textContent = "";
  const fields = editForm.elements;
  editForm.action = mode === "edit" ? "/admin/rota/shifts/" + values.id : "/admin/rota/shifts";
  fields.namedItem("confidant").value = values.confidant;
  fields.namedItem("confidant").disabled = mode === "edit";
  fields.namedItem("day").value = values.day;
  fields.namedItem("start").value = values.start;
  fields.namedItem("end").value = values.end;
  for (const radio of editForm.querySelectorAll("input[name=kind]")) radio.checked = radio.value === values.kind;
  removeForm.hidden = mode !== "edit";
  if (mode === "edit") removeForm.action = "/admin/rota/shifts/" + values.id + "/remove";
  if (!dialog.open) dialog.showModal();
  fields.namedItem("start").focus();
}

function where(element) {
  const cell = element.closest("td.cell");
  return { confidant: cell.closest("tr").dataset.confidant, day: cell.dataset.day };
}

// ------------------------------------------------------------ drawing

let drag = null;

function at(track, x) {
  const box = track.getBoundingClientRect();
  const share = Math.min(Math.max((x - box.left) / box.width, 0), 1);
  return first + Math.round((share * span) / SNAP) * SNAP;
}

function paint(d) {
  const [a, b] = [Math.min(d.start, d.end), Math.max(d.start, d.end)];
  place(d.draft, a, b);
  d.draft.textContent = clock(a) + "–" + clock(b);
}

async function submitDrawn(d) {
  const a = Math.min(d.start, d.end);
  const b = Math.max(d.start, d.end);
  const spot = where(d.track);
  if (b - a < SNAP) {
    d.draft.remove();
    openDialog("add", { ...spot, start: clock(a), end: clock(Math.min(a + 180, 24 * 60 - 1)), kind: kindToDraw() });
    return;
  }
  const fields = new URLSearchParams({
    csrf: data.csrf, week: data.week, confidant: spot.confidant, day: spot.day,
    start: clock(a), end: clock(b), kind: kindToDraw(),
  });
  const result = await post("/admin/rota/shifts", fields);
  if (result.ok) {
    done("added");
    return;
  }
  d.draft.classList.add("refused");
  say(result.error);
  window.setTimeout(() => d.draft.remove(), 8000);
}

// Moving a shift along its day, or stretching it by its right end.
let move = null;
let swallowClick = false;

function startMove(event, bar) {
  const box = bar.getBoundingClientRect();
  move = {
    bar, track: bar.closest(".track"), x: event.clientX,
    mode: box.right - event.clientX <= 8 ? "end" : "both",
    start: minutes(bar.dataset.start), end: minutes(bar.dataset.end), delta: 0,
  };
  bar.setPointerCapture(event.pointerId);
}

function moved(m) {
  const start = m.mode === "both" ? m.start + m.delta : m.start;
  return [start, m.end + m.delta];
}

async function finishMove(m) {
  if (Math.abs(m.delta) < SNAP) {
    place(m.bar, m.start, m.end);
    return; // a plain click: the click handler opens the dialog
  }
  swallowClick = true;
  const [a, b] = moved(m);
  const fields = new URLSearchParams({ csrf: data.csrf, week: data.week, start: clock(a), end: clock(b) });
  const result = await post("/admin/rota/shifts/" + m.bar.dataset.id, fields);
  if (result.ok) {
    done("changed");
    return;
  }
  place(m.bar, m.start, m.end);
  say(result.error);
}

function setUpMoving() {
  table.addEventListener("dragstart", (event) => {
    if (event.target.closest && event.target.closest("a.shift")) event.preventDefault();
  });
  table.addEventListener("pointerdown", (event) => {
    const bar = event.target.closest("a.shift");
    if (!bar || event.button !== 0 || event.pointerType === "touch") return;
    startMove(event, bar);
  });
  table.addEventListener("pointermove", (event) => {
    if (!move) return;
    const box = move.track.getBoundingClientRect();
    move.delta = Math.round(((event.clientX - move.x) / box.width) * span / SNAP) * SNAP;
    const [a, b] = moved(move);
    if (b - a >= SNAP && a >= 0 && b <= 24 * 60) place(move.bar, a, b);
    else move.delta = 0;
  });
  table.addEventListener("pointerup", () => {
    if (!move) return;
    const m = move;
    move = null;
    finishMove(m);
  });
}

function setUpDrawing() {
  table.addEventListener("pointerdown", (event) => {
    const track = event.target.closest(".track");
    if (!track || event.target.closest("a") || event.button !== 0) return;
    if (event.pointerType === "touch") return; // a tap opens the form (click below)
    event.preventDefault();
    const start = at(track, event.clientX);
    const draft = document.createElement("div");
    draft.className = "draft";
    draft.setAttribute("aria-hidden", "true");
    track.appendChild(draft);
    drag = { track, start, end: start, draft };
    track.setPointerCapture(event.pointerId);
    paint(drag);
  });
  table.addEventListener("pointermove", (event) => {
    if (!drag) return;
    drag.end = at(drag.track, event.clientX);
    paint(drag);
  });
  table.addEventListener("pointerup", (event) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    d.end = at(d.track, event.clientX);
    submitDrawn(d);
  });
  table.addEventListener("pointercancel", () => {
    if (drag) drag.draft.remove();
    drag = null;
  });
  table.addEventListener("click", (event) => {
    const link = event.target.closest("a.shift, a.add");
    if (link) {
      event.preventDefault();
      if (swallowClick) {
        swallowClick = false; // the end of a move, not a click
        return;
      }
      const spot = where(link);
      if (link.classList.contains("shift")) {
        openDialog("edit", { ...spot, id: link.dataset.id, start: link.dataset.start, end: link.dataset.end, kind: link.dataset.kind });
      } else {
        openDialog("add", { ...spot, start: "09:00", end: "12:00", kind: kindToDraw() });
      }
      return;
    }
    const track = event.target.closest(".track");
    if (track && event.pointerType === "touch") {
      const start = at(track, event.clientX);
      openDialog("add", { ...where(track), start: clock(start), end: clock(Math.min(start + 180, 24 * 60 - 1)), kind: kindToDraw() });
    }
  });
}

if (table && data && body) {
  layOut();
  setUpDialog();
  setUpDrawing();
  setUpMoving();
  const query = new URLSearchParams(window.location.search);
  if (formError.textContent.trim() || query.has("edit") || query.has("confidant")) {
    editForm.dataset.mode = query.has("edit") || !removeForm.hidden ? "edit" : "add";
    dialog.showModal();
  }
}
