// Entry point: hash routes, the signed-in shell, and each view's lifetime (polling stops on leave).

import { serverInfo, session, setUnauthorizedHandler } from "./api.js";
import { renderSignIn } from "./views/signin.js";
import { renderEnvironments } from "./views/environments.js";
import { renderNewEnvironment } from "./views/environment-new.js";
import { renderStacks } from "./views/stacks.js";
import { renderNewStack } from "./views/stack-new.js";
import { renderStack } from "./views/stack.js";
import { renderJobs } from "./views/jobs.js";
import { renderJob } from "./views/job.js";

const routes = [
  [/^\/signin$/, renderSignIn, null],
  [/^\/environments$/, renderEnvironments, "environments"],
  [/^\/environments\/new$/, renderNewEnvironment, "environments"],
  [/^\/stacks$/, renderStacks, "stacks"],
  [/^\/stacks\/new$/, renderNewStack, "stacks"],
  [/^\/stacks\/([^/]+)$/, (main, ctx, id) => renderStack(main, ctx, id, "overview"), "stacks"],
  [/^\/stacks\/([^/]+)\/edit$/, (main, ctx, id) => renderStack(main, ctx, id, "edit"), "stacks"],
  [/^\/jobs$/, renderJobs, "jobs"],
  [/^\/jobs\/([^/]+)$/, renderJob, "jobs"],
];

const main = document.getElementById("main");
const shell = document.getElementById("shell");
let current = null;
let signedOutReason = "";

/** What a view gets: timers and fetches that end when the user navigates away. */
class ViewContext {
  constructor() {
    this.alive = true;
    this.timers = new Set();
    this.controller = new AbortController();
    this.cleanups = [];
  }
  get signal() { return this.controller.signal; }
  /** Runs fn now and then every ms after each run finishes, until the view ends or fn returns false. */
  every(ms, fn, { immediate = true } = {}) {
    const tick = async () => {
      if (!this.alive) return;
      let again = true;
      try { again = (await fn()) !== false; } catch (error) { if (error.name !== "AbortError") console.warn(error); }
      if (this.alive && again && !document.hidden) this.timers.add(setTimeout(tick, ms));
      else if (this.alive && again) this.timers.add(setTimeout(tick, ms * 4));
    };
    if (immediate) tick();
    else this.timers.add(setTimeout(tick, ms));
  }
  onLeave(fn) { this.cleanups.push(fn); }
  end() {
    this.alive = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.controller.abort();
    for (const fn of this.cleanups) try { fn(); } catch { /* ignore */ }
  }
}

export function navigate(path) {
  if (location.hash === "#" + path) route();
  else location.hash = path;
}

function route() {
  const path = ((location.hash || "").replace(/^#/, "").split("?")[0]) || "/stacks";
  if (current) current.end();
  current = new ViewContext();

  if (!session.token && path !== "/signin") {
    const next = path;
    shell.dataset.signedIn = "false";
    renderSignIn(main, current, { next, reason: signedOutReason });
    signedOutReason = "";
    return;
  }
  if (path === "/signin") {
    shell.dataset.signedIn = "false";
    renderSignIn(main, current, { next: "/stacks" });
    return;
  }
  shell.dataset.signedIn = "true";
  for (const [pattern, view, nav] of routes) {
    const match = path.match(pattern);
    if (!match) continue;
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    main.replaceChildren();
    view(main, current, ...match.slice(1).map(decodeURIComponent));
    loadVersion();
    return;
  }
  location.replace("#/stacks");
}

let versionLoaded = false;
async function loadVersion() {
  if (versionLoaded) return;
  versionLoaded = true;
  try {
    const health = await serverInfo();
    document.getElementById("server-version").textContent = `wharf-server ${health.version}`;
  } catch { versionLoaded = false; }
}

setUnauthorizedHandler(() => {
  session.clear();
  signedOutReason = "The server no longer accepts this token. Sign in again.";
  route();
});

document.getElementById("sign-out").addEventListener("click", () => {
  session.clear();
  location.hash = "/signin";
});

// Focus the page heading after navigation so keyboard and screen-reader users land on the new page.
window.addEventListener("hashchange", () => {
  route();
  requestAnimationFrame(() => main.focus({ preventScroll: true }));
  window.scrollTo(0, 0);
});
route();
