// Service accounts: list, create with a scope picker, the new token shown once
// (with a copy button and a ready kubectl command), rotate, revoke a token,
// delete an account.

import { ApiError, SessionEnded } from "../api.js";
import { confirmAction } from "../dialog.js";
import { command, copyButton, h, uid } from "../dom.js";
import { dateTime, relative } from "../format.js";
import { expiryCell } from "./tokens.js";

export const ACCESS = [
  ["pull", "Read (pull)"],
  ["pull,push", "Read and write (pull, push)"],
  ["pull,push,delete", "Read, write and delete (pull, push, delete)"],
];
const EXPIRY = [
  ["30d", "30 days"],
  ["90d", "90 days"],
  ["365d", "1 year"],
  ["never", "Never"],
];

/** `storage.<user-id>.registry[.<repository>]=<actions>` in words. */
export function describeScope(scope) {
  const match = /^storage\.[^.=]+\.registry(?:\.([^=]+))?=(.+)$/.exec(String(scope));
  if (!match) return String(scope);
  const actions = match[2].split(",").join(", ");
  return match[1] ? `${actions} on ${match[1]}` : `${actions} on all your repositories`;
}

/** A Kubernetes object name from a service-account name (DNS-1123 label). */
export function secretName(accountName) {
  const base = String(accountName)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 50);
  return `${base || "ecloud"}-pull`;
}

function radios(name, legend, choices, checked) {
  return h(
    "fieldset",
    {},
    h("legend", {}, legend),
    choices.map(([value, label]) => {
      const id = uid(name);
      return h(
        "div",
        { class: "choice" },
        h("input", { type: "radio", id, name, value, checked: value === checked }),
        h("label", { for: id }, label),
      );
    }),
  );
}

/** The panel that shows a new token, the only time it is ever shown. */
function tokenPanel(ctx, accountName, issued) {
  const host = ctx.config.registry_host;
  const user = ctx.session.username;
  const token = String(issued.token);
  const field = h("input", { id: uid("new-token"), readonly: true, class: "secret", spellcheck: "false" });
  field.value = token;
  const kubectl =
    `kubectl create secret docker-registry ${secretName(accountName)}` +
    ` --docker-server=${host} --docker-username=${user} --docker-password=${token}`;
  const panel = h(
    "section",
    { class: "card new-token stack", "aria-labelledby": "new-token-title", tabindex: "-1" },
    h("h2", { id: "new-token-title" }, `New token for ${accountName}`),
    h("p", { class: "warning" }, "Copy this token now: it is shown only this once and cannot be read again."),
    h("div", { class: "field" }, h("label", { for: field.id }, "Token"), h("div", { class: "row" }, field, copyButton("Copy token", () => field.value, "Copy token"))),
    expiryLine(issued.expires_at),
    h("h3", {}, "Use it"),
    command(`docker login ${host} -u ${user}`, "Copy docker login command"),
    h("p", { class: "muted" }, "Paste the token as the password."),
    h("p", {}, "Let a Kubernetes namespace pull with it:"),
    command(kubectl, "Copy kubectl command"),
    h(
      "button",
      {
        type: "button",
        onclick: () => {
          field.value = "";
          panel.remove();
        },
      },
      "Done, I have copied it",
    ),
  );
  return panel;
}

function expiryLine(expiresAt) {
  return h("p", { class: "muted" }, expiresAt ? `Expires ${dateTime(expiresAt)}.` : "Never expires.");
}

