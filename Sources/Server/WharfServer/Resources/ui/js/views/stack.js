// A stack: Overview (services, jobs, resolved config) and Edit (compose, variables, Webhooks).

import { get, post, put, del, enc } from "../api.js";
import {
  h, icon, badge, jobBadge, typeTag, timeEl, alertBox, toast, confirmDialog, replace, refreshList, shortId, duration,
} from "../dom.js";
import { composeField, envRows, healthTimeoutField } from "../components.js";
import { previewPanel } from "./preview.js";
import { webhookSection } from "./webhook.js";
import { webhookState } from "./stacks.js";

export function renderStack(main, ctx, id, tab) {
  const crumb = h("span", {}, "Stack");
  const title = h("h1", { id: "stack-title" }, h("span", { class: "skeleton title-skeleton" }));
  const status = h("span", { id: "stack-status" }, h("span", { class: "badge plain" }, "…"));
  const subtitle = h("p", { class: "subtitle", id: "stack-subtitle" }, "\u00a0");
  const redeploy = h("button", { type: "button", class: "btn", id: "redeploy-stack", disabled: true }, icon("play"), "Redeploy");
  const remove = h("button", { type: "button", class: "btn btn-danger", id: "delete-stack", disabled: true }, icon("trash"), "Delete");
  const body = h("div", { class: "page-body", id: "stack-body" });
  const problem = h("div", { id: "stack-error" });
  const tabLink = (name, label, href) => h("a", { href, "aria-current": tab === name ? "page" : null, id: `tab-${name}` }, label);

  main.append(h("div", { class: "page" },
    h("div", { class: "page-head" },
      h("div", { class: "titles" },
        h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/stacks" }, "Stacks"), h("span", { "aria-hidden": "true" }, "/"), crumb),
        h("div", { class: "title-row" }, title, status),
        subtitle),
      h("div", { class: "actions" }, redeploy, remove)),
    h("nav", { class: "tabs", "aria-label": "Stack sections" },
      tabLink("overview", "Overview", `#/stacks/${enc(id)}`),
      tabLink("edit", "Edit", `#/stacks/${enc(id)}/edit`)),
    problem,
    body));

  if (tab === "overview") body.append(overviewSkeleton());
  else body.append(h("div", { class: "card", style: "height:520px" }, h("div", { class: "card-body" }, h("span", { class: "skeleton w-40" }), h("span", { class: "skeleton w-90" }), h("span", { class: "skeleton w-60" }))));

  let stack = null;
  let env = null;

  function header() {
    replace(title, stack.name);
    replace(crumb, stack.name);
    replace(status, badge(stack.status));
    replace(subtitle, "on ", env ? h("a", { href: "#/environments" }, env.name) : "an unknown environment", " ", env ? typeTag(env.type) : null,
      env ? h("span", { class: "sub" }, " · ", badge(env.status)) : null);
    redeploy.disabled = stack.status === "removing";
    remove.disabled = stack.status === "removing";
    document.title = `${stack.name} · Wharf`;
  }

  redeploy.addEventListener("click", async () => {
    redeploy.disabled = true;
    try {
      const { job } = await post(`/api/stacks/${enc(id)}/redeploy`, { pullImage: true });
      toast(`Redeploy of ${stack.name} queued.`, { link: { href: `#/jobs/${enc(job.id)}`, label: "View job" } });
    } catch (error) {
      toast(error.message, { tone: "err" });
    } finally {
      redeploy.disabled = false;
    }
  });
  remove.addEventListener("click", async () => {
    const ok = await confirmDialog({
      title: `Delete ${stack.name}?`,
      message: "The agent takes the stack down on its host (compose down); the stack disappears when that job succeeds. Its webhook stops working.",
      confirmLabel: "Delete stack", danger: true,
    });
    if (!ok) return;
    try {
      const { job } = await del(`/api/stacks/${enc(id)}`);
      toast(`Removing ${stack.name}…`, { link: { href: `#/jobs/${enc(job.id)}`, label: "View job" } });
      location.hash = "/stacks";
    } catch (error) {
      toast(error.message, { tone: "err" });
    }
  });

  (async () => {
    try {
      ({ stack } = await get(`/api/stacks/${enc(id)}`, { signal: ctx.signal }));
      ({ environment: env } = await get(`/api/environments/${enc(stack.environmentId)}`, { signal: ctx.signal }).catch(() => ({ environment: null })));
    } catch (error) {
      if (error.name === "AbortError") return;
      replace(title, error.status === 404 ? "Stack not found" : "Stack");
      replace(status);
      body.replaceChildren(alertBox("err", error.message, h("a", { href: "#/stacks" }, "Back to stacks")));
      return;
    }
    header();
    if (tab === "overview") overview(body, ctx, stack, env, (fresh) => { stack = fresh; header(); });
    else edit(body, ctx, stack, env, (fresh) => { stack = fresh; header(); });
  })();
}

