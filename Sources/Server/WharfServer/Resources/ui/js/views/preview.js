// The resolved compose config (POST /api/compose/render, GET or POST /api/stacks/{id}/config).

import { h } from "../dom.js";

export function previewPanel({ title = "Resolved config", hint = "What the agent will deploy, after interpolation." } = {}) {
  const status = h("span", { class: "sub preview-status", "aria-live": "polite" });
  const services = h("tbody");
  const config = h("code", { id: "resolved-config" });
  const root = h("section", { class: "card preview", id: "preview", hidden: true, "aria-labelledby": "preview-title" },
    h("div", { class: "card-head" },
      h("div", { class: "section-title" }, h("h2", { id: "preview-title" }, title), h("p", {}, hint)),
      status),
    h("div", { class: "card-body" },
      h("table", { class: "plan-table", id: "preview-services" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Service"), h("th", { scope: "col" }, "Image"))),
        services),
      h("pre", { class: "code resolved" }, config)));
  return {
    root,
    loading() { status.textContent = "Rendering…"; root.style.opacity = "0.7"; },
    stale() { if (!root.hidden) { status.textContent = "Out of date"; root.style.opacity = "0.7"; } },
    show({ config: yaml, services: list }) {
      root.hidden = false;
      root.style.opacity = "";
      status.textContent = `${list.length} service${list.length === 1 ? "" : "s"}`;
      services.replaceChildren(...list.map((s) => h("tr", {}, h("td", {}, s.name), h("td", { class: "mono" }, s.image))));
      config.textContent = yaml;
    },
    hide() { root.hidden = true; root.style.opacity = ""; status.textContent = ""; },
  };
}