function createForm(ctx, repositories, onCreated) {
  const name = h("input", {
    id: "sa-name",
    name: "name",
    required: true,
    maxlength: 64,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "sa-name-hint",
  });
  const listId = uid("repos");
  const repository = h("input", {
    id: "sa-repository",
    name: "repository",
    list: listId,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: `${ctx.session.username}/app`,
    disabled: true,
  });
  const target = radios("sa-target", "Repositories", [["all", "All my repositories"], ["one", "One repository"]], "all");
  target.addEventListener("change", () => {
    const one = target.querySelector("input:checked").value === "one";
    repository.disabled = !one;
    repository.required = one;
    if (one) repository.focus();
  });
  const access = radios("sa-access", "Access", ACCESS, "pull");
  const expiry = h("select", { id: "sa-expiry", name: "expiry" }, EXPIRY.map(([value, label]) => h("option", { value, selected: value === "90d" }, label)));
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create service account");

  async function onSubmit(event) {
    event.preventDefault();
    error.textContent = "";
    const actions = form.querySelector("input[name=sa-access]:checked").value;
    const one = target.querySelector("input:checked").value === "one";
    const repo = repository.value.trim();
    if (one && !repo) {
      error.textContent = "Name the repository.";
      repository.focus();
      return;
    }
    const scope = one ? `storage.me.registry.${repo}=${actions}` : `storage.me.registry=${actions}`;
    submit.disabled = true;
    try {
      let account;
      try {
        account = await ctx.api.createServiceAccount(name.value.trim(), [scope]);
      } catch (failure) {
        // Said next to the form (the name is taken, the repository is not yours…).
        if (failure instanceof SessionEnded) ctx.endSession(failure.message);
        else if (failure instanceof ApiError) error.textContent = failure.message;
        else throw failure;
        return;
      }
      const issued = await ctx.act(
        () => ctx.api.createToken(account.id, expiry.value),
        `Created ${account.name}, but could not issue its token`,
      );
      form.reset();
      repository.disabled = true;
      onCreated(account, issued);
    } finally {
      submit.disabled = false;
    }
  }

  const form = h(
    "form",
    { class: "card stack", onsubmit: onSubmit, "aria-labelledby": "sa-create-title" },
    h("h2", { id: "sa-create-title" }, "New service account"),
    h("div", { class: "field" }, h("label", { for: "sa-name" }, "Name"), name, h("span", { class: "hint", id: "sa-name-hint" }, "Letters, digits, dot, dash, underscore; e.g. ci or k8s-pull.")),
    target,
    h("div", { class: "field" }, h("label", { for: "sa-repository" }, "Repository"), repository),
    h("datalist", { id: listId }, repositories.map((r) => h("option", { value: r.name }))),
    access,
    h("div", { class: "field" }, h("label", { for: "sa-expiry" }, "Token expires after"), expiry),
    error,
    submit,
  );
  return form;
}

