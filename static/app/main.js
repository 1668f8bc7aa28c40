// Entry module (loaded by templates/app.html): nothing imports it; other modules reach it through bus.js.
// Concord web client: app shell, sidebar, routing and the live-event dispatcher.
// Modules: api.js (REST), live.js (WebSocket), room.js (room view, composer, thread panel),
// dialogs.js (create room, DM, directory, profile, settings, members), commands.js (slash commands),
// panels.js (show/close the side panel), bus.js (events and requests to this module),
// messages.js (message DOM), dom.js (safe DOM helpers), state.js (shared state, toasts).
import { icon } from "./icons.js";
import { h, $, clear } from "./dom.js";
import { get, post } from "./api.js";
import { Live } from "./live.js";
import { state, toast, attempt, roomTitle, isAdmin } from "./state.js";
import { on, answer } from "./bus.js";
import * as room from "./room.js";
import * as dialogs from "./dialogs.js";
import * as admin from "./admin.js";

const root = document.getElementById("app");

function shell() {
  clear(root);
  const siteName = root.dataset.siteName || "Concord";
  root.append(
    h("aside", { id: "sidebar", "aria-label": "Rooms" },
      h("header", { class: "side-head" },
        h("button", { class: "me-button", id: "me-button", title: "Profile and sign out", onclick: () => dialogs.profileDialog() },
          h("img", { class: "avatar small", id: "me-avatar", src: `/avatar/${encodeURIComponent(state.me.username)}`, alt: "" }),
          h("span", { id: "me-name" }, state.me.name || state.me.username)),
        h("span", { class: "brand-small" }, siteName)),
      h("div", { class: "side-actions" },
        h("button", { id: "new-room", onclick: () => dialogs.createRoomDialog(), title: "Create a channel or private group" }, "+ Room"),
        h("button", { id: "new-dm", onclick: () => dialogs.dmDialog(), title: "Start a direct message" }, "+ DM"),
        h("button", { id: "directory", onclick: () => dialogs.directoryDialog(), title: "Browse public channels" }, icon("directory"), " Directory"),
        isAdmin() ? h("button", { id: "federation-admin", onclick: () => admin.federationAdminDialog(), title: "Servers, delivery and checks" }, icon("federation"), " Federation") : null),
      h("input", { id: "room-filter", type: "search", placeholder: "Filter rooms", "aria-label": "Filter rooms", oninput: renderSidebar }),
      h("nav", { id: "room-list" })),
    h("main", { id: "main" },
      h("div", { id: "conn-banner", class: "conn-banner hidden", role: "status" }),
      h("section", { id: "room-view" }, room.emptyView())),
    h("aside", { id: "side-panel", class: "hidden", "aria-label": "Side panel" }),
  );
}

const SECTIONS = [["c", "Channels"], ["p", "Private groups"], ["d", "Direct messages"]];

function renderSidebar() {
  const list = $("#room-list");
  if (!list) return;
  const filter = ($("#room-filter")?.value || "").toLowerCase();
  clear(list);
  const subs = [...state.subs.values()].filter((s) => s.state !== "left");
  for (const [t, label] of SECTIONS) {
    const items = subs.filter((s) => s.t === t && (!filter || (s.fname || s.name || "").toLowerCase().includes(filter)))
      .sort((a, b) => (a.fname || a.name).localeCompare(b.fname || b.name));
    list.append(h("div", { class: "side-section" }, h("h3", {}, label)));
    if (!items.length) list.append(h("div", { class: "side-empty" }, t === "d" ? "No conversations yet" : "None yet"));
    for (const s of items) {
      const mentions = (s.userMentions || 0) + (s.groupMentions || 0);
      const active = s.rid === state.current;
      const roomIcon = icon(t === "c" ? "hash" : t === "p" ? "lock" : "at");
      list.append(h("a", { class: `room-item${active ? " active" : ""}${s.unread ? " unread" : ""}${s.archived ? " archived" : ""}`,
        href: room.roomPath(s.rid), dataset: { rid: s.rid, name: s.name }, onclick: (e) => { e.preventDefault(); openRoom(s.rid); } },
        t === "d" ? h("img", { class: "avatar tiny", src: `/avatar/${encodeURIComponent(String(s.name).split(", ")[0])}`, alt: "" }) : h("span", { class: "room-icon" }, roomIcon),
        h("span", { class: "room-name" }, s.fname || s.name),
        state.rooms.get(s.rid)?.federated ? h("span", { class: "federated-mark", title: "Federated: people on other servers take part" }, icon("globe", { size: 13 })) : null,
        s.state === "invited" ? h("span", { class: "badge invite" }, "invited") : null,
        mentions ? h("span", { class: "badge mention", title: `${mentions} mention${mentions > 1 ? "s" : ""}` }, `@${mentions}`) : null,
        s.unread && !active ? h("span", { class: "badge unread-count", title: `${s.unread} unread` }, String(s.unread)) : null));
    }
  }
  document.title = `${[...state.subs.values()].some((s) => s.unread && s.rid !== state.current) ? "• " : ""}${state.current ? roomTitle(state.current) + " · " : ""}${root.dataset.siteName || "Concord"}`;
}

async function openRoom(rid, { push = true, msgId = null } = {}) {
  if (push) history.pushState({ rid }, "", room.roomPath(rid) + (msgId ? `?msg=${encodeURIComponent(msgId)}` : ""));
  document.body.classList.add("in-room");
  await room.open(rid, { msgId });
  renderSidebar();
}

