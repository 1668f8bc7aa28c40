// Client state shared by the modules, plus the toast helper for errors and notices.
import { h } from "./dom.js";

export const state = {
  me: null,            // {_id, username, name, roles}
  subs: new Map(),     // rid -> subscription (REST shape)
  rooms: new Map(),    // rid -> room (REST shape)
  current: null,       // rid of the open room
  messages: [],        // open room's messages, oldest first
  hasMore: true,       // more history before messages[0]
  loadingOlder: false,
  thread: null,        // {root, messages} of the open thread panel
  panel: null,         // "thread" | "members" | null
  typing: new Map(),   // rid -> Map(username -> {name, until})
  receipts: new Map(), // rid -> Map(userId -> {user, ts})
  members: new Map(),  // rid -> [{_id, username, name, roles, muted}]
  live: null,
  online: false,
};

export function toast(message, kind = "error") {
  let box = document.getElementById("toasts");
  if (!box) { box = h("div", { id: "toasts", role: "status", "aria-live": "polite" }); document.body.append(box); }
  const el = h("div", { class: `toast ${kind}` }, String(message));
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => el.classList.add("fade"), kind === "error" ? 6000 : 2500);
  setTimeout(() => el.remove(), kind === "error" ? 6600 : 3100);
  el.addEventListener("click", () => el.remove());
}

// Run an async UI action; show its failure in words instead of failing silently.
export async function attempt(fn, okMessage) {
  try {
    const r = await fn();
    if (okMessage) toast(okMessage, "ok");
    return r;
  } catch (e) {
    toast(e && e.message ? e.message : "Something went wrong.");
    return undefined;
  }
}

export function roomTitle(rid) {
  const sub = state.subs.get(rid);
  const room = state.rooms.get(rid);
  if (sub && (sub.fname || sub.name)) return sub.fname || sub.name;
  if (room && (room.fname || room.name)) return room.fname || room.name;
  if (room && room.usernames) return room.usernames.filter((u) => !state.me || u !== state.me.username).join(", ");
  return "";
}

export function roomType(rid) {
  const sub = state.subs.get(rid);
  const room = state.rooms.get(rid);
  return (sub && sub.t) || (room && room.t) || "c";
}

export function myRoles(rid) {
  const sub = state.subs.get(rid);
  return (sub && sub.roles) || [];
}

export function isAdmin() { return !!(state.me && (state.me.roles || []).includes("admin")); }

export function canModerate(rid) {
  const r = myRoles(rid);
  return isAdmin() || r.includes("owner") || r.includes("moderator");
}

export function permalink(rid, msgId) {
  const t = roomType(rid);
  const room = state.rooms.get(rid);
  const sub = state.subs.get(rid);
  const name = (room && room.name) || (sub && sub.name) || rid;
  const path = t === "p" ? `/group/${encodeURIComponent(name)}` : t === "d" ? `/direct/${encodeURIComponent(rid)}`
    : `/channel/${encodeURIComponent(name)}`;
  return `${location.origin}${path}${msgId ? `?msg=${encodeURIComponent(msgId)}` : ""}`;
}
