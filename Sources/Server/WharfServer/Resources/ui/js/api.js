// The only way the UI talks to Wharf: the public HTTP API, with the admin token from sessionStorage.

const TOKEN_KEY = "wharf.adminToken";

/** An error answered by the API (`{"error": {"code", "message"}}`) or a network failure. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

let onUnauthorized = () => {};
/** Called when a signed-in call answers 401: the token was rotated or is wrong. */
export function setUnauthorizedHandler(handler) { onUnauthorized = handler; }

/**
 * Calls the API. Resolves with parsed JSON (or text when `text: true`, or null for 204);
 * rejects with an ApiError carrying the server's code and message.
 */
export async function api(method, path, { body, text = false, token = session.token, signal } = {}) {
  const headers = { Accept: text ? "text/plain" : "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, signal, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network", "The server did not answer. Check that wharf-server is running and reachable.");
  }
  if (response.status === 204) return null;
  if (response.ok) return text ? response.text() : response.json();
  let code = "http_" + response.status;
  let message = `The server answered ${response.status} ${response.statusText}.`;
  try {
    const payload = await response.json();
    if (payload && payload.error) {
      code = payload.error.code || code;
      message = payload.error.message || message;
    }
  } catch { /* not JSON */ }
  if (response.status === 401 && token && token === session.token) onUnauthorized();
  throw new ApiError(response.status, code, message);
}

export const get = (path, options) => api("GET", path, options);
export const post = (path, body, options = {}) => api("POST", path, { ...options, body });
export const put = (path, body, options = {}) => api("PUT", path, { ...options, body });
export const del = (path, options) => api("DELETE", path, options);
export const enc = encodeURIComponent;

let health = null;
/** GET /api/health once: `{status, version, publicUrl}` (publicUrl: what agents and webhooks use). */
export function serverInfo() {
  if (!health) health = get("/api/health", { token: null }).catch((error) => { health = null; throw error; });
  return health;
}

/** The URL agents should use: the server's --public-url, or this page's origin when unknown. */
export async function agentServerURL() {
  try {
    const { publicUrl } = await serverInfo();
    if (publicUrl) return publicUrl.replace(/\/+$/, "");
  } catch { /* fall back to the origin */ }
  return location.origin;
}