function accountCard(ctx, account, tokens, handlers) {
  const headingId = uid("sa");
  return h(
    "li",
    { class: "card account-card", "aria-labelledby": headingId },
    h(
      "div",
      { class: "tag-head" },
      h("h3", { id: headingId }, String(account.name)),
      h(
        "div",
        { class: "row" },
        h("button", { type: "button", "aria-label": `Rotate token of ${account.name}`, onclick: () => handlers.rotate(account, tokens) }, "Rotate token"),
        h("button", { type: "button", class: "danger quiet", "aria-label": `Delete service account ${account.name}`, onclick: () => handlers.remove(account) }, "Delete"),
      ),
    ),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Scopes"),
      h("dd", {}, h("ul", { class: "chips", "aria-label": `Scopes of ${account.name}` }, account.scopes.map((s) => h("li", { title: String(s) }, describeScope(s))))),
      h("dt", {}, "Created"),
      h("dd", {}, h("time", { datetime: account.created_at, title: dateTime(account.created_at) }, relative(account.created_at))),
      h("dt", {}, "ID"),
      h("dd", {}, h("code", {}, String(account.id))),
    ),
    tokens.length
      ? h(
          "table",
          { class: "listing compact" },
          h("caption", {}, `Tokens of ${account.name}`),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Token"), h("th", { scope: "col" }, "Expires"), h("th", { scope: "col" }, "Last used"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
          h(
            "tbody",
            {},
            tokens.map((t) =>
              h(
                "tr",
                {},
                h("td", { "data-label": "Token" }, `${t.name} `, h("code", {}, `…${t.hint}`)),
                h("td", { "data-label": "Expires" }, expiryCell(t.expires_at)),
                h("td", { "data-label": "Last used" }, t.last_used_at ? relative(t.last_used_at) : "never"),
                h(
                  "td",
                  {},
                  h("button", { type: "button", class: "danger quiet", "aria-label": `Revoke token …${t.hint} of ${account.name}`, onclick: () => handlers.revoke(account, t) }, "Revoke"),
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No active token."),
  );
}

export async function accountsView(ctx) {
  const [{ service_accounts: accounts }, { repositories }] = await Promise.all([
    ctx.api.serviceAccounts(),
    ctx.api.repositories(),
  ]);
  const tokenLists = await Promise.all(accounts.map((a) => ctx.api.tokens(a.id)));
  const slot = h("div", { class: "token-slot" });
  const list = h("ul", { class: "accounts" });

  function showToken(accountName, issued) {
    if (!issued) return;
    slot.replaceChildren(tokenPanel(ctx, accountName, issued));
    slot.firstChild.focus();
  }

  async function reload() {
    const fresh = await ctx.act(async () => {
      const { service_accounts: now } = await ctx.api.serviceAccounts();
      const tokens = await Promise.all(now.map((a) => ctx.api.tokens(a.id)));
      return [now, tokens];
    }, "Could not reload the service accounts");
    if (fresh) fill(...fresh);
  }

  const handlers = {
    async rotate(account, tokens) {
      const ok = await confirmAction({
        title: `Rotate the token of ${account.name}?`,
        message: `A new token is issued and the ${tokens.length} current token(s) of ${account.name} stop working at once.`,
        confirmLabel: `Rotate token of ${account.name}`,
      });
      if (!ok) return;
      const issued = await ctx.act(() => ctx.api.createToken(account.id, "90d"), `Could not rotate ${account.name}`);
      if (!issued) return;
      for (const t of tokens) {
        const done = await ctx.act(() => ctx.api.revokeToken(t.id).then(() => true), `Could not revoke token …${t.hint}`);
        if (!done) break;
      }
      showToken(account.name, issued);
      await reload();
    },
    async revoke(account, token) {
      const ok = await confirmAction({
        title: `Revoke token …${token.hint}?`,
        message: `Clients using the token …${token.hint} of ${account.name} are refused from now on.`,
        confirmLabel: `Revoke token …${token.hint}`,
      });
      if (!ok) return;
      const done = await ctx.act(() => ctx.api.revokeToken(token.id).then(() => true), "Could not revoke the token");
      if (done) ctx.notify(`Revoked token …${token.hint} of ${account.name}.`, "success");
      await reload();
    },
    async remove(account) {
      const ok = await confirmAction({
        title: `Delete service account ${account.name}?`,
        message: `${account.name} and all its tokens are deleted; clients using them are refused from now on.`,
        confirmLabel: `Delete service account ${account.name}`,
      });
      if (!ok) return;
      const done = await ctx.act(() => ctx.api.deleteServiceAccount(account.id).then(() => true), "Could not delete the service account");
      if (done) ctx.notify(`Deleted service account ${account.name}.`, "success");
      await reload();
    },
  };

  function fill(now, tokens) {
    list.replaceChildren(...now.map((a, i) => accountCard(ctx, a, tokens[i].tokens, handlers)));
    empty.hidden = now.length !== 0;
  }

  const empty = h("p", { class: "muted" }, "No service accounts yet.");
  fill(accounts, tokenLists);
  const form = createForm(ctx, repositories, async (account, issued) => {
    // Without a token the banner keeps the error; the account is listed anyway.
    if (issued) {
      ctx.notify(`Created service account ${account.name}.`, "success");
      showToken(account.name, issued);
    }
    await reload();
  });
  return h(
    "section",
    {},
    h("h1", {}, "Service accounts"),
    h(
      "p",
      { class: "lead" },
      "A service account holds access to your repositories for a machine: CI, a Kubernetes cluster. " +
        "Its tokens are used as the password of docker login.",
    ),
    slot,
    h("div", { class: "columns" }, h("div", {}, h("h2", {}, "Your service accounts"), empty, list), form),
  );
}
