// Every token of the caller's service accounts, soonest expiry first; those
// expiring within 14 days are flagged (in words, not only in colour).

import { confirmAction } from "../dialog.js";
import { h } from "../dom.js";
import { dateTime, relative, toMillis } from "../format.js";

export const SOON_DAYS = 14;
const DAY = 86400 * 1000;

export function expiryState(expiresAt, now = Date.now()) {
  const millis = toMillis(expiresAt);
  if (millis === null) return "never";
  if (millis <= now) return "expired";
  if (millis - now <= SOON_DAYS * DAY) return "soon";
  return "ok";
}

export function expiryCell(expiresAt) {
  const state = expiryState(expiresAt);
  if (state === "never") return "never";
  const when = h("time", { datetime: expiresAt, title: dateTime(expiresAt) }, relative(expiresAt));
  if (state === "soon") return [when, " ", h("strong", { class: "badge warn" }, "Expires soon")];
  if (state === "expired") return [when, " ", h("strong", { class: "badge bad" }, "Expired")];
  return when;
}

export async function tokensView(ctx) {
  const { service_accounts: accounts } = await ctx.api.serviceAccounts();
  const lists = await Promise.all(accounts.map((a) => ctx.api.tokens(a.id)));
  const rows = [];
  accounts.forEach((account, i) => {
    for (const token of lists[i].tokens) rows.push({ account, token });
  });
  const order = (r) => toMillis(r.token.expires_at) ?? Infinity;
  rows.sort((a, b) => order(a) - order(b) || String(a.account.name).localeCompare(String(b.account.name)));
  const soon = rows.filter((r) => expiryState(r.token.expires_at) === "soon").length;

  async function revoke(account, token) {
    const ok = await confirmAction({
      title: `Revoke token …${token.hint}?`,
      message: `Clients using the token …${token.hint} of ${account.name} are refused from now on.`,
      confirmLabel: `Revoke token …${token.hint}`,
    });
    if (!ok) return;
    const done = await ctx.act(() => ctx.api.revokeToken(token.id).then(() => true), "Could not revoke the token");
    if (done) ctx.notify(`Revoked token …${token.hint} of ${account.name}.`, "success");
    ctx.refresh();
  }

  const sessionEnds = ctx.session.expires_at;
  return h(
    "section",
    {},
    h("h1", {}, "Tokens"),
    h(
      "p",
      { class: "lead" },
      `Tokens of your service accounts. Those expiring within ${SOON_DAYS} days are flagged; `,
      h("a", { href: "#/service-accounts" }, "rotate them"),
      " before they stop working.",
    ),
    soon ? h("p", { class: "warning", role: "status" }, `${soon} token(s) expire within ${SOON_DAYS} days.`) : null,
    rows.length
      ? h(
          "table",
          { class: "listing" },
          h("caption", { class: "visually-hidden" }, "Your tokens"),
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, "Service account"),
              h("th", { scope: "col" }, "Token"),
              h("th", { scope: "col" }, "Expires"),
              h("th", { scope: "col" }, "Last used"),
              h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")),
            ),
          ),
          h(
            "tbody",
            {},
            rows.map(({ account, token }) =>
              h(
                "tr",
                { class: `expiry-${expiryState(token.expires_at)}` },
                h("th", { scope: "row", "data-label": "Service account" }, String(account.name)),
                h("td", { "data-label": "Token" }, `${token.name} `, h("code", {}, `…${token.hint}`)),
                h("td", { "data-label": "Expires" }, expiryCell(token.expires_at)),
                h("td", { "data-label": "Last used" }, token.last_used_at ? relative(token.last_used_at) : "never"),
                h(
                  "td",
                  {},
                  h(
                    "button",
                    {
                      type: "button",
                      class: "danger quiet",
                      "aria-label": `Revoke token …${token.hint} of ${account.name}`,
                      onclick: () => revoke(account, token),
                    },
                    "Revoke",
                  ),
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "card empty" }, "No active tokens. ", h("a", { href: "#/service-accounts" }, "Create a service account"), " to get one."),
    h(
      "p",
      { class: "muted" },
      "This browser session ends ",
      sessionEnds ? h("time", { datetime: new Date(toMillis(sessionEnds)).toISOString(), title: dateTime(sessionEnds) }, relative(sessionEnds)) : "when the tab closes",
      ".",
    ),
  );
}