/** The stack was removed while the page was open (its remove job succeeded). */
function gone(body) {
  body.replaceChildren(alertBox("info", h("strong", {}, "This stack was removed"),
    "Its remove job succeeded, so the stack no longer exists.", h("a", { href: "#/stacks" }, "Back to stacks")));
  for (const button of document.querySelectorAll("#redeploy-stack, #delete-stack")) button.disabled = true;
}

function overviewSkeleton() {
  const box = (height) => h("div", { class: "card", style: `min-height:${height}px` },
    h("div", { class: "card-body" }, h("span", { class: "skeleton w-40" }), h("span", { class: "skeleton w-90" }), h("span", { class: "skeleton w-60" })));
  return h("div", { class: "overview-grid" }, box(180), box(180), box(220));
}

function overview(body, ctx, initial, env, onStack) {
  (async () => {
    // Everything the tab shows arrives before it is drawn, so nothing moves once it is.
    let stack = initial;
    let list = [];
    let rendered = null;
    let configError = null;
    try {
      [{ stack }, { jobs: list }, rendered] = await Promise.all([
        get(`/api/stacks/${enc(initial.id)}`, { signal: ctx.signal }),
        get(`/api/jobs?stackId=${enc(initial.id)}&limit=8`, { signal: ctx.signal }),
        get(`/api/stacks/${enc(initial.id)}/config`, { signal: ctx.signal }).catch((error) => { configError = error; return null; }),
      ]);
    } catch (error) {
      if (error.name === "AbortError") return;
      body.replaceChildren(alertBox("err", error.message));
      return;
    }
    if (!ctx.alive) return;
    onStack(stack);

    const services = h("tbody", { id: "stack-services" });
    const servicesCount = h("span", { class: "sub", id: "services-count" });
    const jobs = h("div", { id: "stack-jobs", class: "mini-list" });
    const webhook = h("div", { id: "stack-webhook-summary" });
    const config = h("code", {}, rendered ? rendered.config : configError?.message || "");
    const configHint = h("span", { class: "sub" }, rendered ? `${rendered.services.length} service${rendered.services.length === 1 ? "" : "s"}` : "");

    const fill = () => {
      servicesCount.textContent = stack.services.length ? `${stack.services.length} running` : "";
      refreshList(services, stack.services, () => stack.services.length
        ? stack.services.map((s) => h("tr", {},
          h("td", {}, h("strong", {}, s.name)),
          h("td", { class: "mono" }, s.image),
          h("td", { class: "mono hide-narrow", title: s.imageId || "" }, s.imageId ? s.imageId.replace(/^sha256:/, "").slice(0, 12) : "—"),
          h("td", { class: "num" }, String(s.containers))))
        : h("tr", {}, h("td", { colspan: 4, class: "sub" }, "Nothing deployed yet; the first deploy job puts the services here.")));
      refreshList(webhook, [stack.webhook, env && env.type], () => webhookSummary(stack, env));
      refreshList(jobs, list, () => list.length ? list.map(jobLine) : h("p", { class: "empty" }, "No jobs yet."));
    };
    fill();

    body.replaceChildren(h("div", { class: "overview-grid" },
      h("section", { class: "card", "aria-labelledby": "services-title" },
        h("div", { class: "card-head" }, h("h2", { id: "services-title" }, "Services"), servicesCount),
        h("div", { class: "card-body table-wrap" },
          h("table", { class: "plan-table" },
            h("thead", {}, h("tr", {},
              h("th", { scope: "col" }, "Service"), h("th", { scope: "col" }, "Image"),
              h("th", { scope: "col", class: "hide-narrow" }, "Image ID"), h("th", { scope: "col" }, "Containers"))),
            services))),
      h("section", { class: "card", "aria-labelledby": "webhook-title" },
        h("div", { class: "card-head" }, h("h2", { id: "webhook-title" }, "Webhook"),
          h("a", {
            class: "btn btn-sm", href: `#/stacks/${enc(initial.id)}/edit`,
            onclick: () => sessionStorage.setItem("wharf.scrollTo", "webhooks"),
          }, "Manage")),
        h("div", { class: "card-body" }, webhook)),
      h("section", { class: "card span-2", "aria-labelledby": "jobs-title" },
        h("div", { class: "card-head" }, h("h2", { id: "jobs-title" }, "Recent jobs"),
          h("a", { class: "btn btn-sm", href: `#/jobs?stackId=${enc(initial.id)}` }, "All jobs")),
        jobs),
      h("section", { class: "card span-2", "aria-labelledby": "config-title" },
        h("div", { class: "card-head" },
          h("div", { class: "section-title" }, h("h2", { id: "config-title" }, "Resolved config"), h("p", {}, "The compose file after interpolation with the stack's variables.")),
          configHint),
        h("div", { class: "card-body" }, h("pre", { class: "code resolved", style: "max-height:360px" }, config)))));

    ctx.every(3000, async () => {
      try {
        [{ stack }, { jobs: list }] = await Promise.all([
          get(`/api/stacks/${enc(initial.id)}`, { signal: ctx.signal }),
          get(`/api/jobs?stackId=${enc(initial.id)}&limit=8`, { signal: ctx.signal }),
        ]);
      } catch (error) {
        if (error.status === 404) { gone(body); return false; }
        throw error;
      }
      onStack(stack);
      fill();
    }, { immediate: false });
  })();
}

