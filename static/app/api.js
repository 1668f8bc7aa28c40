// REST client for Concord's Rocket.Chat-compatible API, authenticated by the Django session
// (CSRF header on unsafe requests). Errors are thrown as ApiError with a human sentence.

export class ApiError extends Error {
  constructor(message, status, body) { super(message); this.status = status; this.body = body; }
}

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function describe(status, body) {
  if (body && typeof body === "object") {
    const msg = body.error || body.message || body.reason;
    if (typeof msg === "string" && msg) return msg;
  }
  if (status === 401) return "Your session has ended. Please sign in again.";
  if (status === 403) return "You are not allowed to do that.";
  if (status === 404) return "That was not found on the server.";
  if (status === 413) return "The file is too large for this server.";
  if (status >= 500) return "The server had a problem. Please try again.";
  return `The request failed (HTTP ${status}).`;
}

export async function api(method, path, data, { query } = {}) {
  let url = `/api/v1/${path}`;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) qs.set(k, typeof v === "object" ? JSON.stringify(v) : v);
    url += (url.includes("?") ? "&" : "?") + qs.toString();
  }
  const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (method !== "GET") {
    opts.headers["X-CSRFToken"] = csrfToken();
    if (data instanceof FormData) opts.body = data;
    else if (data !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(data); }
  }
  let resp;
  try {
    resp = await fetch(url, opts);
  } catch (e) {
    throw new ApiError("Cannot reach the server. Check your connection.", 0, null);
  }
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok || (body && body.success === false)) {
    if (resp.status === 401 && path !== "me") setTimeout(() => { location.href = "/login"; }, 1500);
    throw new ApiError(describe(resp.status, body), resp.status, body);
  }
  return body || {};
}

export const get = (path, query) => api("GET", path, undefined, { query });
export const post = (path, data) => api("POST", path, data);

// Rocket.Chat splits room calls by type: channels.* (c), groups.* (p), dm.* / im.* (d).
export function prefix(room) {
  const t = typeof room === "string" ? room : room && room.t;
  return t === "p" ? "groups" : t === "d" ? "dm" : "channels";
}

// Upload with progress: XMLHttpRequest, since fetch has no upload progress.
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/${path}`);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError("Cannot reach the server. Check your connection.", 0, null));
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      if (xhr.status >= 400 || (body && body.success === false)) reject(new ApiError(describe(xhr.status, body), xhr.status, body));
      else resolve(body || {});
    };
    xhr.send(form);
  });
}