async function loadSubscriptions() {
  const [subs, rooms] = await Promise.all([get("subscriptions.get"), get("rooms.get")]);
  state.subs.clear();
  for (const s of subs.update || []) state.subs.set(s.rid, s);
  for (const r of rooms.update || []) state.rooms.set(r._id, r);
}

async function ensureRoom(rid) {
  if (state.rooms.has(rid)) return state.rooms.get(rid);
  const r = await get("rooms.info", { roomId: rid });
  if (r.room) state.rooms.set(rid, r.room);
  return r.room;
}

async function routeFromLocation() {
  const m = location.pathname.match(/^\/(channel|group|direct)\/([^/]+)/);
  const msgId = new URLSearchParams(location.search).get("msg");
  if (!m) { room.showEmpty(); return; }
  const key = decodeURIComponent(m[2]);
  let rid = null;
  if (m[1] === "direct") rid = key;
  else {
    for (const s of state.subs.values()) if (s.name === key && s.t !== "d") rid = s.rid;
    if (!rid) {
      const info = await attempt(() => get("rooms.info", { roomName: key }));
      if (info && info.room) { state.rooms.set(info.room._id, info.room); rid = info.room._id; }
    }
  }
  if (rid) await openRoom(rid, { push: false, msgId });
  else { toast(`No room named ${key}.`); room.showEmpty(); }
}

// ---- live events ----
function onLive(ev) {
  const d = ev.data || {};
  switch (ev.type) {
    case "message.new":
      countUnread(ev.room_id || d.rid, d);
      room.onMessageEvent(ev); break;
    case "message.updated": case "message.deleted": case "reaction":
      room.onMessageEvent(ev); break;
    case "typing": room.onTyping(ev.room_id, d); break;
    case "receipt": room.onReceipt(ev.room_id, d); break;
    case "membership": room.onMembership(ev.room_id, d); break;
    case "room.updated":
      state.rooms.set(d._id, d);
      { const s = state.subs.get(d._id); if (s) { if (d.t !== "d") { s.name = d.name; s.fname = d.fname || d.name; } s.ro = d.ro; s.archived = d.archived; } }
      renderSidebar(); room.onRoomUpdated(d); break;
    case "room.deleted":
      removeSub(d._id || ev.room_id, "The room was deleted."); break;
    case "subscription": {
      const known = state.subs.has(d.rid);
      state.subs.set(d.rid, d);
      if (!known) ensureRoom(d.rid).then(renderSidebar).catch(() => {});
      if (d.rid === state.current && d.unread) room.markReadSoon();
      renderSidebar(); room.onSubscription(d); break;
    }
    case "subscription.removed":
      removeSub(d.rid, null); break;
    case "error":
      if (d && typeof ev.error === "string") toast(ev.error); break;
    default: break;
  }
}

// The server does not send every member a subscription per message (see rooms/events.py): a new
// message from someone else, shown in a room we are not reading, bumps our own counters here.
function countUnread(rid, m) {
  const sub = state.subs.get(rid);
  if (!sub || rid === state.current || !m.u || m.u._id === state.me._id || m.t) return;
  if (m.tmid && !m.tshow) return;
  const mentionsMe = (m.mentions || []).some((u) => u._id === state.me._id);
  const group = (m.mentions || []).some((u) => u._id === "all" || u._id === "here");
  // Mentions also arrive as an authoritative subscription event; only count plain messages here.
  if (mentionsMe || group) return;
  sub.unread = (sub.unread || 0) + 1;
  renderSidebar();
}

function removeSub(rid, why) {
  const had = state.subs.get(rid);
  state.subs.delete(rid);
  if (why) state.rooms.delete(rid);
  if (rid === state.current) {
    const room_ = state.rooms.get(rid);
    if (why || !room_ || room_.t !== "c") {
      toast(why || `You are no longer a member of ${had ? had.fname || had.name : "this room"}.`, "info");
      history.pushState({}, "", "/"); room.showEmpty();
    } else room.onSubscription(null);
  }
  renderSidebar();
}

function onConnState(s) {
  state.online = s === "online";
  const banner = $("#conn-banner");
  if (!banner) return;
  document.body.classList.toggle("offline", s === "offline");
  if (s === "offline") {
    clear(banner).append(h("span", {}, "⚠ You are offline. Reconnecting… Messages you send will still be tried."),
      h("button", { onclick: () => state.live.reconnectNow() }, "Retry now"));
    banner.className = "conn-banner offline";
  } else if (s === "online") {
    banner.className = "conn-banner hidden";
  }
}

async function onReady(ev, wasReconnect) {
  if (!wasReconnect) return;
  // Catch up on what happened while the socket was down.
  await attempt(async () => {
    await loadSubscriptions();
    renderSidebar();
    await room.catchUp();
  });
  toast("Reconnected.", "ok");
}

async function boot() {
  try {
    const me = await get("me");
    state.me = { _id: me._id, username: me.username, name: me.name, roles: me.roles || [] };
    await loadSubscriptions();
  } catch (e) {
    clear(root).append(h("div", { class: "boot error" }, `Could not start: ${e.message} `, h("a", { href: "/" }, "Try again")));
    return;
  }
  shell();
  renderSidebar();
  state.live = new Live({ onEvent: onLive, onState: onConnState, onReady });
  state.live.connect();
  window.addEventListener("popstate", routeFromLocation);
  window.addEventListener("unhandledrejection", (e) => { toast(e.reason && e.reason.message ? e.reason.message : "Something went wrong."); });
  await routeFromLocation();
}

// What the other modules ask of the shell (see bus.js).
answer("navigate", openRoom);
answer("room:ensure", ensureRoom);
on("sidebar:refresh", renderSidebar);

window.concord = { state, openRoom }; // for debugging and tests
boot();
