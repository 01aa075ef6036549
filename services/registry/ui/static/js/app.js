// The dashboard's entry point: configuration, session, hash routing, layout.
//
// Routes: #/login, #/repos, #/repos/<name>, #/service-accounts, #/tokens.
// Every view is an async function (ctx, ...params) → Element.

import { Api, ApiError, SessionEnded } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import * as sessions from "./session.js";
import { accountsView } from "./views/accounts.js";
import { loginView } from "./views/login.js";
import { repoView } from "./views/repo.js";
import { reposView } from "./views/repos.js";
import { tokensView } from "./views/tokens.js";

const main = document.getElementById("main");
const banner = document.getElementById("banner");
const nav = document.getElementById("nav");
const account = document.getElementById("account");

const state = { config: null, session: null, api: null, flash: null, returnTo: null };
let ticket = 0;

function notify(message, kind = "info") {
  banner.className = `banner ${kind}`;
  banner.textContent = message;
  banner.hidden = !message;
}

function showChrome() {
  const signedIn = state.session !== null;
  nav.hidden = !signedIn;
  account.hidden = !signedIn;
  document.getElementById("account-name").textContent = signedIn ? state.session.username : "";
}

function endSession(message) {
  sessions.clear();
  state.session = null;
  state.flash = message;
  showChrome();
  if (!location.hash.startsWith("#/login")) state.returnTo = location.hash || null;
  if (location.hash.startsWith("#/login")) route();
  else location.hash = "#/login";
}

function signedIn(session) {
  state.session = session;
  state.flash = null;
  showChrome();
  const target = state.returnTo || "#/repos";
  state.returnTo = null;
  navigate(target);
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** Run an action started by a click; report its failure in the banner.
 * Returns the action's result, or undefined when it failed. */
async function act(work, failure) {
  try {
    return await work();
  } catch (error) {
    if (error instanceof SessionEnded) endSession(error.message);
    else if (error instanceof ApiError) notify(`${failure}: ${error.message}`, "error");
    else {
      console.error(error);
      notify(`${failure}.`, "error");
    }
    return undefined;
  }
}

const context = () => ({
  api: state.api,
  config: state.config,
  session: state.session,
  navigate,
  notify,
  act,
  refresh: () => {
    if (state.session) route({ keepBanner: true });
  },
  signedIn,
  endSession,
  originWarning: state.originWarning || null,
});

function parse(hash) {
  let path = hash.replace(/^#/, "");
  try {
    path = decodeURIComponent(path);
  } catch {
    // a malformed escape: take the text as it is
  }
  path = path || "/repos";
  if (path === "/login") return ["login"];
  if (path === "/repos" || path === "/") return ["repos"];
  if (path.startsWith("/repos/")) return ["repo", path.slice("/repos/".length)];
  if (path === "/service-accounts") return ["service-accounts"];
  if (path === "/tokens") return ["tokens"];
  return ["missing", path];
}

const TITLES = {
  login: "Log in",
  repos: "Repositories",
  repo: "Repository",
  "service-accounts": "Service accounts",
  tokens: "Tokens",
  missing: "Not found",
};

async function route({ keepBanner = false } = {}) {
  const mine = ++ticket;
  if (!keepBanner) notify("");
  const [page, param] = parse(location.hash);
  if (!state.session && page !== "login") {
    state.returnTo = location.hash || null;
    location.replace("#/login");
    return;
  }
  if (state.session && page === "login") {
    location.replace("#/repos");
    return;
  }
  for (const link of nav.querySelectorAll("a")) {
    const current = link.dataset.section === (page === "repo" ? "repos" : page);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${param && page === "repo" ? param : TITLES[page]} · ecloud registry`;
  main.setAttribute("aria-busy", "true");
  let view;
  try {
    if (page === "login") {
      view = loginView(context(), state.flash);
    } else if (page === "repos") view = await reposView(context());
    else if (page === "repo") view = await repoView(context(), param);
    else if (page === "service-accounts") view = await accountsView(context());
    else if (page === "tokens") view = await tokensView(context());
    else view = h("section", {}, h("h1", {}, "Not found"), h("p", {}, `There is no page ${param}.`));
  } catch (error) {
    if (mine !== ticket) return;
    if (error instanceof SessionEnded) {
      endSession(error.message);
      return;
    }
    const message = error instanceof ApiError ? error.message : "Something went wrong.";
    if (!(error instanceof ApiError)) console.error(error);
    view = h(
      "section",
      {},
      h("h1", {}, TITLES[page]),
      h("p", { class: "error", role: "alert" }, message),
      h("button", { type: "button", onclick: () => route() }, "Try again"),
    );
  }
  if (mine !== ticket) return;
  main.removeAttribute("aria-busy");
  replaceChildren(main, view);
  // Move focus into the new view (a screen reader announces it): the field a
  // view asks for, else its heading.
  const target = main.querySelector("[data-autofocus]") || main.querySelector("h1");
  if (target && (document.activeElement === document.body || !main.contains(document.activeElement))) {
    if (target.tagName === "H1") target.setAttribute("tabindex", "-1");
    target.focus({ preventScroll: true });
  }
}

async function logout() {
  try {
    await state.api.logout();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // Ended already or unreachable: the token is dropped here either way.
  }
  endSession("You have logged out.");
}

function originNote(config) {
  const note = document.getElementById("origin-note");
  note.textContent = `Registry ${config.registry_host} · auth service ${config.auth_url}`;
  const expected = new URL(config.registry_url).origin;
  if (location.origin !== expected) {
    state.originWarning =
      `This page is open at ${location.origin}, but the registry is configured as ${expected} ` +
      `(ECLOUD_REGISTRY_URL). The auth service only accepts sign-ins from ${expected}/ui/.`;
  }
}

async function boot() {
  let config;
  try {
    const response = await fetch("/ui/config.json", { cache: "no-cache", credentials: "omit" });
    config = await response.json();
  } catch {
    replaceChildren(main, h("p", { class: "error", role: "alert" }, "Cannot load the dashboard's settings."));
    return;
  }
  state.config = config;
  originNote(config);
  state.api = new Api(config, () =>
    state.session && !sessions.isExpired(state.session) ? state.session.token : null,
  );
  const stored = sessions.load();
  if (stored && sessions.isExpired(stored)) {
    sessions.clear();
    state.flash = "Your session has expired. Log in again.";
  } else state.session = stored;
  showChrome();
  document.getElementById("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", () => route());
  if (state.session) {
    try {
      await state.api.session();
    } catch (error) {
      if (error instanceof SessionEnded) {
        endSession("Your session has ended. Log in again.");
        return;
      }
    }
  }
  route();
}

boot();
