// The session token lives in this tab's sessionStorage only: never a cookie,
// never localStorage. It is gone when the tab closes.

import { toMillis } from "./format.js";

const KEY = "ecloud.session";

export function load() {
  let session = null;
  try {
    session = JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    session = null;
  }
  if (!session || typeof session.token !== "string" || typeof session.username !== "string") {
    return null;
  }
  return session;
}

/** True once the session token's own expiry has passed (the server refuses it then). */
export function isExpired(session, now = Date.now()) {
  const expires = toMillis(session.expires_at);
  return expires !== null && expires <= now;
}

export function save(login) {
  const session = {
    token: login.token,
    expires_at: login.expires_at,
    username: login.user.username,
    user_id: login.user.id,
  };
  sessionStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

export function clear() {
  sessionStorage.removeItem(KEY);
}
