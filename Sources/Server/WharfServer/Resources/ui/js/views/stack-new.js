// Add stack: name, environment, compose editor and variables; preview the resolved config, then deploy.

import { get, post, enc } from "../api.js";
import { h, icon, pageHead, alertBox, toast } from "../dom.js";
import { composeField, envRows, healthTimeoutField } from "../components.js";
import { previewPanel } from "./preview.js";

const EXAMPLE = `services:
  web:
    image: nginx:\${TAG:-1.27}
    ports:
      - "8080:80"
    restart: unless-stopped
`;

export function renderNewStack(main, ctx) {
  const name = h("input", {
    id: "stack-name", name: "name", class: "input mono", required: true, maxlength: 63, autocomplete: "off",
    spellcheck: "false", autocapitalize: "off", placeholder: "web", pattern: "[a-z0-9][a-z0-9_-]*",
  });
  const environment = h("select", { id: "stack-environment", name: "environmentId", class: "select", required: true },
    h("option", { value: "" }, "Loading environments…"));
  const nameError = h("p", { class: "field-error", id: "stack-name-error", "aria-live": "polite" });
  const envHelp = h("p", { class: "help", id: "stack-environment-help" }, "Where the stack runs.");

  const preview = previewPanel();
  let previewed = false;
  let timer = null;
  const changed = () => {
    preview.stale();
    deploy.disabled = true;
    clearTimeout(timer);
    if (previewed || compose.errorArea.childElementCount) timer = setTimeout(render, 500);
  };
  const compose = composeField({ value: EXAMPLE, onInput: changed });
  const vars = envRows({}, { onInput: changed });
  const healthTimeout = healthTimeoutField();
  const formError = h("div", { id: "stack-form-error", "aria-live": "assertive" });
  const previewButton = h("button", { type: "button", class: "btn", id: "preview-stack" }, icon("eye"), "Preview config");
  const deploy = h("button", { type: "submit", class: "btn btn-primary", id: "deploy-stack", disabled: true }, icon("play"), "Deploy stack");

  const form = h("form", { class: "form", id: "stack-form", novalidate: true },
    h("div", { class: "card" },
      h("div", { class: "card-body" },
        h("div", { class: "grid-2" },
          h("div", { class: "field" },
            h("label", { for: "stack-name" }, "Name"),
            name,
            h("p", { class: "help" }, "Lowercase letters, digits, _ and -; the compose project name."),
            nameError),
          h("div", { class: "field" },
            h("label", { for: "stack-environment" }, "Environment"),
            environment,
            envHelp)))),
    h("div", { class: "card" },
      h("div", { class: "card-body" }, compose.root, vars.root, healthTimeout.root)),
    preview.root,
    formError,
    h("div", { class: "form-actions" },
      previewButton, deploy,
      h("span", { class: "sub", id: "deploy-hint" }, "Preview the resolved config to deploy."),
      h("span", { class: "spacer" }),
      h("a", { class: "btn btn-ghost", href: "#/stacks" }, "Cancel")));

  main.append(h("div", { class: "page" },
    pageHead({
      title: "Add stack",
      crumbs: [h("a", { href: "#/stacks" }, "Stacks"), h("span", { "aria-hidden": "true" }, "/"), h("span", {}, "New")],
    }),
    form));
  name.focus();

  (async () => {
    try {
      const { environments } = await get("/api/environments", { signal: ctx.signal });
      if (!environments.length) {
        environment.replaceChildren(h("option", { value: "" }, "No environments yet"));
        envHelp.replaceChildren("Add an environment first: ", h("a", { href: "#/environments/new" }, "Add environment"), ".");
        return;
      }
      const wanted = new URLSearchParams(location.hash.split("?")[1] || "").get("environmentId");
      environment.replaceChildren(
        h("option", { value: "", disabled: true, selected: environments.length > 1 && !wanted }, "Choose an environment"),
        ...environments.map((env) => h("option", {
          value: env.id, selected: env.id === wanted || environments.length === 1,
        }, `${env.name} — ${env.type}, ${env.status}`)));
    } catch (error) {
      if (error.name !== "AbortError") envHelp.replaceChildren(alertBox("err", `Could not load environments: ${error.message}`));
    }
  })();

  function variables() {
    try {
      return vars.value();
    } catch (error) {
      formError.replaceChildren(alertBox("err", error.message));
      return null;
    }
  }

  async function render() {
    clearTimeout(timer);
    formError.replaceChildren();
    const env = variables();
    if (!env) return false;
    const text = compose.editor.value;
    preview.loading();
    try {
      const rendered = await post("/api/compose/render", { compose: text, env }, { signal: ctx.signal });
      if (text !== compose.editor.value) return false;
      compose.clear();
      preview.show(rendered);
      previewed = true;
      deploy.disabled = false;
      document.getElementById("deploy-hint").textContent = "The resolved config is shown above.";
      return true;
    } catch (error) {
      if (error.name === "AbortError") return false;
      preview.hide();
      if (error.status === 422 && error.code !== "invalid_variable") compose.show(error);
      else formError.replaceChildren(alertBox("err", error.message));
      return false;
    }
  }

  previewButton.addEventListener("click", async () => {
    if (await render()) preview.root.scrollIntoView({ block: "nearest", behavior: "smooth" });
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.replaceChildren();
    nameError.textContent = "";
    name.removeAttribute("aria-invalid");
    if (!/^[a-z0-9][a-z0-9_-]*$/.test(name.value)) {
      nameError.textContent = "Use lowercase letters, digits, _ and -, starting with a letter or digit.";
      name.setAttribute("aria-invalid", "true");
      name.focus();
      return;
    }
    if (!environment.value) {
      formError.replaceChildren(alertBox("err", "Choose the environment the stack runs on."));
      environment.focus();
      return;
    }
    const env = variables();
    if (!env) return;
    const seconds = healthTimeout.value();
    if (seconds === null) return;
    deploy.disabled = true;
    try {
      const { stack, job } = await post("/api/stacks", {
        name: name.value, environmentId: environment.value, compose: compose.editor.value, env, healthTimeout: seconds,
      });
      toast(`Stack ${stack.name} created; its first deploy is queued.`, { link: { href: `#/jobs/${enc(job.id)}`, label: "View job" } });
      location.hash = `/stacks/${enc(stack.id)}`;
    } catch (error) {
      deploy.disabled = false;
      if (error.status === 422) {
        preview.hide();
        compose.show(error);
        compose.editor.textarea.focus();
      } else if (error.code === "invalid_health_timeout") {
        healthTimeout.show(error.message);
      } else if (error.code === "invalid_name" || error.code === "name_taken") {
        nameError.textContent = error.message;
        name.setAttribute("aria-invalid", "true");
        name.focus();
      } else {
        formError.replaceChildren(alertBox("err", error.message));
      }
    }
  });
}
