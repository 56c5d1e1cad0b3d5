// Stack → Edit → Webhooks: the "Create a stack webhook" toggle, the URL with Copy link, rotation,
// ready-to-paste examples, and the server's refusal on edge environments.

import { post, del, enc } from "../api.js";
import { h, icon, alertBox, codeBlock, copyButton, confirmDialog, toast } from "../dom.js";

/**
 * Names a webhook call cannot set: the server refuses them (`invalid_variable`; StackVariables in
 * the server has the exact list), or they are the call's own parameters.
 */
const UNSETTABLE = /^(PATH|GCONV_PATH|GLIBC_TUNABLES|DOCKER_\w+|COMPOSE_\w*|LD_\w*|DYLD_\w*|PYTHON\w*|BUILDKIT_\w*|tag|pullimage|wait)$/;

/** The first variable the compose file uses that a call can set, for the `?VAR=value` example. */
export function firstVariable(compose) {
  // `$$` is a literal `$` in compose, not a variable.
  const text = (compose || "").replace(/\$\$/g, "");
  for (const match of text.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) {
    if (!UNSETTABLE.test(match[1])) return match[1];
  }
  return "SERVICE_TAG";
}

export function webhookExamples(url, compose) {
  const variable = firstVariable(compose);
  const sep = url.includes("?") ? "&" : "?";
  return [
    ["Redeploy", `curl -X POST "${url}"`, "pulls and recreates the stack", "curl"],
    ["Deploy a tag", `curl -X POST "${url}${sep}tag=v2"`, "every service's image with tag v2", "tag"],
    ["Set a variable", `curl -X POST "${url}${sep}${variable}=development"`, `feeds \${${variable}} in the compose file`, "variable"],
    ["Wait for the result", `curl -fsS -X POST "${url}${sep}wait=120"`, "answers when the job ends: 200 succeeded, 500 failed", "wait"],
    ["HTML form", `<form method="post" action="${url}"><button>Redeploy</button></form>`, "a button on any page", "form"],
    ["HTML form with a tag", `<form method="post" action="${url}${sep}tag=v2"><button>Deploy v2</button></form>`, null, "form-tag"],
  ];
}

