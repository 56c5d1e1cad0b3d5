// Stacks: environment, status, services with images, last job and webhook state.

import { get, enc } from "../api.js";
import {
  h, icon, badge, jobBadge, typeTag, timeEl, pageHead, skeletonRows, refreshList, alertBox,
} from "../dom.js";

const GRID = "stack-grid";
const AREAS = ["a-name", "a-env", "a-status", "a-services", "a-job", "a-webhook"];

/** Jobs by id for the stacks' last jobs: one list call, then single fetches for older ones. */
export async function lastJobs(stacks, signal) {
  const { jobs } = await get("/api/jobs?limit=200", { signal });
  const byId = new Map(jobs.map((job) => [job.id, job]));
  const missing = stacks.map((s) => s.lastJobId).filter((id) => id && !byId.has(id));
  await Promise.all(missing.map(async (id) => {
    try { byId.set(id, (await get(`/api/jobs/${enc(id)}`, { signal })).job); } catch { /* gone */ }
  }));
  return byId;
}

export function renderStacks(main, ctx) {
  const list = h("div", { class: "list", id: "stack-list", "aria-busy": "true" });
  list.append(header(), ...skeletonRows(3, GRID, Object.assign(["w-60", "w-60", "w-40", "w-90", "w-60", "w-40"], { areas: AREAS })));
  const problem = h("div", { id: "stacks-error" });
  main.append(h("div", { class: "page" },
    pageHead({
      title: "Stacks",
      subtitle: "Compose projects and where they run. Open one to edit it or to turn on its webhook.",
      actions: [h("a", { class: "btn btn-primary", href: "#/stacks/new", id: "add-stack" }, icon("plus"), "Add stack")],
    }),
    problem,
    list));

  const body = h("div", { id: "stack-rows" });
  let first = true;
  ctx.every(4000, async () => {
    let stacks, environments, jobs;
    try {
      [{ stacks }, { environments }] = await Promise.all([
        get("/api/stacks", { signal: ctx.signal }),
        get("/api/environments", { signal: ctx.signal }),
      ]);
      jobs = await lastJobs(stacks, ctx.signal);
      problem.replaceChildren();
    } catch (error) {
      if (error.name === "AbortError") return;
      problem.replaceChildren(alertBox("err", `Could not load stacks: ${error.message}`));
      return;
    }
    if (first) {
      first = false;
      list.replaceChildren(header(), body);
    }
    const envs = new Map(environments.map((e) => [e.id, e]));
    const rows = stacks.map((stack) => ({ stack, env: envs.get(stack.environmentId), job: jobs.get(stack.lastJobId) }));
    refreshList(body, rows, () => rows.length ? rows.map(row) : emptyState(environments.length));
    list.setAttribute("aria-busy", "false");
  });
}

function header() {
  return h("div", { class: `list-head ${GRID}`, "aria-hidden": "true" },
    h("div", {}, "Name"), h("div", {}, "Environment"), h("div", {}, "Status"), h("div", {}, "Services"),
    h("div", {}, "Last job"), h("div", {}, "Webhook"));
}

function emptyState(environmentCount) {
  return h("div", { class: "empty" },
    icon("stack"),
    h("h2", {}, "No stacks yet"),
    environmentCount
      ? h("p", {}, "A stack is a compose file deployed to one environment.")
      : h("p", {}, "Stacks run on environments. Add an environment first, then a stack."),
    environmentCount
      ? h("a", { class: "btn btn-primary", href: "#/stacks/new" }, icon("plus"), "Add stack")
      : h("a", { class: "btn btn-primary", href: "#/environments/new" }, icon("plus"), "Add environment"));
}

export function servicesList(services, { empty = "Not deployed yet" } = {}) {
  if (!services || !services.length) return h("span", { class: "sub" }, empty);
  return h("div", { class: "services" }, services.map((service) =>
    h("div", { class: "service" },
      h("span", { class: "svc-name" }, service.name),
      h("span", { class: "svc-image", title: service.image }, service.image))));
}

export function webhookState(stack, env) {
  if (env && env.type === "edge") {
    return h("span", { class: "webhook-state", title: "Edge environments cannot have webhooks" }, icon("off"), "n/a");
  }
  return stack.webhook
    ? h("span", { class: "webhook-state on", title: `Enabled ${new Date(stack.webhook.createdAt).toLocaleString()}` }, icon("link"), "On")
    : h("span", { class: "webhook-state" }, icon("off"), "Off");
}

function row({ stack, env, job }) {
  return h("div", { class: `list-row link-row ${GRID}`, dataset: { stackId: stack.id, stackName: stack.name } },
    h("div", { class: "cell a-name" },
      h("a", { class: "primary-link", href: `#/stacks/${enc(stack.id)}`, dataset: { focusKey: `stack-${stack.id}` } }, stack.name),
      stack.services.length ? h("span", { class: "sub" }, `${stack.services.length} service${stack.services.length === 1 ? "" : "s"}`) : null),
    h("div", { class: "cell a-env" },
      h("div", { class: "cell-inline" }, h("span", {}, env ? env.name : "unknown"), env ? typeTag(env.type) : null)),
    h("div", { class: "cell a-status" }, h("div", { class: "cell-inline" }, badge(stack.status))),
    h("div", { class: "cell a-services" }, servicesList(stack.services)),
    h("div", { class: "cell a-job" }, job
      ? [h("div", { class: "cell-inline" },
        h("span", { class: "cell-label" }, "Last job"),
        h("a", { href: `#/jobs/${enc(job.id)}`, title: `${job.kind} ${job.id}` }, jobBadge(job.state))),
      h("span", { class: "sub" }, `${job.kind} · `, timeEl(job.finishedAt || job.createdAt))]
      : h("span", { class: "sub" }, "—")),
    h("div", { class: "cell a-webhook" }, h("div", { class: "cell-inline" }, h("span", { class: "cell-label" }, "Webhook"), webhookState(stack, env))));
}
