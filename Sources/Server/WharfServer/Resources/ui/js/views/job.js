// A job: trigger and parameters, timings, plan, result or error, and its log, followed live until it ends.

import { get, enc } from "../api.js";
import { h, jobBadge, absTime, duration, timeEl, replace, alertBox, typeTag, refreshList } from "../dom.js";

const FINAL = new Set(["succeeded", "failed", "rolled_back"]);

export function renderJob(main, ctx, id) {
  const title = h("h1", { class: "mono job-title" }, id);
  const state = h("span", { id: "job-state" }, h("span", { class: "badge plain" }, "…"));
  const subtitle = h("p", { class: "subtitle", id: "job-subtitle" }, "\u00a0");
  const live = h("span", { class: "live", id: "log-live", role: "status" }, h("span", { class: "live-dot" }), "Loading…");
  const log = h("pre", { class: "log", id: "job-log", tabindex: "0", "aria-label": "Job log", "aria-live": "off" }, h("span", { class: "log-empty" }, "Loading the log…"));
  const trigger = h("dl", { class: "kv", id: "job-trigger" });
  const timings = h("dl", { class: "kv", id: "job-timings" });
  const outcome = h("div", { id: "job-outcome" });
  const problem = h("div", { id: "job-error-load" });
  const summary = h("div", { id: "job-summary", class: "job-summary" });
  const body = h("div", { class: "page-body", id: "job-body" },
    h("div", { class: "card", style: "min-height:240px" }, h("div", { class: "card-body" },
      h("span", { class: "skeleton w-40" }), h("span", { class: "skeleton w-90" }), h("span", { class: "skeleton w-60" }))));

  main.append(h("div", { class: "page" },
    h("div", { class: "page-head" },
      h("div", { class: "titles" },
        h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/jobs" }, "Jobs"), h("span", { "aria-hidden": "true" }, "/"), h("span", {}, "Job")),
        h("div", { class: "title-row job-title-row" }, title, state),
        subtitle)),
    problem,
    body));

  // The sections are drawn once the first answers are in, so nothing moves when they arrive.
  const sections = () => [
    summary,
    h("div", { class: "grid-2 job-meta" },
      h("section", { class: "card", "aria-labelledby": "trigger-title" },
        h("div", { class: "card-head" }, h("h2", { id: "trigger-title" }, "Trigger")),
        h("div", { class: "card-body" }, trigger)),
      h("section", { class: "card", "aria-labelledby": "timings-title" },
        h("div", { class: "card-head" }, h("h2", { id: "timings-title" }, "Timings")),
        h("div", { class: "card-body" }, timings))),
    h("section", { class: "card job-log-card", "aria-labelledby": "log-title" },
      h("div", { class: "card-head" }, h("h2", { id: "log-title" }, "Log"), live),
      h("div", { class: "card-body" }, log)),
    h("section", { class: "card job-outcome-card", "aria-labelledby": "outcome-title" },
      h("div", { class: "card-head" }, h("h2", { id: "outcome-title" }, "Plan and result")),
      h("div", { class: "card-body" }, outcome)),
  ];

  let stackName = null;
  let envInfo = null;
  let lastLog = null;
  let drawn = false;

  ctx.every(1000, async () => {
    let job, text;
    try {
      [{ job }, text] = await Promise.all([
        get(`/api/jobs/${enc(id)}`, { signal: ctx.signal }),
        get(`/api/jobs/${enc(id)}/log`, { signal: ctx.signal, text: true }),
      ]);
    } catch (error) {
      if (error.name === "AbortError") return false;
      problem.replaceChildren(alertBox("err", error.message, error.status === 404 ? h("a", { href: "#/jobs" }, "Back to jobs") : null));
      if (error.status === 404) { body.replaceChildren(); return false; }
      return true;
    }
    problem.replaceChildren();
    if (stackName === null) {
      stackName = "";
      const [stack, env] = await Promise.all([
        get(`/api/stacks/${enc(job.stackId)}`, { signal: ctx.signal }).catch(() => null),
        get(`/api/environments/${enc(job.environmentId)}`, { signal: ctx.signal }).catch(() => null),
      ]);
      stackName = stack ? stack.stack.name : "";
      envInfo = env ? env.environment : null;
    }
    document.title = `${job.kind} ${stackName || job.stackId} · Wharf`;
    replace(state, jobBadge(job.state));
    replace(subtitle, job.kind === "remove" ? "Remove " : "Deploy ",
      h("a", { href: `#/stacks/${enc(job.stackId)}` }, stackName || job.stackId),
      " on ", envInfo ? envInfo.name : job.environmentId, " ", envInfo ? typeTag(envInfo.type) : null);
    refreshList(trigger, job.trigger, () => triggerRows(job));
    refreshList(timings, [job.createdAt, job.startedAt, job.finishedAt, job.state], () => timingRows(job));
    refreshList(outcome, [job.plan, job.result, job.state], () => outcomeView(job));
    refreshList(summary, [job.state, job.error, job.coalesced], () => summaryView(job));
    const done = FINAL.has(job.state);
    live.classList.toggle("done", done);
    replace(live, h("span", { class: "live-dot" }), done ? `Finished ${absTime(job.finishedAt)}` : "Following live");
    live.dataset.following = String(!done);
    if (!drawn) {
      drawn = true;
      body.replaceChildren(...sections());
    }
    showLog(text, done);
    return !done;
  });

  function showLog(text, final) {
    if (text === lastLog) return;
    const first = lastLog === null;
    lastLog = text;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    if (!text) log.replaceChildren(h("span", { class: "log-empty" }, final ? "This job wrote no log." : "Waiting for the agent's first log lines…"));
    else log.textContent = text;
    if (atBottom || first) log.scrollTop = log.scrollHeight;
  }
}

