// Small DOM helpers: element builder, icons, badges, time formatting, copy, confirm, toasts.
// Data from the API only ever reaches the page as text nodes or attribute values.

/** Builds an element: h("a", {href: "#/x", class: "y"}, "text", child, [more]). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (key === "checked" || key === "disabled" || key === "selected" || key === "readOnly") el[key] = Boolean(value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const ICONS = {
  plus: '<path d="M10 4v12M4 10h12"/>',
  copy: '<rect x="7" y="7" width="9.5" height="9.5" rx="1.8"/><path d="M13 7V5.3A1.8 1.8 0 0 0 11.2 3.5H5.3A1.8 1.8 0 0 0 3.5 5.3v5.9A1.8 1.8 0 0 0 5.3 13H7"/>',
  check: '<path d="m4.5 10.5 3.5 3.5 7.5-8"/>',
  x: '<path d="m5.5 5.5 9 9M14.5 5.5l-9 9"/>',
  alert: '<circle cx="10" cy="10" r="7.2"/><path d="M10 6.2v4.5M10 13.6v.1"/>',
  info: '<circle cx="10" cy="10" r="7.2"/><path d="M10 9.2v4.6M10 6.4v.1"/>',
  link: '<path d="M8.5 11.5a3 3 0 0 0 4.2 0l2.6-2.6a3 3 0 0 0-4.2-4.2l-.8.8"/><path d="M11.5 8.5a3 3 0 0 0-4.2 0l-2.6 2.6a3 3 0 0 0 4.2 4.2l.8-.8"/>',
  off: '<circle cx="10" cy="10" r="6.5"/><path d="m5.4 14.6 9.2-9.2"/>',
  rotate: '<path d="M15.5 9.5A5.5 5.5 0 1 1 13.8 5.6"/><path d="M15.8 3.5v3.6h-3.6"/>',
  play: '<path d="M6.5 4.5v11l9-5.5z"/>',
  trash: '<path d="M4 6h12M8 6V4.5h4V6M6 6l.7 9.5h6.6L14 6"/>',
  stack: '<path d="M10 2.8 17 6.5 10 10.2 3 6.5z"/><path d="M3 10l7 3.7 7-3.7"/><path d="M3 13.5l7 3.7 7-3.7"/>',
  server: '<rect x="3" y="3.5" width="14" height="5" rx="1.5"/><rect x="3" y="11.5" width="14" height="5" rx="1.5"/>',
  clock: '<circle cx="10" cy="10" r="7"/><path d="M10 6v4.2l2.8 1.8"/>',
  key: '<circle cx="7" cy="12.5" r="3.2"/><path d="m9.3 10.2 6.2-6.2M13.2 6.3l1.9 1.9"/>',
  eye: '<path d="M2.5 10s2.8-5 7.5-5 7.5 5 7.5 5-2.8 5-7.5 5-7.5-5-7.5-5z"/><circle cx="10" cy="10" r="2.2"/>',
};

/** An inline SVG icon (static markup from the table above, never data). */
export function icon(name) {
  const span = document.createElement("span");
  span.innerHTML = `<svg class="icon" viewBox="0 0 20 20" aria-hidden="true" focusable="false">${ICONS[name] || ""}</svg>`;
  return span.firstChild;
}

// ---------- Status badges ----------

const TONES = {
  connected: "ok", running: "ok", succeeded: "ok",
  disconnected: "err", failed: "err",
  pending: "warn", queued: "neutral",
  dispatched: "info", deploying: "info",
  rolled_back: "orange", removing: "neutral",
};
const LABELS = { rolled_back: "rolled back" };

/** A coloured status badge for an environment, stack or job state. */
export function badge(state, { extraClass = "" } = {}) {
  const tone = TONES[state] || "neutral";
  const running = state === "running" && extraClass.includes("job") ? "info" : tone;
  return h("span", { class: `badge ${running} ${extraClass}`.trim(), dataset: { state } }, LABELS[state] || state);
}

/** A job state badge ("running" is blue and pulses for jobs, unlike a running stack). */
export const jobBadge = (state) => badge(state, { extraClass: "job" });

export function typeTag(type) {
  return h("span", { class: `tag ${type}`, title: type === "edge" ? "Edge: checks in periodically" : "Agent: permanent connection" }, type);
}

// ---------- Time ----------

