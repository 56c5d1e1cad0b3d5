// Sign-in: the admin token, checked against the API and kept in this tab's sessionStorage only.

import { get, session, ApiError } from "../api.js";
import { h, alertBox, icon } from "../dom.js";

export function renderSignIn(main, ctx, { next = "/stacks", reason = "" } = {}) {
  const input = h("input", {
    id: "token", name: "token", type: "password", class: "input mono", autocomplete: "current-password",
    spellcheck: "false", required: true, "aria-describedby": "token-help", placeholder: "Paste the admin token",
  });
  const error = h("div", { id: "signin-error", "aria-live": "assertive" });
  if (reason) error.append(alertBox("warn", reason));
  const button = h("button", { type: "submit", class: "btn btn-primary", id: "signin-submit" }, "Sign in");
  const reveal = h("button", { type: "button", class: "icon-btn", "aria-label": "Show token", "aria-pressed": "false" }, icon("eye"));
  reveal.addEventListener("click", () => {
    const shown = input.type === "text";
    input.type = shown ? "password" : "text";
    reveal.setAttribute("aria-pressed", String(!shown));
    reveal.setAttribute("aria-label", shown ? "Show token" : "Hide token");
  });

  const form = h("form", { class: "form", id: "signin-form", novalidate: true },
    // Lets password managers file the token under one name; the API has no user names.
    h("input", { type: "text", name: "username", value: "admin", autocomplete: "username", hidden: true, tabindex: "-1", "aria-hidden": "true" }),
    h("div", { class: "field" },
      h("label", { for: "token" }, "Admin token"),
      h("div", { class: "input-with-button" }, input, reveal),
      h("p", { class: "help", id: "token-help" },
        "wharf-server wrote it to ", h("code", {}, "<data-dir>/admin-token"), " on first start. ",
        "It stays in this browser tab's session storage and is sent only in the Authorization header.")),
    error,
    button);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    error.replaceChildren();
    if (!token) {
      error.append(alertBox("err", "Enter the admin token."));
      input.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Signing in…";
    try {
      // Any management route tells whether the token is right.
      await get("/api/environments", { token });
      session.set(token);
      const target = next === "/signin" ? "/stacks" : next;
      // Signing in on the page the user asked for: same hash, so route again by hand.
      if (location.hash === "#" + target) window.dispatchEvent(new HashChangeEvent("hashchange"));
      else location.hash = target;
    } catch (err) {
      const message = err instanceof ApiError && err.status === 401
        ? "The server did not accept this token. Copy it again from the admin-token file."
        : err.message;
      error.append(alertBox("err", message));
      input.setAttribute("aria-invalid", "true");
      input.select();
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  });

  main.replaceChildren(h("div", { class: "signin" },
    h("div", { class: "card signin-card" },
      h("div", { class: "card-body" },
        h("div", { class: "signin-brand" },
          h("img", { src: "favicon.svg", alt: "", width: 40, height: 40 }),
          h("div", {}, h("strong", {}, "Wharf"), h("span", {}, "Redeploy Compose stacks from a webhook"))),
        h("h1", { class: "visually-hidden" }, "Sign in to Wharf"),
        form))));
  input.focus();
}