function triggerRows(job) {
  const t = job.trigger;
  const params = Object.entries(t.params || {});
  return [
    h("dt", {}, "Source"), h("dd", { id: "job-source" }, h("strong", {}, t.source)),
    h("dt", {}, "Parameters"), h("dd", { id: "job-params" }, params.length
      ? h("div", { class: "chips" }, params.map(([k, v]) => h("code", { class: "chip", dataset: { param: k } }, `${k}=${v}`)))
      : h("span", { class: "sub" }, "none")),
    h("dt", {}, "From"), h("dd", { class: "mono" }, t.remoteAddr || "—"),
    t.userAgent ? [h("dt", {}, "User agent"), h("dd", { class: "sub" }, t.userAgent)] : null,
    job.coalesced ? [h("dt", {}, "Coalesced"), h("dd", {}, `${job.coalesced} more call${job.coalesced === 1 ? "" : "s"} joined this job`)] : null,
  ];
}

function timingRows(job) {
  const queuedFor = job.startedAt ? duration(job.createdAt, job.startedAt) : null;
  const ran = job.startedAt && job.finishedAt ? duration(job.startedAt, job.finishedAt) : null;
  return [
    h("dt", {}, "Created"), h("dd", {}, absTime(job.createdAt), " ", h("span", { class: "sub" }, "(", timeEl(job.createdAt), ")")),
    h("dt", {}, "Started"), h("dd", {}, job.startedAt ? absTime(job.startedAt) : h("span", { class: "sub" }, "not yet"), queuedFor ? h("span", { class: "sub" }, ` · waited ${queuedFor}`) : null),
    h("dt", {}, "Finished"), h("dd", {}, job.finishedAt ? absTime(job.finishedAt) : h("span", { class: "sub" }, "not yet")),
    h("dt", {}, "Took"), h("dd", { id: "job-duration" }, ran || (job.finishedAt ? duration(job.createdAt, job.finishedAt) : "—")),
  ];
}

function summaryView(job) {
  const count = (job.result?.services || job.plan?.services || []).length;
  switch (job.state) {
    case "succeeded":
      return alertBox("ok", h("strong", {}, "Succeeded"),
        job.kind === "remove" ? "The stack was taken down and removed." : `${count} service${count === 1 ? "" : "s"} deployed.`);
    case "failed":
    case "rolled_back":
      return alertBox("err", h("strong", {}, job.state === "rolled_back" ? "Rolled back" : "Failed", job.error ? [" · ", h("code", {}, job.error.code)] : null),
        h("span", { id: "job-error-message" }, job.error ? job.error.message : "The agent reported no reason."));
    case "queued":
      return alertBox("info", h("strong", {}, "Queued"), "Waiting for the environment's agent to take it. Edge agents take jobs at their next check-in.");
    case "dispatched":
      return alertBox("info", h("strong", {}, "Dispatched"), "Sent to the agent; waiting for it to start.");
    default:
      return alertBox("info", h("strong", {}, "Running"), "The agent is deploying; the log below follows along.");
  }
}

function outcomeView(job) {
  const result = new Map((job.result?.services || []).map((s) => [s.name, s]));
  const table = h("table", { class: "plan-table", id: "job-plan" },
    h("thead", {}, h("tr", {}, ["Service", "Planned image", "Result"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, (job.plan?.services || []).map((s) => {
      const r = result.get(s.name);
      return h("tr", {},
        h("td", {}, h("strong", {}, s.name)),
        h("td", { class: "mono" }, s.image),
        h("td", { class: "mono" }, r ? (r.imageId ? r.imageId.replace(/^sha256:/, "").slice(0, 12) : r.image) : h("span", { class: "sub" }, FINAL.has(job.state) ? "—" : "pending")));
    })));
  const parts = [table];
  return h("div", { class: "form", style: "gap:16px" }, parts);
}
