// Reusable pieces: agent commands, the compose editor with line numbers, env variable rows.

import { h, icon, codeBlock, alertBox } from "./dom.js";

// ---------- Agent commands ----------

/** The exact commands that enrol an agent into `env` with `token`. */
export function agentCommandText(env, token, origin) {
  const edge = env.type === "edge" ? " --edge" : "";
  return {
    binary: `wharf-agent --server ${origin} --join ${token} --data-dir /var/lib/wharf-agent${edge}`,
    script: `curl -fsSL ${origin}/install-agent.sh | sudo sh -s -- --join ${token}${edge} --binary /path/to/wharf-agent`,
  };
}

/** The commands for `env` and `token`, pointing agents at `serverURL` (the server's public URL). */
export function agentCommands(env, token, serverURL) {
  const text = agentCommandText(env, token, serverURL);
  return h("div", { class: "examples agent-commands" },
    h("p", { class: "sub" },
      "Run one of these on the Docker host. The join token works once and expires in 24 hours; ",
      "after enrolment the agent needs only ", h("code", {}, "--server"), " and ", h("code", {}, "--data-dir"), "."),
    serverURL !== location.origin
      ? h("p", { class: "sub" }, "Agents use the server's public URL, ", h("code", {}, serverURL),
        ", not the address this page came from (", h("code", {}, location.origin), ").")
      : null,
    codeBlock("Run the agent", text.binary, { testId: "agent-command", note: "wharf-agent already installed" }),
    codeBlock("Or install and start it", text.script, { testId: "install-command", note: "with your wharf-agent binary, or --binary-url" }));
}

// ---------- Compose editor ----------

/**
 * A monospace textarea with a line-number gutter. `showError(line)` marks a line in the gutter
 * and behind the text; `goTo(line)` puts the caret there.
 */
export function composeEditor({ value = "", id = "compose", label = "Compose file", onInput } = {}) {
  const gutterInner = h("div", { class: "editor-gutter-inner" });
  const gutter = h("div", { class: "editor-gutter", "aria-hidden": "true" }, gutterInner);
  const mark = h("div", { class: "editor-mark", "aria-hidden": "true" });
  const textarea = h("textarea", {
    id, name: id, spellcheck: "false", autocomplete: "off", autocapitalize: "off", wrap: "off",
    "aria-label": label, "aria-describedby": `${id}-error`,
  });
  textarea.value = value;
  const area = h("div", { class: "editor-area" }, mark, textarea);
  const root = h("div", { class: "editor", dataset: { editor: id } }, gutter, area);
  let errorLine = null;
  let lineCount = 0;

  function renumber() {
    const count = Math.max(1, textarea.value.split("\n").length);
    if (count !== lineCount) {
      lineCount = count;
      const fragment = document.createDocumentFragment();
      for (let i = 1; i <= count; i++) fragment.append(h("span", { class: "ln", dataset: { line: i } }, i));
      gutterInner.replaceChildren(fragment);
    }
    // Grow with the file up to 32 lines, then scroll; never shrink below what the user dragged to.
    const wanted = Math.min(Math.max(count + 2, 13), 32) * 20 + 22;
    if (!textarea.dataset.resized && Math.abs(textarea.offsetHeight - wanted) > 1) textarea.style.height = `${wanted}px`;
    for (const el of gutterInner.querySelectorAll(".ln.error")) el.classList.remove("error");
    if (errorLine) gutterInner.querySelector(`[data-line="${errorLine}"]`)?.classList.add("error");
    sync();
  }
  function sync() {
    gutterInner.style.transform = `translateY(${-textarea.scrollTop}px)`;
    if (errorLine) {
      const lineHeight = parseFloat(getComputedStyle(root).lineHeight) || 20;
      mark.style.transform = `translateY(${10 + (errorLine - 1) * lineHeight - textarea.scrollTop}px)`;
    }
  }

  textarea.addEventListener("input", () => { renumber(); if (onInput) onInput(); });
  textarea.addEventListener("scroll", sync);
  textarea.addEventListener("keydown", (event) => {
    // Tab indents by two spaces (YAML has no tabs); Escape then Tab leaves the editor.
    if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.metaKey && !textarea.dataset.escaped) {
      event.preventDefault();
      document.execCommand("insertText", false, "  ");
    }
    if (event.key === "Escape") textarea.dataset.escaped = "1";
    else if (event.key !== "Tab") delete textarea.dataset.escaped;
  });
  textarea.addEventListener("pointerdown", (event) => {
    // A drag on the resize handle (bottom-right corner) means the user picks the height from now on.
    const box = textarea.getBoundingClientRect();
    if (event.clientX > box.right - 18 && event.clientY > box.bottom - 18) textarea.dataset.resized = "1";
  });
  new ResizeObserver(sync).observe(textarea);
  renumber();

  return {
    root,
    textarea,
    get value() { return textarea.value; },
    set value(text) { textarea.value = text; renumber(); },
    showError(line) {
      errorLine = line && line <= lineCount ? line : null;
      root.classList.toggle("has-error", Boolean(errorLine));
      root.dataset.errorLine = errorLine || "";
      renumber();
      if (errorLine) {
        const lineHeight = parseFloat(getComputedStyle(root).lineHeight) || 20;
        const top = (errorLine - 1) * lineHeight;
        if (top < textarea.scrollTop || top > textarea.scrollTop + textarea.clientHeight - 2 * lineHeight) {
          textarea.scrollTop = Math.max(0, top - textarea.clientHeight / 3);
        }
      }
    },
    clearError() { this.showError(null); },
    goTo(line) {
      const lines = textarea.value.split("\n");
      let offset = 0;
      for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
      textarea.focus();
      textarea.setSelectionRange(offset, offset + (lines[line - 1] || "").length);
    },
  };
}