function webhookSummary(stack, env) {
  if (env && env.type === "edge") return h("p", { class: "sub" }, webhookState(stack, env), " Edge environments cannot have webhooks.");
  if (!stack.webhook) return h("div", { class: "form", style: "gap:10px" }, h("p", {}, webhookState(stack, env)), h("p", { class: "sub" }, "Turn it on under Edit → Webhooks to get a URL that redeploys this stack."));
  return h("div", { class: "form", style: "gap:10px" }, h("p", {}, webhookState(stack, env), " ", h("span", { class: "sub" }, "since ", timeEl(stack.webhook.createdAt))),
    h("code", { class: "chip", title: stack.webhook.url }, stack.webhook.url.replace(/[0-9a-f-]{36}$/i, "••••••••")));
}

export function triggerSummary(job) {
  const params = Object.entries(job.trigger.params || {}).map(([k, v]) => (k === "tag" ? `tag=${v}` : `${k}=${v}`));
  return `${job.trigger.source}${params.length ? " · " + params.join(" ") : ""}`;
}

function jobLine(job) {
  return h("div", { class: "mini-row", dataset: { jobId: job.id } },
    h("a", { href: `#/jobs/${enc(job.id)}`, class: "mono", dataset: { focusKey: job.id } }, shortId(job.id)),
    jobBadge(job.state),
    h("span", { class: "sub trigger" }, `${job.kind} · ${triggerSummary(job)}`),
    h("span", { class: "sub num" }, timeEl(job.createdAt)),
    h("span", { class: "sub num" }, job.finishedAt ? duration(job.startedAt || job.createdAt, job.finishedAt) : ""));
}

