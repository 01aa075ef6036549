// Calls to the two services: the registry's dashboard API on this origin and
// the auth service's /api/ across origins (its CORS allows this registry).

export class ApiError extends Error {
  constructor(status, message, code = "") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The session was refused (expired, revoked, logged out elsewhere). */
export class SessionEnded extends ApiError {}

function errorMessage(body, fallback) {
  if (body && Array.isArray(body.errors) && body.errors[0]) {
    return [String(body.errors[0].message || fallback), String(body.errors[0].code || "")];
  }
  if (body && body.error && typeof body.error === "object") {
    return [String(body.error.message || fallback), String(body.error.code || "")];
  }
  return [fallback, ""];
}

export class Api {
  constructor(config, tokenSource) {
    this.authUrl = config.auth_url;
    this.tokenSource = tokenSource;
  }

  async request(base, path, { method = "GET", body, auth = true, what } = {}) {
    const headers = { Accept: "application/json" };
    const token = auth ? this.tokenSource() : null;
    if (auth && !token) throw new SessionEnded(401, "Your session has expired. Log in again.");
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
        redirect: "error",
        referrerPolicy: "no-referrer",
      });
    } catch {
      throw new ApiError(0, `Cannot reach ${what || base || "the registry"}. Check your connection.`);
    }
    if (response.status === 204) return null;
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const [message, code] = errorMessage(data, `${response.status} ${response.statusText}`);
      if (response.status === 401 && auth) {
        throw new SessionEnded(401, "Your session has ended. Log in again.", code);
      }
      const error = new ApiError(response.status, message, code);
      error.retryAfter = Number(response.headers.get("Retry-After")) || null;
      throw error;
    }
    return data;
  }

  registry(path, options = {}) {
    return this.request("", path, { what: "the registry", ...options });
  }

  auth(path, options = {}) {
    return this.request(this.authUrl, path, { what: `the auth service at ${this.authUrl}`, ...options });
  }

  // --- auth service -----------------------------------------------------------------
  login(username, password) {
    return this.auth("/api/login", { method: "POST", body: { username, password }, auth: false });
  }
  logout() {
    return this.auth("/api/logout", { method: "POST" });
  }
  session() {
    return this.auth("/api/session");
  }
  serviceAccounts() {
    return this.auth("/api/service-accounts");
  }
  createServiceAccount(name, scopes) {
    return this.auth("/api/service-accounts", { method: "POST", body: { name, scopes } });
  }
  deleteServiceAccount(id) {
    return this.auth(`/api/service-accounts/${encodeURIComponent(id)}`, { method: "DELETE" });
  }
  tokens(accountId) {
    return this.auth(`/api/service-accounts/${encodeURIComponent(accountId)}/tokens`);
  }
  createToken(accountId, expiresIn, name = "token") {
    return this.auth(`/api/service-accounts/${encodeURIComponent(accountId)}/tokens`, {
      method: "POST",
      body: { expires_in: expiresIn, name },
    });
  }
  revokeToken(tokenId) {
    return this.auth(`/api/tokens/${encodeURIComponent(tokenId)}`, { method: "DELETE" });
  }

  // --- registry dashboard API -------------------------------------------------------
  repositories() {
    return this.registry("/api/repos");
  }
  repository(name) {
    return this.registry(`/api/repos/${repoPath(name)}`);
  }
  tags(name) {
    return this.registry(`/api/repos/${repoPath(name)}/tags`);
  }
  deleteTag(name, tag) {
    return this.registry(`/api/repos/${repoPath(name)}/tags/${encodeURIComponent(tag)}`, {
      method: "DELETE",
    });
  }
}

/** A repository name as a path: each component encoded, the slashes kept. */
export function repoPath(name) {
  return String(name).split("/").map(encodeURIComponent).join("/");
}