/**
 * The line a compose error points at: "line N" in the message (YAML syntax errors), or the
 * dotted path it starts with ("services.web.image: …") looked up in the text.
 */
export function lineForError(message, text) {
  const explicit = /\bline (\d+)/i.exec(message || "");
  if (explicit) return Number(explicit[1]);
  const path = /^([A-Za-z0-9_.\-[\]]+):\s/.exec(message || "");
  if (!path) return null;
  return lineForPath(path[1], text);
}

function lineForPath(path, text) {
  const segments = path.replace(/\[(\d+)\]/g, ".$1").split(".").filter(Boolean);
  const lines = text.split("\n");
  let start = 0;
  let parentIndent = -1;
  let found = null;
  for (const segment of segments) {
    if (/^\d+$/.test(segment)) continue; // list positions: stay at the key
    let hit = null;
    for (let i = start; i < lines.length; i++) {
      const line = lines[i];
      if (!line.trim() || line.trim().startsWith("#")) continue;
      const indent = line.length - line.trimStart().length;
      if (i > start && indent <= parentIndent) break;
      const key = line.trim().replace(/^- /, "").split(":")[0].replace(/^["']|["']$/g, "").trim();
      if (indent > parentIndent && key === segment && line.includes(":")) { hit = i; parentIndent = indent; break; }
    }
    if (hit === null) break;
    found = hit + 1;
    start = hit + 1;
  }
  return found;
}

/** The editor plus its error area: `show(error)` displays a 422 and marks the line. */
export function composeField({ value, onInput, id = "compose" }) {
  const editor = composeEditor({ value, onInput, id });
  const errorArea = h("div", { id: `${id}-error`, class: "compose-error", "aria-live": "polite" });
  return {
    editor,
    errorArea,
    root: h("div", { class: "field" },
      h("label", { for: id }, "Compose file"),
      h("p", { class: "help" }, "docker-compose.yml. ", h("code", {}, "${VAR}"), ", ", h("code", {}, "${VAR:-default}"),
        " and ", h("code", {}, "${VAR:?message}"), " take their values from the variables below and from webhook calls."),
      editor.root,
      errorArea),
    show(error) {
      const line = lineForError(error.message, editor.value);
      editor.showError(line);
      const goTo = line
        ? h("button", { type: "button", class: "btn btn-sm error-line-link", dataset: { line } }, `Go to line ${line}`)
        : null;
      goTo?.addEventListener("click", () => editor.goTo(line));
      errorArea.replaceChildren(alertBox("err",
        h("strong", {}, line ? `Line ${line}: the compose file has a problem` : "The compose file has a problem"),
        h("span", { class: "compose-error-message" }, error.message),
        goTo));
    },
    clear() {
      editor.clearError();
      errorArea.replaceChildren();
    },
  };
}

// ---------- Env variable rows ----------

const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function envRows(initial = {}, { onInput } = {}) {
  const rows = h("div", { class: "kv-rows" });
  const root = h("div", { class: "field env-vars" },
    h("span", { class: "field-label", id: "env-label" }, "Environment variables"),
    h("p", { class: "help" }, "Values for the compose file's variables. A webhook call with ", h("code", {}, "?KEY=value"),
      " changes them for that deploy and, when it succeeds, for later ones."),
    rows);
  const addButton = h("button", { type: "button", class: "btn btn-sm", id: "add-variable" }, icon("plus"), "Add variable");
  root.append(h("div", {}, addButton));
  let count = 0;

  function addRow(key = "", value = "", focus = false) {
    count++;
    const keyInput = h("input", {
      class: "input env-key", value: key, placeholder: "KEY", "aria-label": `Variable ${count} name`,
      spellcheck: "false", autocapitalize: "off", autocomplete: "off",
    });
    const valueInput = h("input", {
      class: "input env-value", value, placeholder: "value", "aria-label": `Variable ${count} value`,
      spellcheck: "false", autocapitalize: "off", autocomplete: "off",
    });
    const remove = h("button", { type: "button", class: "icon-btn", "aria-label": `Remove variable ${count}` }, icon("x"));
    const row = h("div", { class: "kv-row" }, keyInput, valueInput, remove);
    remove.addEventListener("click", () => {
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      if (!rows.children.length) addRow();
      (next?.querySelector("input") || addButton).focus();
      if (onInput) onInput();
    });
    for (const input of [keyInput, valueInput]) input.addEventListener("input", () => {
      keyInput.setAttribute("aria-invalid", String(Boolean(keyInput.value.trim()) && !VARIABLE.test(keyInput.value.trim())));
      if (onInput) onInput();
    });
    rows.append(row);
    if (focus) keyInput.focus();
  }
  addButton.addEventListener("click", () => addRow("", "", true));
  const entries = Object.entries(initial).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length) for (const [k, v] of entries) addRow(k, v);
  else addRow();

  return {
    root,
    /** The variables, or throws an Error naming the first bad name. */
    value() {
      const env = {};
      for (const row of rows.children) {
        const key = row.querySelector(".env-key").value.trim();
        const value = row.querySelector(".env-value").value;
        if (!key && !value) continue;
        if (!VARIABLE.test(key)) throw new Error(`"${key || "(empty)"}" is not a valid variable name: use letters, digits and _, not starting with a digit.`);
        env[key] = value;
      }
      return env;
    },
  };
}

/**
 * A stack's health timeout: the seconds a deploy waits for its containers to run (and be healthy,
 * where they have a healthcheck) before it rolls back; 1 to 3600, 60 by default.
 */
export function healthTimeoutField(initial = 60) {
  const input = h("input", {
    id: "stack-health-timeout", name: "healthTimeout", class: "input num", type: "number", inputmode: "numeric",
    min: 1, max: 3600, step: 1, value: String(initial), required: true, "aria-describedby": "stack-health-timeout-help",
    style: "max-width:10rem",
  });
  const error = h("p", { class: "field-error", id: "stack-health-timeout-error", "aria-live": "polite" });
  const root = h("div", { class: "field" },
    h("label", { for: "stack-health-timeout" }, "Health timeout (seconds)"),
    input,
    h("p", { class: "help", id: "stack-health-timeout-help" },
      "How long a deploy waits for every container to run, and to be healthy where it has a healthcheck, before it rolls back. 1 to 3600; 60 by default."),
    error);
  input.addEventListener("input", () => { error.textContent = ""; input.removeAttribute("aria-invalid"); });
  return {
    root,
    /** The whole seconds, or null after showing why the field's value cannot be used. */
    value() {
      const text = input.value.trim();
      const seconds = Number(text);
      if (!/^[0-9]+$/.test(text) || seconds < 1 || seconds > 3600) {
        error.textContent = "Enter a whole number of seconds from 1 to 3600.";
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return null;
      }
      return seconds;
    },
    /** Shows a server's error about the field. */
    show(message) {
      error.textContent = message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
    },
  };
}
