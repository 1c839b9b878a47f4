// The one way the UI talks to the service: the public REST API under /v1, with the session
// cookie, the CSRF header on writes, and `{error}` bodies turned into ApiError messages.

let csrfToken = null;
const unauthorizedListeners = new Set();

/** An error answer of the REST API (or a network failure) with a message for people. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/** Remember the CSRF token of the current session (from sign-in or GET /v1/session). */
export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** Call `listener` when a request comes back 401 (the session expired or was ended). */
export function onUnauthorized(listener) {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

async function request(method, path, body, { quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `Cannot reach the aft service (${e.message}). Is aft serve running?`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const message = (data && typeof data === 'object' && data.error)
      || (typeof data === 'string' && data.trim())
      || `${method} ${path} failed with HTTP ${response.status}`;
    if (response.status === 401 && !quiet401) unauthorizedListeners.forEach((l) => l(message));
    throw new ApiError(response.status, message, data);
  }
  return data;
}

/** The REST API, one function per verb; each returns the parsed JSON body (or null). */
export const api = {
  get: (path, options) => request('GET', path, undefined, options),
  post: (path, body, options) => request('POST', path, body ?? {}, options),
  put: (path, body, options) => request('PUT', path, body ?? {}, options),
  patch: (path, body, options) => request('PATCH', path, body ?? {}, options),
  del: (path, options) => request('DELETE', path, undefined, options),
};

/** `encodeURIComponent` for one path segment. */
export const seg = (value) => encodeURIComponent(String(value));

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
