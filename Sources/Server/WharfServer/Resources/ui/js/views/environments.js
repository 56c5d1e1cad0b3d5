// Environments: type, link status with last-seen time, agent versions; join tokens and removal.

import { get, post, del, enc, agentServerURL } from "../api.js";
import {
  h, icon, badge, typeTag, timeEl, pageHead, skeletonRows, refreshList, alertBox, confirmDialog, toast,
} from "../dom.js";
import { agentCommands } from "../components.js";

const GRID = "env-grid";
const AREAS = ["a-name", "a-type", "a-status", "a-agent", "a-actions"];

export function renderEnvironments(main, ctx) {
  const list = h("div", { class: "list", id: "environment-list", "aria-busy": "true" });
  const skeleton = skeletonRows(3, GRID, Object.assign(["w-60", "w-40", "w-60", "w-90", "w-40"], { areas: AREAS }));
  list.append(header(), ...skeleton);
  const problem = h("div", { id: "environments-error" });

  main.append(h("div", { class: "page" },
    pageHead({
      title: "Environments",
      subtitle: "Docker hosts that run a wharf-agent. Agents keep a connection open; edge agents check in now and then.",
      actions: [h("a", { class: "btn btn-primary", href: "#/environments/new", id: "add-environment" }, icon("plus"), "Add environment")],
    }),
    problem,
    list));

  const body = h("div", { id: "environment-rows" });
  let first = true;
  ctx.every(4000, async () => {
    let environments;
    try {
      ({ environments } = await get("/api/environments", { signal: ctx.signal }));
      problem.replaceChildren();
    } catch (error) {
      if (error.name === "AbortError") return;
      problem.replaceChildren(alertBox("err", `Could not load environments: ${error.message}`));
      return;
    }
    if (first) {
      first = false;
      list.replaceChildren(header(), body);
    }
    refreshList(body, environments, () => environments.length
      ? environments.map((env) => row(env, ctx))
      : emptyState());
    list.setAttribute("aria-busy", "false");
  });
}

function header() {
  return h("div", { class: `list-head ${GRID}`, "aria-hidden": "true" },
    h("div", {}, "Name"), h("div", {}, "Type"), h("div", {}, "Status"), h("div", {}, "Agent"), h("div", {}, ""));
}

function emptyState() {
  return h("div", { class: "empty" },
    icon("server"),
    h("h2", {}, "No environments yet"),
    h("p", {}, "Add one, then run the command it shows on a Docker host."),
    h("a", { class: "btn btn-primary", href: "#/environments/new" }, icon("plus"), "Add environment"));
}

function statusCell(env) {
  let seen;
  if (env.status === "pending") seen = h("span", { class: "sub" }, "waiting for its agent");
  else if (env.lastSeenAt) seen = h("span", { class: "sub" }, timeEl(env.lastSeenAt, { prefix: "seen " }));
  else seen = h("span", { class: "sub" }, "never seen");
  return h("div", { class: "cell a-status" }, h("div", { class: "cell-inline" }, badge(env.status)), seen);
}

function agentCell(env) {
  if (!env.agent) return h("div", { class: "cell a-agent" }, h("span", { class: "sub" }, "No agent enrolled yet"));
  const a = env.agent;
  const versions = [
    a.version && `wharf-agent ${a.version}`,
    a.dockerVersion && `Docker ${a.dockerVersion}`,
    a.composeVersion && `Compose ${a.composeVersion}`,
  ].filter(Boolean);
  return h("div", { class: "cell a-agent" },
    h("span", { class: "mono", title: "Agent host" }, a.hostname || "unknown host"),
    h("span", { class: "sub" }, versions.join(" · ") || "versions not reported"));
}

function row(env, ctx) {
  const tokenButton = h("button", {
    type: "button", class: "btn btn-sm", dataset: { focusKey: `token-${env.id}` },
    title: "Make a new single-use join token for this environment",
  }, icon("key"), "Join token");
  tokenButton.addEventListener("click", () => showJoinToken(env, tokenButton));
  const deleteButton = h("button", {
    type: "button", class: "btn btn-sm btn-danger", dataset: { focusKey: `delete-${env.id}` }, "aria-label": `Delete ${env.name}`,
  }, icon("trash"));
  deleteButton.addEventListener("click", async () => {
    const ok = await confirmDialog({
      title: `Delete ${env.name}?`,
      message: "Its agent will no longer be accepted. Environments that still have stacks cannot be deleted.",
      confirmLabel: "Delete environment", danger: true,
    });
    if (!ok) return;
    try {
      await del(`/api/environments/${enc(env.id)}`);
      toast(`Deleted ${env.name}.`);
      deleteButton.closest(".list-row")?.remove();
    } catch (error) {
      toast(error.message, { tone: "err" });
    }
  });

  return h("div", { class: `list-row ${GRID}`, dataset: { envId: env.id, envName: env.name } },
    h("div", { class: "cell a-name" },
      h("span", { class: "row-title env-name" }, env.name),
      h("span", { class: "sub mono id-line", title: env.id }, env.id)),
    h("div", { class: "cell a-type" }, h("div", { class: "cell-inline" }, typeTag(env.type))),
    statusCell(env),
    agentCell(env),
    h("div", { class: "cell a-actions" }, h("div", { class: "cell-inline" }, tokenButton, deleteButton)));
}

async function showJoinToken(env, button) {
  button.disabled = true;
  let token;
  let serverURL;
  try {
    ({ joinToken: token } = await post(`/api/environments/${enc(env.id)}/join-token`));
    serverURL = await agentServerURL();
  } catch (error) {
    toast(error.message, { tone: "err" });
    return;
  } finally {
    button.disabled = false;
  }
  const close = h("button", { type: "submit", class: "btn btn-primary" }, "Done");
  const dialog = h("dialog", { class: "confirm join-dialog", style: "width:min(720px, calc(100vw - 32px))", "aria-labelledby": "join-title" },
    h("form", { method: "dialog" },
      h("h2", { id: "join-title" }, `Join token for ${env.name}`),
      agentCommands(env, token, serverURL),
      h("div", { class: "form-actions" }, close)));
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}
