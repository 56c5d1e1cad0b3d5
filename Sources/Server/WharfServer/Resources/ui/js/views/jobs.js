// Jobs: every deploy and remove, newest first, with state badges; filters by state and stack.

import { get, enc } from "../api.js";
import { h, jobBadge, timeEl, duration, pageHead, skeletonRows, refreshList, alertBox, shortId, icon } from "../dom.js";
import { triggerSummary } from "./stack.js";

const GRID = "job-grid";
const AREAS = ["a-id", "a-stack", "a-state", "a-trigger", "a-created", "a-duration"];
const STATES = ["queued", "dispatched", "running", "succeeded", "failed", "rolled_back"];

export function renderJobs(main, ctx) {
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  const state = h("select", { class: "select", id: "job-state-filter", "aria-label": "Filter by state" },
    h("option", { value: "" }, "All states"),
    STATES.map((s) => h("option", { value: s, selected: query.get("state") === s }, s.replace("_", " "))));
  const stackFilter = h("select", { class: "select", id: "job-stack-filter", "aria-label": "Filter by stack" },
    h("option", { value: "" }, "All stacks"));
  const wantedStack = query.get("stackId") || "";
  const list = h("div", { class: "list", id: "job-list", "aria-busy": "true" });
  list.append(header(), ...skeletonRows(4, GRID, Object.assign(["w-60", "w-60", "w-40", "w-90", "w-40", "w-40"], { areas: AREAS })));
  const problem = h("div", { id: "jobs-error" });

  main.append(h("div", { class: "page" },
    pageHead({ title: "Jobs", subtitle: "Deploys and removals, newest first. A job follows its stack's order; different stacks run side by side." }),
    h("div", { class: "filters" }, state, stackFilter),
    problem,
    list));

  const update = () => {
    const params = new URLSearchParams();
    if (state.value) params.set("state", state.value);
    if (stackFilter.value) params.set("stackId", stackFilter.value);
    const qs = params.toString();
    history.replaceState(null, "", `#/jobs${qs ? "?" + qs : ""}`);
    load();
  };
  state.addEventListener("change", update);
  stackFilter.addEventListener("change", update);

  const body = h("div", { id: "job-rows" });
  let first = true;
  let stacksLoaded = false;
  let sequence = 0;

  async function load() {
    const mine = ++sequence;
    const params = new URLSearchParams({ limit: "100" });
    if (state.value) params.set("state", state.value);
    const stackId = stackFilter.value || (!stacksLoaded && wantedStack) || "";
    if (stackId) params.set("stackId", stackId);
    let jobs, stacks;
    try {
      [{ jobs }, { stacks }] = await Promise.all([
        get(`/api/jobs?${params}`, { signal: ctx.signal }),
        get("/api/stacks", { signal: ctx.signal }),
      ]);
      problem.replaceChildren();
    } catch (error) {
      if (error.name === "AbortError") return;
      problem.replaceChildren(alertBox("err", `Could not load jobs: ${error.message}`));
      return;
    }
    if (mine !== sequence) return; // a newer load (after a filter change) wins
    const names = new Map(stacks.map((s) => [s.id, s.name]));
    if (!stacksLoaded || stackFilter.options.length - 1 !== stacks.length) {
      const selected = stackFilter.value || wantedStack;
      stackFilter.replaceChildren(h("option", { value: "" }, "All stacks"),
        stacks.map((s) => h("option", { value: s.id, selected: s.id === selected }, s.name)));
      stacksLoaded = true;
    }
    if (first) {
      first = false;
      list.replaceChildren(header(), body);
    }
    const rows = jobs.map((job) => ({ job, name: names.get(job.stackId) }));
    refreshList(body, rows, () => rows.length ? rows.map(row) : h("div", { class: "empty" }, icon("clock"), h("h2", {}, "No jobs"),
      h("p", {}, state.value || stackFilter.value ? "No job matches these filters." : "Jobs appear here when a stack is deployed, updated or triggered by its webhook.")));
    list.setAttribute("aria-busy", "false");
  }
  ctx.every(2000, load);
}

function header() {
  return h("div", { class: `list-head ${GRID}`, "aria-hidden": "true" },
    h("div", {}, "Job"), h("div", {}, "Stack"), h("div", {}, "State"), h("div", {}, "Trigger"), h("div", {}, "Created"), h("div", {}, "Took"));
}

function row({ job, name }) {
  const took = job.finishedAt ? duration(job.startedAt || job.createdAt, job.finishedAt) : job.startedAt ? "running" : "—";
  return h("div", { class: `list-row link-row ${GRID}`, dataset: { jobId: job.id, state: job.state } },
    h("div", { class: "cell a-id" },
      h("a", { class: "primary-link mono", href: `#/jobs/${enc(job.id)}`, title: job.id, dataset: { focusKey: job.id } }, shortId(job.id)),
      h("span", { class: "sub" }, job.kind, job.coalesced ? ` · +${job.coalesced} coalesced` : "")),
    h("div", { class: "cell a-stack" }, h("a", { href: `#/stacks/${enc(job.stackId)}` }, name || shortId(job.stackId))),
    h("div", { class: "cell a-state" }, h("div", { class: "cell-inline" }, jobBadge(job.state))),
    h("div", { class: "cell a-trigger" }, h("span", { class: "sub trigger", title: job.trigger.remoteAddr ? `from ${job.trigger.remoteAddr}` : "" }, triggerSummary(job))),
    h("div", { class: "cell a-created" }, h("span", { class: "sub num" }, timeEl(job.createdAt))),
    h("div", { class: "cell a-duration" }, h("span", { class: "sub num" }, took)));
}
