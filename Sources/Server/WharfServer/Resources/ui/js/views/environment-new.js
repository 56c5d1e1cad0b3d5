// Add environment: name and type, then the exact agent command, then its agent connecting.

import { get, post, enc, agentServerURL } from "../api.js";
import { h, icon, badge, typeTag, pageHead, alertBox, timeEl } from "../dom.js";
import { agentCommands } from "../components.js";

export function renderNewEnvironment(main, ctx) {
  const name = h("input", {
    id: "env-name", name: "name", class: "input", required: true, maxlength: 64, autocomplete: "off",
    placeholder: "prod-1", spellcheck: "false",
  });
  const typeOption = (value, title, text, checked) => h("label", { class: "radio-card" },
    h("input", { type: "radio", name: "type", value, checked, id: `env-type-${value}` }),
    h("div", {}, h("strong", {}, title), h("span", {}, text)));
  const error = h("div", { id: "env-form-error", "aria-live": "assertive" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "create-environment" }, "Create environment");

  const form = h("form", { class: "card", id: "environment-form", novalidate: true },
    h("div", { class: "card-body" },
      h("div", { class: "field" },
        h("label", { for: "env-name" }, "Name"),
        name,
        h("p", { class: "help" }, "Up to 64 characters, unique. Usually the host's name or its role.")),
      h("fieldset", { class: "field", style: "border:0;padding:0;margin:0" },
        h("legend", { class: "field-label", style: "margin-bottom:6px" }, "Type"),
        h("div", { class: "radio-cards" },
          typeOption("agent", "Agent", "Keeps a connection open. Deploys start at once; stacks can have webhooks.", true),
          typeOption("edge", "Edge", "Connects every check-in interval, for hosts behind NAT or on flaky links. No webhooks."))),
      error,
      h("div", { class: "form-actions" }, submit, h("a", { class: "btn btn-ghost", href: "#/environments" }, "Cancel"))));

  const page = h("div", { class: "page narrow" },
    pageHead({
      title: "Add environment",
      crumbs: [h("a", { href: "#/environments" }, "Environments"), h("span", { "aria-hidden": "true" }, "/"), h("span", {}, "New")],
    }),
    form);
  main.append(page);
  name.focus();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.replaceChildren();
    const type = form.querySelector('input[name="type"]:checked').value;
    if (!name.value.trim()) {
      error.append(alertBox("err", "Give the environment a name."));
      name.setAttribute("aria-invalid", "true");
      name.focus();
      return;
    }
    submit.disabled = true;
    try {
      const { environment, joinToken } = await post("/api/environments", { name: name.value.trim(), type });
      form.replaceWith(created(environment, joinToken, await agentServerURL(), ctx));
      page.querySelector("h1").textContent = `Add environment: ${environment.name}`;
    } catch (err) {
      error.append(alertBox("err", err.message));
      name.setAttribute("aria-invalid", String(err.code === "name_taken" || err.code === "invalid_name"));
      name.focus();
      submit.disabled = false;
    }
  });
}

function created(environment, token, serverURL, ctx) {
  const status = h("div", { class: "cell-inline", id: "new-env-status" }, badge(environment.status), h("span", { class: "sub" }, "Waiting for the agent to enrol…"));
  ctx.every(2000, async () => {
    const { environment: env } = await get(`/api/environments/${enc(environment.id)}`, { signal: ctx.signal });
    const detail = env.agent
      ? h("span", { class: "sub" }, `${env.agent.hostname} · wharf-agent ${env.agent.version}`, env.lastSeenAt ? [" · ", timeEl(env.lastSeenAt, { prefix: "seen " })] : null)
      : h("span", { class: "sub" }, env.status === "pending" ? "Waiting for the agent to enrol…" : "");
    status.replaceChildren(badge(env.status), detail);
    return env.status !== "connected";
  });
  return h("div", { class: "card", id: "environment-created" },
    h("div", { class: "card-head" },
      h("div", { class: "section-title" },
        h("h2", {}, "Run the agent"),
        h("p", {}, "Environment ", h("strong", {}, environment.name), " was created. ", typeTag(environment.type))),
      status),
    h("div", { class: "card-body" },
      agentCommands(environment, token, serverURL),
      h("div", { class: "form-actions" },
        h("a", { class: "btn btn-primary", href: "#/environments" }, "Done"),
        h("a", { class: "btn", href: "#/stacks/new" }, icon("plus"), "Add a stack"))));
}
