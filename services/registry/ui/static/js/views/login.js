// Log in with username and password; the session token goes to sessionStorage.

import { ApiError } from "../api.js";
import { h } from "../dom.js";
import * as sessions from "../session.js";

export function loginView(ctx, message) {
  const error = h("p", { class: "error", role: "alert", id: "login-error" });
  const username = h("input", {
    id: "login-username",
    name: "username",
    autocomplete: "username",
    autocapitalize: "none",
    spellcheck: "false",
    required: true,
    "data-autofocus": true,
  });
  const password = h("input", {
    id: "login-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");

  async function onSubmit(event) {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    try {
      const login = await ctx.api.login(username.value.trim(), password.value);
      password.value = "";
      ctx.signedIn(sessions.save(login));
    } catch (failure) {
      if (!(failure instanceof ApiError)) throw failure;
      if (failure.status === 401) error.textContent = "Wrong username or password.";
      else if (failure.status === 429) {
        const wait = failure.retryAfter ? ` Try again in ${failure.retryAfter} seconds.` : "";
        error.textContent = `Too many attempts.${wait}`;
      } else error.textContent = failure.message;
      password.select();
    } finally {
      submit.disabled = false;
    }
  }

  return h(
    "section",
    { class: "login" },
    h("h1", {}, "Log in"),
    ctx.originWarning ? h("p", { class: "warning" }, ctx.originWarning) : null,
    message ? h("p", { class: "notice", role: "status" }, message) : null,
    h(
      "form",
      { class: "card stack", onsubmit: onSubmit, "aria-describedby": "login-error" },
      h("div", { class: "field" }, h("label", { for: "login-username" }, "Username"), username),
      h("div", { class: "field" }, h("label", { for: "login-password" }, "Password"), password),
      error,
      submit,
    ),
    h(
      "p",
      { class: "muted" },
      `Your session stays in this browser tab only. Service-account tokens are for machines: `,
      `create them here after logging in.`,
    ),
  );
}