export function parseTime(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function relTime(value, now = Date.now()) {
  const date = parseTime(value);
  if (!date) return "—";
  const seconds = Math.round((now - date.getTime()) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  if (days < 30) return `${days} d ago`;
  return date.toLocaleDateString();
}

export function absTime(value) {
  const date = parseTime(value);
  if (!date) return "—";
  return date.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function duration(from, to) {
  const a = parseTime(from);
  const b = parseTime(to);
  if (!a || !b) return "—";
  const ms = Math.max(0, b - a);
  if (ms < 1000) return "< 1 s";
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s % 60)} s`;
}

/** A <time> element showing relative time, with the exact time on hover. */
export function timeEl(value, { prefix = "" } = {}) {
  const date = parseTime(value);
  return h("time", date ? { datetime: date.toISOString(), title: absTime(value), dataset: { prefix } } : {}, prefix + relTime(value));
}

export const shortId = (id) => (id || "").replace(/^([a-z]+_)(.{8}).*$/, "$1$2");

// ---------- Copy ----------

/**
 * Copies text: the Clipboard API where the page may use it, otherwise select + execCommand("copy")
 * on `selectFrom` (an input showing the text) or a temporary textarea. Resolves true on success.
 */
export async function copyText(text, selectFrom, container = document.body) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch { /* permission denied or no focus: fall back */ }
  }
  let target = selectFrom;
  let temporary = null;
  if (!target || target.value !== text) {
    temporary = h("textarea", { readonly: true, "aria-hidden": "true", style: "position:fixed;top:0;left:0;width:1px;height:1px;opacity:0;" });
    temporary.value = text;
    // Inside a modal dialog the rest of the page is inert, so the helper goes next to the button.
    container.append(temporary);
    target = temporary;
  }
  const active = document.activeElement;
  target.focus();
  target.select();
  target.setSelectionRange(0, text.length);
  let ok = false;
  try { ok = document.execCommand("copy"); } catch { ok = false; }
  if (temporary) {
    temporary.remove();
    if (active && active.focus) active.focus();
  }
  return ok;
}

/** A "Copy" button for `getText()`; shows a confirmation and records the text in data-copied. */
export function copyButton(getText, { label = "Copy", selectFrom, onCopied, small = true, id } = {}) {
  const text = h("span", {}, label);
  const button = h("button", { type: "button", class: `btn ${small ? "btn-sm" : ""}`, id }, icon("copy"), text);
  let timer = null;
  button.addEventListener("click", async () => {
    const value = getText();
    const ok = await copyText(value, typeof selectFrom === "function" ? selectFrom() : selectFrom,
      button.closest("dialog") || document.body);
    clearTimeout(timer);
    if (ok) {
      button.dataset.copied = value;
      button.classList.add("copied");
      button.replaceChildren(icon("check"), h("span", {}, "Copied"));
      timer = setTimeout(() => { button.classList.remove("copied"); button.replaceChildren(icon("copy"), text); }, 2000);
    } else {
      toast("Copying was blocked by the browser; the text is selected, press Ctrl+C (⌘C) to copy it.", { tone: "err" });
    }
    if (onCopied) onCopied(ok, value);
  });
  return button;
}

/** A titled code block with a copy button. */
export function codeBlock(title, code, { note, testId } = {}) {
  return h("div", { class: "codeblock", dataset: testId ? { example: testId } : {} },
    h("div", { class: "codeblock-head" },
      h("div", { class: "codeblock-title" }, title, note ? h("span", {}, " — ", note) : null),
      copyButton(() => code)),
    h("pre", {}, h("code", {}, code)));
}

// ---------- Alerts, toasts, confirm ----------

export function alertBox(tone, ...content) {
  return h("div", { class: `alert ${tone}`, role: tone === "err" ? "alert" : "status" },
    icon(tone === "err" ? "alert" : tone === "ok" ? "check" : "info"), h("div", { class: "alert-body" }, ...content));
}

export function toast(message, { tone = "", link } = {}) {
  const container = document.getElementById("toasts");
  const el = h("div", { class: `toast ${tone}` }, h("span", {}, message), link ? h("a", { href: link.href }, link.label) : null);
  container.append(el);
  setTimeout(() => el.remove(), 5000);
}

/** A modal confirmation; resolves true when confirmed. */
export function confirmDialog({ title, message, confirmLabel = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const cancel = h("button", { type: "button", class: "btn", value: "cancel" }, "Cancel");
    const ok = h("button", { type: "submit", class: `btn ${danger ? "btn-danger-solid" : "btn-primary"}`, value: "ok", dataset: { confirm: "ok" } }, confirmLabel);
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" },
      h("form", { method: "dialog" },
        h("h2", { id: "confirm-title" }, title),
        h("p", {}, message),
        h("div", { class: "form-actions" }, cancel, ok)));
    cancel.addEventListener("click", () => dialog.close("cancel"));
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** Skeleton rows with the shape of the real ones, so nothing jumps when data arrives. */
export function skeletonRows(count, gridClass, cells) {
  return Array.from({ length: count }, () =>
    h("div", { class: `list-row ${gridClass}`, "aria-hidden": "true" },
      cells.map((width, index) => h("div", { class: `cell ${cells.areas ? cells.areas[index] : ""}` }, h("span", { class: `skeleton ${width}` })))));
}

export function pageHead({ title, subtitle, crumbs, actions = [], titleExtra = [] }) {
  return h("div", { class: "page-head" },
    h("div", { class: "titles" },
      crumbs ? h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, crumbs) : null,
      h("div", { class: "title-row" }, h("h1", {}, title), ...titleExtra),
      subtitle ? h("p", { class: "subtitle" }, subtitle) : null),
    actions.length ? h("div", { class: "actions" }, actions) : null);
}

/**
 * Rebuilds a container's children when `data` changed since the last call, keeping keyboard
 * focus on the element with the same data-focus-key; otherwise only refreshes relative times.
 */
export function refreshList(container, data, build) {
  const signature = JSON.stringify(data);
  if (container.dataset.signature === signature) {
    refreshTimes(container);
    return false;
  }
  const focused = container.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
  container.dataset.signature = signature;
  replace(container, build());
  container.setAttribute("aria-busy", "false");
  if (focused) {
    const again = container.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
  return true;
}

export function refreshTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const prefix = el.dataset.prefix || "";
    el.textContent = prefix + relTime(el.getAttribute("datetime"));
  }
}