function edit(body, ctx, stack, env, onStack) {
  const preview = previewPanel({ title: "Resolved config", hint: "What the agent will deploy after this update." });
  let timer = null;
  const changed = () => {
    preview.stale();
    clearTimeout(timer);
    if (!preview.root.hidden || compose.errorArea.childElementCount) timer = setTimeout(render, 500);
  };
  const compose = composeField({ value: stack.compose, onInput: changed });
  const vars = envRows(stack.env, { onInput: changed });
  const healthTimeout = healthTimeoutField(stack.healthTimeout ?? 60);
  const formError = h("div", { id: "stack-form-error", "aria-live": "assertive" });
  const previewButton = h("button", { type: "button", class: "btn", id: "preview-stack" }, icon("eye"), "Preview config");
  const save = h("button", { type: "submit", class: "btn btn-primary", id: "update-stack" }, icon("play"), "Update the stack");

  function variables() {
    try { return vars.value(); } catch (error) { formError.replaceChildren(alertBox("err", error.message)); return null; }
  }
  async function render() {
    clearTimeout(timer);
    formError.replaceChildren();
    const env = variables();
    if (!env) return false;
    const text = compose.editor.value;
    preview.loading();
    try {
      // What the update would deploy: the stack's pinned images (`?tag=`) included.
      const rendered = await post(`/api/stacks/${enc(stack.id)}/config`, { compose: text, env }, { signal: ctx.signal });
      if (text !== compose.editor.value) return false;
      compose.clear();
      preview.show(rendered);
      return true;
    } catch (error) {
      if (error.name === "AbortError") return false;
      preview.hide();
      if (error.status === 422 && error.code !== "invalid_variable") compose.show(error); else formError.replaceChildren(alertBox("err", error.message));
      return false;
    }
  }
  previewButton.addEventListener("click", async () => { if (await render()) preview.root.scrollIntoView({ block: "nearest", behavior: "smooth" }); });

  const form = h("form", { class: "form", id: "stack-edit-form", novalidate: true },
    h("div", { class: "card" },
      h("div", { class: "card-head" },
        h("div", { class: "section-title" }, h("h2", {}, "Compose file and variables"), h("p", {}, "Updating redeploys the stack at once."))),
      h("div", { class: "card-body" }, compose.root, vars.root, healthTimeout.root)),
    preview.root,
    formError,
    h("div", { class: "form-actions" }, previewButton, save));

  // The definition this form was filled from. A webhook (`?SERVICE_TAG=v5`) or another user may
  // change it while the form is open; an update replaces the whole compose file and env, so it
  // would undo that change without a word. The first click then says what changed instead.
  let loaded = { compose: stack.compose, env: { ...stack.env }, healthTimeout: stack.healthTimeout };
  let overwriteConfirmed = null;
  function changedSinceLoaded(current) {
    const changes = [];
    if (current.compose !== loaded.compose) changes.push("the compose file");
    if (current.healthTimeout !== loaded.healthTimeout) changes.push(`health timeout ${current.healthTimeout} s`);
    const names = [...new Set([...Object.keys(loaded.env), ...Object.keys(current.env || {})])].sort();
    for (const name of names) {
      const now = (current.env || {})[name];
      if (now !== loaded.env[name]) changes.push(now === undefined ? `${name} (removed)` : `${name}=${now}`);
    }
    return changes;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.replaceChildren();
    const env = variables();
    if (!env) return;
    const seconds = healthTimeout.value();
    if (seconds === null) return;
    save.disabled = true;
    try {
      const { stack: current } = await get(`/api/stacks/${enc(stack.id)}`, { signal: ctx.signal });
      const changes = changedSinceLoaded(current);
      const key = JSON.stringify([current.compose, current.env, current.healthTimeout]);
      if (changes.length && overwriteConfirmed !== key) {
        overwriteConfirmed = key;
        formError.replaceChildren(alertBox("warn", h("strong", {}, "The stack changed since this form was opened"),
          h("span", { class: "changed-since" }, `Now: ${changes.join(", ")} (a webhook call or another user). `,
            "Updating replaces the compose file, all variables and the health timeout with this form's. Click “Update the stack” again to do that, or reload the page to start from the stack as it is now.")));
        return;
      }
      const { stack: fresh, job } = await put(`/api/stacks/${enc(stack.id)}`, { compose: compose.editor.value, env, healthTimeout: seconds });
      loaded = { compose: fresh.compose, env: { ...fresh.env }, healthTimeout: fresh.healthTimeout };
      overwriteConfirmed = null;
      onStack(fresh);
      compose.clear();
      toast(`Update of ${fresh.name} queued.`, { link: { href: `#/jobs/${enc(job.id)}`, label: "View job" } });
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error.status === 422) { preview.hide(); compose.show(error); }
      else if (error.code === "invalid_health_timeout") healthTimeout.show(error.message);
      else formError.replaceChildren(alertBox("err", error.message));
    } finally {
      save.disabled = false;
    }
  });

  body.replaceChildren(h("div", { class: "form" }, form, webhookSection(stack, env)));
  if (location.hash.endsWith("#webhooks") || sessionStorage.getItem("wharf.scrollTo") === "webhooks") {
    sessionStorage.removeItem("wharf.scrollTo");
    document.getElementById("webhooks")?.scrollIntoView({ block: "start" });
  }
  ctx.every(5000, async () => {
    try {
      const { stack: fresh } = await get(`/api/stacks/${enc(stack.id)}`, { signal: ctx.signal });
      onStack(fresh);
    } catch (error) {
      if (error.status === 404) { gone(body); return false; }
      throw error;
    }
  }, { immediate: false });
}