export function webhookSection(stack, env) {
  const toggle = h("input", {
    type: "checkbox", role: "switch", id: "webhook-toggle", checked: Boolean(stack.webhook),
    "aria-describedby": "webhook-help webhook-disabled-reason",
  });
  const switchLabel = h("label", { class: "switch", for: "webhook-toggle" },
    toggle, h("span", { class: "track" }, h("span", { class: "thumb" })),
    h("span", { class: "switch-text" }, "Create a stack webhook"));
  const reason = h("div", { id: "webhook-disabled-reason", "aria-live": "polite" });
  const problem = h("div", { id: "webhook-error", "aria-live": "assertive" });
  const details = h("div", { id: "webhook-details", class: "form" });

  const section = h("section", { class: "card", id: "webhooks", "aria-labelledby": "webhooks-title" },
    h("div", { class: "card-head" },
      h("div", { class: "section-title" },
        h("h2", { id: "webhooks-title" }, "Webhooks"),
        h("p", {}, "Redeploy this stack when a registry, a CI job or an HTML form POSTs to a secret URL."))),
    h("div", { class: "card-body" },
      h("div", { class: "switch-row" },
        h("div", { class: "field" },
          switchLabel,
          h("p", { class: "help", id: "webhook-help" },
            "Anyone who knows the URL can redeploy the stack, so treat it like a password. ",
            "Query parameters pick a tag (", h("code", {}, "?tag=v2"), ") or set variables (", h("code", {}, "?KEY=value"), ")."))),
      reason,
      problem,
      details));

  let url = stack.webhook ? stack.webhook.url : null;

  function busy(on) {
    switchLabel.setAttribute("aria-busy", String(on));
    toggle.disabled = on;
  }

  function renderDetails() {
    section.dataset.webhook = url ? "on" : "off";
    if (!url) {
      details.replaceChildren();
      return;
    }
    const urlInput = h("input", {
      id: "webhook-url", class: "input mono", readOnly: true, value: url, "aria-label": "Webhook URL",
      spellcheck: "false",
    });
    urlInput.addEventListener("focus", () => urlInput.select());
    const copyStatus = h("p", { class: "copy-status", id: "copy-status", role: "status" });
    const copy = copyButton(() => url, {
      label: "Copy link", small: false, id: "copy-webhook-url", selectFrom: () => urlInput,
      onCopied: (ok) => {
        if (ok) copyStatus.replaceChildren(icon("check"), "Link copied to the clipboard."); else copyStatus.replaceChildren();
        if (ok) setTimeout(() => { if (copyStatus.isConnected) copyStatus.replaceChildren(); }, 4000);
      },
    });
    copy.classList.add("btn-primary");
    const rotate = h("button", { type: "button", class: "btn", id: "rotate-webhook" }, icon("rotate"), "Rotate");
    rotate.addEventListener("click", async () => {
      const ok = await confirmDialog({
        title: "Rotate the webhook URL?",
        message: "Wharf makes a new URL. The current one stops working at once and answers 404; update every registry, CI job and form that uses it.",
        confirmLabel: "Rotate URL",
      });
      if (!ok) return;
      rotate.disabled = true;
      try {
        ({ url } = await post(`/api/stacks/${enc(stack.id)}/webhook/rotate`));
        renderDetails();
        toast("New webhook URL made; the old one no longer works.");
        document.getElementById("webhook-url")?.focus();
      } catch (error) {
        problem.replaceChildren(alertBox("err", error.message));
        rotate.disabled = false;
      }
    });

    details.replaceChildren(
      h("div", { class: "field" },
        h("label", { for: "webhook-url" }, "Webhook URL"),
        h("div", { class: "url-row" }, urlInput, copy, rotate),
        copyStatus),
      h("div", { class: "examples", id: "webhook-examples" },
        h("h3", {}, "Ready-to-paste examples"),
        ...webhookExamples(url, stack.compose).map(([title, code, note, id]) => codeBlock(title, code, { note, testId: id }))));
  }

  function disableForEdge(message) {
    toggle.checked = false;
    toggle.disabled = true;
    url = null;
    section.dataset.webhook = "unavailable";
    reason.replaceChildren(alertBox("warn", h("strong", {}, "Not available on edge environments"), h("span", { class: "reason-text" }, message)));
    renderDetails();
    section.dataset.webhook = "unavailable";
  }

  toggle.addEventListener("change", async () => {
    problem.replaceChildren();
    if (toggle.checked) {
      busy(true);
      try {
        ({ url } = await post(`/api/stacks/${enc(stack.id)}/webhook`));
        busy(false);
        toggle.checked = true;
        renderDetails();
        toggle.focus();
      } catch (error) {
        busy(false);
        toggle.checked = false;
        if (error.code === "edge_environment") disableForEdge(error.message);
        else problem.replaceChildren(alertBox("err", error.message));
      }
      return;
    }
    toggle.checked = true; // stays on until the user confirms
    const ok = await confirmDialog({
      title: "Turn off the webhook?",
      message: "The URL stops working at once: calls to it will answer 404. Turning the webhook on again makes a new URL.",
      confirmLabel: "Turn off webhook",
      danger: true,
    });
    if (!ok) { toggle.focus(); return; }
    busy(true);
    try {
      await del(`/api/stacks/${enc(stack.id)}/webhook`);
      url = null;
      busy(false);
      toggle.checked = false;
      renderDetails();
      toast("Webhook turned off; its URL no longer works.");
      toggle.focus();
    } catch (error) {
      busy(false);
      problem.replaceChildren(alertBox("err", error.message));
    }
  });

  renderDetails();

  // An edge environment cannot have webhooks. Ask the server, so the reason shown is its own words.
  if (env && env.type === "edge" && !url) {
    toggle.disabled = true;
    section.dataset.webhook = "checking";
    reason.replaceChildren(alertBox("info", h("strong", {}, "Edge environment"), h("span", {}, "Asking the server whether this stack can have a webhook…")));
    (async () => {
      try {
        ({ url } = await post(`/api/stacks/${enc(stack.id)}/webhook`));
        reason.replaceChildren();
        toggle.disabled = false;
        toggle.checked = true;
        renderDetails();
      } catch (error) {
        if (error.code === "edge_environment") disableForEdge(error.message);
        else {
          reason.replaceChildren();
          toggle.disabled = false;
          section.dataset.webhook = "off";
          problem.replaceChildren(alertBox("err", error.message));
        }
      }
    })();
  }
  return section;
}
