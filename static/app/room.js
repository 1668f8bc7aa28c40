// The room view: history with infinite scroll back, live updates, message actions, the composer
// (mentions/commands autocomplete, edit/quote modes, typing), uploads, and the thread side panel.
import { icon } from "./icons.js";
import { h, $, clear, append, dayKey, fmtDay } from "./dom.js";
import { get, post, prefix, upload } from "./api.js";
import { state, toast, attempt, roomTitle, roomType, canModerate, permalink } from "./state.js";
import { renderMessage } from "./messages.js";
import { EMOJI } from "./emoji.js";
import { on, emit, request } from "./bus.js";
import { showPanel, closePanel } from "./panels.js";
import * as dialogs from "./dialogs.js";
import { runCommand, COMMANDS } from "./commands.js";

// The app shell lives in main.js, which nobody imports: reach it through the bus.
const renderSidebar = () => emit("sidebar:refresh");
const openRoom = (rid, opts) => request("navigate", rid, opts);
const ensureRoom = (rid) => request("room:ensure", rid);

const PAGE = 50;
const GROUP_MS = 5 * 60 * 1000;
let openSeq = 0;
let composer = null;
let threadComposer = null;

export function roomPath(rid) {
  const t = roomType(rid);
  const sub = state.subs.get(rid); const r = state.rooms.get(rid);
  const name = (r && r.name) || (sub && sub.name) || rid;
  return t === "d" ? `/direct/${encodeURIComponent(rid)}` : `/${t === "p" ? "group" : "channel"}/${encodeURIComponent(name)}`;
}

export function emptyView() {
  return h("div", { class: "empty-room" }, h("h2", {}, `Welcome, ${state.me.name || state.me.username}`),
    h("p", {}, "Pick a room on the left, browse the directory, or start a conversation."),
    h("div", { class: "empty-actions" },
      h("button", { class: "primary", onclick: () => dialogs.directoryDialog() }, "Browse channels"),
      h("button", { onclick: () => dialogs.createRoomDialog() }, "Create a room"),
      h("button", { onclick: () => dialogs.dmDialog() }, "Direct message")));
}

export function showEmpty() {
  state.current = null; state.messages = []; closePanel();
  document.body.classList.remove("in-room");
  const view = $("#room-view"); if (view) clear(view).append(emptyView());
  renderSidebar();
}

function sortMessages(list) { list.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0)); }
const visibleInRoom = (m) => !m.tmid || m.tshow;

export async function open(rid, { msgId } = {}) {
  const seq = ++openSeq;
  if (state.current !== rid) closePanel();
  state.current = rid; state.messages = []; state.hasMore = true;
  const view = clear($("#room-view"));
  view.append(h("div", { class: "loading" }, "Loading…"));
  let r;
  try { r = await ensureRoom(rid); } catch (e) { if (seq === openSeq) { clear(view).append(h("div", { class: "empty-room error" }, e.message)); } return; }
  if (seq !== openSeq) return;
  buildRoomView(view, rid, r);
  await loadHistory(rid, seq);
  if (seq !== openSeq) return;
  if (msgId) highlight(msgId);
  markReadSoon(0);
  loadReceipts(rid);
  if (window.matchMedia("(min-width: 760px)").matches) composer?.focus();
}

function buildRoomView(view, rid, r) {
  clear(view);
  const t = roomType(rid);
  const roomIcon = icon(t === "c" ? "hash" : t === "p" ? "lock" : "at");
  view.append(
    h("header", { class: "room-head" },
      h("button", { class: "back", title: "Back to rooms", "aria-label": "Back to rooms", onclick: () => { history.pushState({}, "", "/"); showEmpty(); } }, icon("back")),
      h("div", { class: "room-title" }, h("h2", {}, h("span", { class: "room-icon" }, roomIcon), h("span", { id: "room-name" }, roomTitle(rid)),
          r && r.federated ? h("span", { class: "federated-tag", title: "People on other servers take part in this room" }, icon("globe", { size: 13 }), " federated") : null),
        h("div", { class: "room-topic", id: "room-topic" }, (r && r.topic) || "")),
      h("div", { class: "room-tools" },
        h("button", { id: "members-button", title: "Members", onclick: () => togglePanel("members") }, icon("members"), h("span", { class: "label" }, " Members")),
        t !== "d" ? h("button", { id: "settings-button", title: "Room settings", onclick: () => dialogs.settingsDialog(rid) }, icon("settings"), h("span", { class: "label" }, " Settings")) : null)),
    h("div", { class: `announcement${r && r.announcement ? "" : " hidden"}`, id: "announcement" }, (r && r.announcement) || ""),
    h("div", { class: "messages", id: "messages", onscroll: onScroll },
      h("div", { class: "history-top", id: "history-top" }, ""),
      h("div", { id: "msg-list", onclick: onMessageClick })),
    h("div", { class: "typing", id: "typing", "aria-live": "polite" }),
    h("div", { id: "composer-area" }),
    h("div", { class: "drop-overlay hidden", id: "drop-overlay" }, "Drop files to upload"),
  );
  renderComposerArea();
  let depth = 0;
  view.ondragenter = (e) => { if (hasFiles(e)) { depth++; $("#drop-overlay").classList.remove("hidden"); e.preventDefault(); } };
  view.ondragover = (e) => { if (hasFiles(e)) e.preventDefault(); };
  view.ondragleave = () => { depth = Math.max(0, depth - 1); if (!depth) $("#drop-overlay").classList.add("hidden"); };
  view.ondrop = (e) => {
    e.preventDefault(); depth = 0; $("#drop-overlay").classList.add("hidden");
    if (e.dataTransfer && e.dataTransfer.files.length) uploadFiles(rid, [...e.dataTransfer.files], {});
  };
}

const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");

let composerKey = null;

// Rebuild the composer only when what it may do changes (joined, muted, read-only...), so live
// counter updates never steal focus or drop a draft.
function renderComposerArea(force = true) {
  const area = $("#composer-area"); if (!area) return;
  const rid = state.current;
  const sub = state.subs.get(rid);
  const r = state.rooms.get(rid) || {};
  const key = JSON.stringify([rid, sub ? sub.state : null, sub ? !!sub.muted : null, !!r.archived, !!r.ro, !!r.broadcast, canModerate(rid)]);
  if (!force && key === composerKey) return;
  composerKey = key;
  clear(area);
  if (!sub || sub.state === "left") {
    area.append(h("div", { class: "composer-note" }, `You are previewing ${roomTitle(rid)}. `,
      r.t === "c" ? h("button", { class: "primary", id: "join-button", onclick: () => attempt(async () => {
        await post("channels.join", { roomId: rid });
        state.subs.set(rid, { rid, t: "c", name: r.name, fname: r.fname || r.name, roles: [], unread: 0, state: "joined" });
        renderComposerArea(); renderSidebar();
      }) }, "Join") : null));
    composer = null; return;
  }
  if (sub.state === "invited") {
    const answer = (action) => attempt(async () => {
      await post("rooms.invite", { roomId: rid, action });
      if (action === "accept") {
        sub.state = "joined";
        renderSidebar();
        await openRoom(rid, { push: false });
      } else {
        state.subs.delete(rid);
        renderSidebar();
        history.pushState({}, "", "/");
        showEmpty();
        toast("Invitation declined.", "info");
      }
    });
    area.append(h("div", { class: "composer-note invite-note" }, "You have been invited to this room. ",
      h("button", { class: "primary", id: "accept-invite", onclick: () => answer("accept") }, "Accept"), " ",
      h("button", { id: "decline-invite", onclick: () => answer("reject") }, "Decline")));
    composer = null; return;
  }
  if (r.archived) { area.append(h("div", { class: "composer-note" }, "This room is archived.")); composer = null; return; }
  if ((r.ro || r.broadcast) && !canModerate(rid)) {
    area.append(h("div", { class: "composer-note" }, r.broadcast ? "This is a broadcast room: only owners and moderators post." : "This room is read only."));
    composer = null; return;
  }
  composer = new Composer({ placeholder: `Message ${roomTitle(rid)}`, id: "composer", main: true,
    onSend: (text, mode) => sendFromComposer(rid, text, mode, null), onFiles: (files) => uploadFiles(rid, files, {}) });
  area.append(composer.el);
  if (sub.muted) area.append(h("div", { class: "composer-note small" }, "You are muted in this room and cannot post."));
}

// ---- history ----
async function loadHistory(rid, seq, latest = null) {
  const top = $("#history-top");
  if (top) top.textContent = "Loading…";
  const res = await attempt(() => get(`${prefix(roomType(rid))}.history`, { roomId: rid, count: PAGE, latest: latest || undefined, inclusive: latest ? "true" : undefined }));
  if (seq !== openSeq || !res) { if (top) top.textContent = ""; return; }
  const got = (res.messages || []).filter((m) => !state.messages.some((x) => x._id === m._id));
  state.messages.push(...got);
  sortMessages(state.messages);
  state.hasMore = (res.messages || []).length >= PAGE;
  if (top) top.textContent = state.hasMore ? "" : `This is the start of ${roomTitle(rid)}.`;
  const box = $("#messages");
  if (latest && box) {
    const before = box.scrollHeight - box.scrollTop;
    renderList(false);
    box.scrollTop = box.scrollHeight - before;
  } else renderList(true);
}

async function onScroll() {
  const box = $("#messages");
  if (!box || state.loadingOlder || !state.hasMore || !state.messages.length) return;
  if (box.scrollTop < 120) {
    state.loadingOlder = true;
    try { await loadHistory(state.current, openSeq, state.messages[0].ts); } finally { state.loadingOlder = false; }
  }
}

export async function catchUp() {
  const rid = state.current; if (!rid) return;
  const seq = openSeq;
  const res = await get(`${prefix(roomType(rid))}.history`, { roomId: rid, count: PAGE });
  if (seq !== openSeq) return;
  const fresh = res.messages || [];
  const byId = new Map(state.messages.map((m) => [m._id, m]));
  for (const m of fresh) byId.set(m._id, m);
  // Messages in the refreshed window that no longer come back were removed while offline.
  state.messages = [...byId.values()];
  sortMessages(state.messages);
  renderList(nearBottom());
  if (state.thread) await openThread(state.thread.root._id, true);
  markReadSoon(0);
  loadReceipts(rid);
  const r = await get("rooms.info", { roomId: rid }).catch(() => null);
  if (r && r.room) onRoomUpdated(r.room);
}

// ---- rendering ----
function nearBottom() { const b = $("#messages"); return !b || b.scrollHeight - b.scrollTop - b.clientHeight < 80; }
function scrollBottom() { const b = $("#messages"); if (b) b.scrollTop = b.scrollHeight; }

function seenByFor(list) {
  // Read receipts: on my latest message, the members whose read position is at or past it.
  const receipts = state.receipts.get(state.current);
  if (!receipts) return { id: null, names: [] };
  for (let i = list.length - 1; i >= 0; i--) {
    const m = list[i];
    if (m.ephemeral || m.t) continue;
    if (m.u && m.u._id === state.me._id) {
      const names = [...receipts.values()].filter((r) => r.user && r.user._id !== state.me._id && r.ts >= m.ts)
        .map((r) => r.user.name || r.user.username);
      return { id: m._id, names };
    }
    return { id: null, names: [] };
  }
  return { id: null, names: [] };
}

export function renderList(stick) {
  const list = $("#msg-list"); if (!list) return;
  const wasBottom = nearBottom();
  const msgs = state.messages.filter(visibleInRoom);
  const seen = seenByFor(msgs);
  const frag = document.createDocumentFragment();
  let prev = null;
  for (const m of msgs) {
    if (!prev || dayKey(prev.ts) !== dayKey(m.ts)) {
      frag.append(h("div", { class: "day-sep", role: "separator" }, h("span", {}, fmtDay(m.ts))));
      prev = null;
    }
    const grouped = !!(prev && !prev.t && !m.t && prev.u && m.u && prev.u._id === m.u._id && !m.quote && !m.tmid
      && new Date(m.ts) - new Date(prev.ts) < GROUP_MS && !prev.ephemeral && !m.ephemeral && (prev.alias || "") === (m.alias || ""));
    frag.append(renderMessage(m, { grouped, seenBy: seen.id === m._id ? seen.names : null }));
    prev = m;
  }
  clear(list).append(frag);
  if (stick || wasBottom) scrollBottom();
}

function highlight(id) {
  const el = document.getElementById(`msg-${id}`) || document.getElementById(`tmsg-${id}`);
  if (!el) { toast("That message is not loaded; scroll up to find it.", "info"); return; }
  el.scrollIntoView({ block: "center" });
  el.classList.add("flash");
  setTimeout(() => el.classList.remove("flash"), 2000);
}

// ---- live events ----
function findMessage(id) {
  return state.messages.find((m) => m._id === id)
    || (state.thread && (state.thread.root._id === id ? state.thread.root : state.thread.messages.find((m) => m._id === id)));
}

function applyToAll(id, fn) {
  for (const m of state.messages) if (m._id === id) fn(m);
  if (state.thread) {
    if (state.thread.root._id === id) fn(state.thread.root);
    for (const m of state.thread.messages) if (m._id === id) fn(m);
  }
}

export function onMessageEvent(ev) {
  const d = ev.data || {};
  const rid = ev.room_id || d.rid;
  if (rid !== state.current) return;
  if (ev.type === "message.new") {
    if (state.thread && d.tmid === state.thread.root._id && !state.thread.messages.some((m) => m._id === d._id)) {
      state.thread.messages.push(d); sortMessages(state.thread.messages); renderThread(true);
    }
    if (visibleInRoom(d) && !state.messages.some((m) => m._id === d._id)) {
      const stick = nearBottom() || (d.u && d.u._id === state.me._id);
      state.messages.push(d); sortMessages(state.messages);
      renderList(stick);
    }
    if (d.u) clearTyping(rid, d.u.username);
    if (d.u && d.u._id !== state.me._id) markReadSoon();
    return;
  }
  if (ev.type === "message.updated") {
    applyToAll(d._id, (m) => { for (const k of Object.keys(m)) if (!(k in d)) delete m[k]; Object.assign(m, d); });
  } else if (ev.type === "message.deleted") {
    applyToAll(d._id, (m) => { Object.assign(m, { deleted: true, msg: "", html: "", attachments: [], reactions: {}, pinned: false }); });
  } else if (ev.type === "reaction") {
    applyToAll(d._id, (m) => { m.reactions = d.reactions || {}; });
  }
  renderList(false);
  if (state.thread) renderThread(false);
}

export function onRoomUpdated(r) {
  if (r._id !== state.current) return;
  state.rooms.set(r._id, r);
  const name = $("#room-name"); if (name) name.textContent = roomTitle(r._id);
  const topic = $("#room-topic"); if (topic) topic.textContent = r.topic || "";
  const ann = $("#announcement");
  if (ann) { ann.textContent = r.announcement || ""; ann.classList.toggle("hidden", !r.announcement); }
  renderComposerArea(false);
}

export function onSubscription(sub) {
  if (!state.current || (sub && sub.rid !== state.current)) return;
  const name = $("#room-name"); if (name) name.textContent = roomTitle(state.current);
  renderComposerArea(false);
}

export function onMembership(rid, d) {
  const list = state.members.get(rid);
  if (list && d.user) {
    const i = list.findIndex((x) => x._id === d.user._id);
    if (d.state === "joined") {
      const entry = { ...(i >= 0 ? list[i] : {}), ...d.user, roles: d.roles || [], muted: !!d.muted };
      if (i >= 0) list[i] = entry; else list.push(entry);
    } else if (i >= 0) list.splice(i, 1);
  }
  const banned = state.banned || (state.banned = new Map());
  if (d.user) { const set = banned.get(rid) || new Set(); if (d.banned) set.add(d.user.username); else set.delete(d.user.username); banned.set(rid, set); }
  if (rid === state.current && state.panel === "members") dialogs.renderMembersPanel(rid);
}

// ---- typing ----
export function onTyping(rid, d) {
  if (!d || !d.username || d.username === state.me.username) return;
  const map = state.typing.get(rid) || new Map();
  if (d.typing) map.set(d.username, { name: d.name || d.username, until: Date.now() + 11000 });
  else map.delete(d.username);
  state.typing.set(rid, map);
  renderTyping();
}
function clearTyping(rid, username) { const m = state.typing.get(rid); if (m && m.delete(username)) renderTyping(); }
function renderTyping() {
  const el = $("#typing"); if (!el) return;
  const map = state.typing.get(state.current) || new Map();
  const now = Date.now();
  for (const [k, v] of map) if (v.until < now) map.delete(k);
  const names = [...map.values()].map((v) => v.name);
  el.textContent = !names.length ? "" : names.length === 1 ? `${names[0]} is typing…`
    : names.length <= 3 ? `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…` : "Several people are typing…";
}
setInterval(renderTyping, 1000);

// ---- reading ----
let readTimer = null;
export function markReadSoon(delay = 400) {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    const rid = state.current; const sub = state.subs.get(rid);
    if (!rid || !sub || sub.state !== "joined" || document.visibilityState !== "visible") return;
    if (!(state.live && state.live.send({ type: "read", room_id: rid }))) post("subscriptions.read", { rid }).catch(() => {});
    if (sub.unread || sub.userMentions || sub.groupMentions) { sub.unread = 0; sub.userMentions = 0; sub.groupMentions = 0; renderSidebar(); }
  }, delay);
}
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") markReadSoon(); });

export function onReceipt(rid, d) {
  if (!d || !d.user) return;
  const map = state.receipts.get(rid) || new Map();
  map.set(d.user._id, { user: d.user, ts: d.ts });
  state.receipts.set(rid, map);
  if (rid === state.current) renderList(false);
}

async function loadReceipts(rid) {
  const mine = [...state.messages].reverse().find((m) => !m.t && !m.ephemeral && visibleInRoom(m));
  if (!mine || !mine.u || mine.u._id !== state.me._id) return;
  const res = await get("chat.getMessageReadReceipts", { messageId: mine._id }).catch(() => null);
  if (!res || rid !== state.current) return;
  const map = state.receipts.get(rid) || new Map();
  for (const r of res.receipts || []) {
    const prev = map.get(r.user._id);
    if (!prev || prev.ts < r.ts) map.set(r.user._id, { user: r.user, ts: r.ts });
  }
  state.receipts.set(rid, map);
  renderList(false);
}

// ---- sending ----
async function sendFromComposer(rid, text, mode, tmid) {
  if (mode.editing) {
    const m = mode.editing;
    if (text.trim() === (m.msg || "").trim()) return true;
    return !!(await attempt(() => post("chat.update", { roomId: rid, msgId: m._id, text })));
  }
  if (text.startsWith("/") && !text.startsWith("//")) {
    const handled = await runCommand(rid, text, { tmid, local: addLocalMessage });
    if (handled !== "send") return handled !== false;
    text = text.replace(/^\/me\s+/, "");
  }
  if (!text.trim()) return true;
  let msg = text;
  if (mode.quoting) msg = `[ ](${permalink(rid, mode.quoting._id)}) ${text}`;
  const message = { rid, msg };
  if (tmid) message.tmid = tmid;
  const res = await attempt(() => post("chat.sendMessage", { message }));
  if (res && res.message) onMessageEvent({ type: "message.new", room_id: rid, data: res.message });
  return !!res;
}

export function addLocalMessage(text) {
  const m = { _id: `local-${Date.now()}-${Math.random().toString(36).slice(2)}`, rid: state.current, msg: text, html: "",
    ts: new Date().toISOString(), u: { _id: "system", username: "concord", name: "Concord" }, ephemeral: true };
  state.messages.push(m); renderList(true);
}

export async function uploadFiles(rid, files, { tmid, text }) {
  for (const file of files) {
    const bar = h("div", { class: "upload-progress" }, h("span", {}, `Uploading ${file.name}… `), h("progress", { max: 100, value: 0 }));
    ($("#composer-area") || document.body).prepend(bar);
    try {
      const form = new FormData();
      form.append("file", file, file.name);
      const res = await upload(`rooms.media/${encodeURIComponent(rid)}`, form, (p) => { bar.querySelector("progress").value = Math.round(p * 100); });
      const fileId = res.file && res.file._id;
      if (!fileId) throw new Error(`The server did not accept ${file.name}.`);
      const body = { msg: text || "" };
      if (tmid) body.tmid = tmid;
      const conf = await post(`rooms.mediaConfirm/${encodeURIComponent(rid)}/${encodeURIComponent(fileId)}`, body);
      if (conf.message) onMessageEvent({ type: "message.new", room_id: rid, data: conf.message });
    } catch (e) {
      toast(`Upload of ${file.name} failed: ${e.message}`);
    } finally { bar.remove(); }
  }
}

// ---- message actions ----
async function onMessageClick(e) {
  const btn = e.target.closest("[data-action]");
  if (!btn) return;
  const el = btn.closest("[data-id]");
  const m = el ? findMessage(el.dataset.id) : null;
  if (!m) return;
  e.preventDefault();
  await messageAction(btn.dataset.action, m, btn, el.id.startsWith("tmsg") ? "thread" : "room");
}

async function messageAction(action, m, btn, where) {
  const rid = m.rid || state.current;
  const target = where === "thread" ? threadComposer : composer;
  switch (action) {
    case "react": emojiPicker(btn, (code) => attempt(() => post("chat.react", { messageId: m._id, emoji: `:${code}:`, shouldReact: true }))); break;
    case "toggle-reaction": await attempt(() => post("chat.react", { messageId: m._id, emoji: btn.dataset.emoji })); break;
    case "quote": if (target) target.setQuote(m); else toast("You cannot post in this room."); break;
    case "open-thread": await openThread(btn.dataset.target || m.tmid || m._id); break;
    case "goto": highlight(btn.dataset.target); break;
    case "edit": if (target) target.setEdit(m); break;
    case "delete":
      if (await dialogs.confirmDialog("Delete this message? This cannot be undone.", "Delete")) {
        await attempt(() => post("chat.delete", { roomId: rid, msgId: m._id }));
      }
      break;
    case "pin": await attempt(() => post(m.pinned ? "chat.unPinMessage" : "chat.pinMessage", { messageId: m._id }), m.pinned ? "Message unpinned." : "Message pinned."); break;
    case "copy-link": await copyText(permalink(rid, m._id)); break;
    case "receipts": dialogs.receiptsDialog(m); break;
    default: break;
  }
}

async function copyText(text) {
  try { await navigator.clipboard.writeText(text); toast("Link copied.", "ok"); return; } catch (e) { /* fallback */ }
  const ta = h("textarea", { class: "offscreen" }); ta.value = text; document.body.append(ta); ta.select();
  const ok = document.execCommand && document.execCommand("copy"); ta.remove();
  if (ok) toast("Link copied.", "ok"); else dialogs.infoDialog("Copy this link", text);
}

export function emojiPicker(anchor, onPick) {
  document.querySelector(".emoji-picker")?.remove();
  const pick = h("div", { class: "emoji-picker", role: "dialog", "aria-label": "Pick an emoji" },
    EMOJI.map(([code, ch]) => h("button", { title: `:${code}:`, dataset: { code }, onclick: () => { pick.remove(); onPick(code); } }, ch)));
  document.body.append(pick);
  const r = anchor.getBoundingClientRect();
  const w = Math.min(300, window.innerWidth - 16);
  pick.style.width = `${w}px`;
  pick.style.left = `${Math.max(8, Math.min(r.right - w, window.innerWidth - w - 8))}px`;
  const top = r.top - pick.offsetHeight - 6;
  pick.style.top = `${top > 8 ? top : r.bottom + 6}px`;
  const close = (e) => { if (!pick.contains(e.target) && e.target !== anchor) { pick.remove(); document.removeEventListener("mousedown", close); } };
  setTimeout(() => document.addEventListener("mousedown", close), 0);
  const esc = (e) => { if (e.key === "Escape") { pick.remove(); document.removeEventListener("keydown", esc); } };
  document.addEventListener("keydown", esc);
}

// ---- side panel (thread / members); showPanel and closePanel are in panels.js ----
on("panel:closed", () => { threadComposer = null; });

function togglePanel(kind) {
  if (state.panel === kind) { closePanel(); return; }
  if (kind === "members") { closePanel(); state.panel = "members"; showPanel(); dialogs.renderMembersPanel(state.current, true); }
}

export async function openThread(tmid, refresh = false) {
  const rid = state.current;
  let root = findMessage(tmid);
  const [rootRes, replies] = await Promise.all([
    root && !refresh ? null : get("chat.getMessage", { msgId: tmid }).catch((e) => { toast(e.message); return null; }),
    get("chat.getThreadMessages", { tmid, count: 200 }).catch((e) => { toast(e.message); return null; }),
  ]);
  if (rootRes && rootRes.message) root = rootRes.message;
  if (!root || rid !== state.current) return;
  const keepDraft = state.thread && state.thread.root._id === tmid && threadComposer ? threadComposer.value() : "";
  state.panel = "thread";
  state.thread = { root, messages: (replies && replies.messages) || [] };
  sortMessages(state.thread.messages);
  const p = clear(showPanel());
  p.append(h("header", { class: "panel-head" }, h("h3", {}, "Thread"),
    h("button", { class: "close", title: "Close thread", "aria-label": "Close thread", onclick: closePanel }, icon("close"))),
  h("div", { class: "thread-list", id: "thread-list", onclick: onMessageClick }));
  const sub = state.subs.get(rid);
  if (sub && sub.state === "joined") {
    threadComposer = new Composer({ placeholder: "Reply in thread", id: "thread-composer",
      onSend: (text, mode) => sendFromComposer(rid, text, mode, tmid), onFiles: (files) => uploadFiles(rid, files, { tmid }) });
    p.append(threadComposer.el);
    if (keepDraft) threadComposer.setValue(keepDraft);
    threadComposer.focus();
  }
  renderThread(true);
}

function renderThread(stick) {
  const list = $("#thread-list"); if (!list || !state.thread) return;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
  append(clear(list), [renderMessage(state.thread.root, { inThread: true }),
    h("div", { class: "thread-count" }, `${state.thread.messages.length} ${state.thread.messages.length === 1 ? "reply" : "replies"}`),
    state.thread.messages.map((m) => renderMessage(m, { inThread: true }))]);
  if (stick || atBottom) list.scrollTop = list.scrollHeight;
}

// ---- composer ----
class Composer {
  constructor({ placeholder, id, main = false, onSend, onFiles }) {
    this.onSend = onSend; this.main = main; this.mode = {}; this.lastTyping = 0; this.typing = false;
    this.ta = h("textarea", { id, rows: 1, placeholder, "aria-label": placeholder, autocomplete: "off" });
    this.banner = h("div", { class: "composer-banner hidden" });
    this.popup = h("ul", { class: "autocomplete hidden", role: "listbox" });
    this.file = h("input", { type: "file", multiple: true, class: "hidden", "aria-label": "Upload files" });
    this.file.addEventListener("change", () => { if (this.file.files.length) onFiles([...this.file.files]); this.file.value = ""; });
    this.el = h("div", { class: "composer" }, this.banner, this.popup,
      h("div", { class: "composer-row" },
        h("button", { class: "attach", title: "Upload a file", "aria-label": "Upload a file", onclick: () => this.file.click() }, icon("attach")),
        this.ta,
        h("button", { class: "emoji-btn", title: "Insert emoji", "aria-label": "Insert emoji", onclick: (e) => emojiPicker(e.currentTarget, (code) => this.insert(EMOJI.find(([c]) => c === code)[1])) }, icon("smile")),
        h("button", { class: "send primary", title: "Send (Enter)", onclick: () => this.submit() }, "Send")),
      this.file);
    this.ta.addEventListener("keydown", (e) => this.onKey(e));
    this.ta.addEventListener("input", () => this.onInput());
    this.ta.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData?.files || [])];
      if (files.length) { e.preventDefault(); onFiles(files); }
    });
    this.items = []; this.sel = 0;
  }
  focus() { this.ta.focus(); }
  value() { return this.ta.value; }
  setValue(v) { this.ta.value = v; this.autosize(); }
  insert(s) { const { selectionStart: a, selectionEnd: b, value } = this.ta; this.ta.value = value.slice(0, a) + s + value.slice(b); this.ta.selectionStart = this.ta.selectionEnd = a + s.length; this.ta.focus(); this.autosize(); }
  autosize() { this.ta.style.height = "auto"; this.ta.style.height = `${Math.min(200, this.ta.scrollHeight)}px`; }

  setBanner(text) {
    clear(this.banner);
    if (!text) { this.banner.classList.add("hidden"); return; }
    this.banner.classList.remove("hidden");
    this.banner.append(h("span", {}, text), h("button", { class: "link", onclick: () => this.cancel() }, "Cancel (Esc)"));
  }
  setQuote(m) {
    this.mode = { quoting: m };
    const who = m.u ? (m.u.name || m.u.username) : "";
    this.setBanner(`Replying to ${who}: ${(m.msg || "").slice(0, 80)}`);
    this.focus();
  }
  setEdit(m) {
    this.mode = { editing: m };
    this.setValue(m.msg || "");
    this.setBanner("Editing message");
    this.el.classList.add("editing");
    this.focus();
  }
  cancel() {
    const wasEdit = !!this.mode.editing;
    this.mode = {}; this.setBanner(null); this.el.classList.remove("editing");
    if (wasEdit) this.setValue("");
  }

  async submit() {
    const text = this.ta.value;
    if (!text.trim() && !this.mode.editing) return;
    this.closePopup();
    const mode = this.mode;
    this.setValue(""); this.cancel(); this.stopTyping();
    const ok = await this.onSend(text, mode);
    if (ok === false) { this.setValue(text); if (mode.editing) this.setEdit(mode.editing); }
  }

  onKey(e) {
    if (!this.popup.classList.contains("hidden") && this.items.length) {
      if (e.key === "ArrowDown") { e.preventDefault(); this.sel = (this.sel + 1) % this.items.length; this.renderPopup(); return; }
      if (e.key === "ArrowUp") { e.preventDefault(); this.sel = (this.sel - 1 + this.items.length) % this.items.length; this.renderPopup(); return; }
      const it = this.items[this.sel];
      // Already typed in full ("/help", "@bob"): Enter sends instead of completing.
      const exact = this.ta.value.slice(it.replace[0], it.replace[1]) === it.text.trim();
      if (e.key === "Enter" && exact) this.closePopup();
      else if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); this.choose(it); return; }
      if (e.key === "Escape") { e.preventDefault(); this.closePopup(); return; }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.submit(); return; }
    if (e.key === "Escape") { if (this.mode.editing || this.mode.quoting) { e.preventDefault(); this.cancel(); } return; }
    if (e.key === "ArrowUp" && !this.ta.value) {
      const list = this.main ? state.messages.filter(visibleInRoom) : (state.thread ? state.thread.messages : []);
      const mine = [...list].reverse().find((m) => m.u && m.u._id === state.me._id && !m.t && !m.deleted && !m.ephemeral);
      if (mine) { e.preventDefault(); this.setEdit(mine); }
    }
  }

  onInput() {
    this.autosize();
    const text = this.ta.value;
    if (this.main) {
      if (text.trim() && !text.startsWith("/")) {
        if (Date.now() - this.lastTyping > 3000) { this.lastTyping = Date.now(); this.typing = true; state.live?.send({ type: "typing", room_id: state.current, typing: true }); }
      } else this.stopTyping();
    }
    this.updateAutocomplete();
  }
  stopTyping() {
    if (this.typing) { this.typing = false; this.lastTyping = 0; state.live?.send({ type: "typing", room_id: state.current, typing: false }); }
  }

  async updateAutocomplete() {
    const before = this.ta.value.slice(0, this.ta.selectionStart);
    const cmd = before.match(/^\/(\w*)$/);
    if (cmd) {
      this.items = COMMANDS.filter((c) => c.name.startsWith(cmd[1])).map((c) => ({ label: `/${c.name} ${c.args}`, hint: c.help, replace: [0, before.length], text: `/${c.name} `, command: true }));
      this.sel = 0; this.renderPopup(); return;
    }
    const m = before.match(/(^|\s)@([\w.\-:]*)$/);
    if (!m) { this.closePopup(); return; }
    const term = m[2].toLowerCase();
    const start = before.length - m[2].length - 1;
    const members = await dialogs.loadMembers(state.current).catch(() => []);
    // A user of another Matrix server is named by their Matrix ID ("@bob:example.org"): typed once, with one "@".
    const handle = (u) => u.username.replace(/^@/, "");
    const cands = members.filter((u) => u.username !== state.me.username && (handle(u).toLowerCase().startsWith(term) || (u.name || "").toLowerCase().includes(term)))
      .slice(0, 8).map((u) => ({ label: `@${handle(u)}`, hint: u.name || "", replace: [start, before.length], text: `@${handle(u)} `, avatar: u.username }));
    for (const g of [["all", "notify everyone in the room"], ["here", "notify everyone online"]]) {
      if (g[0].startsWith(term)) cands.push({ label: `@${g[0]}`, hint: g[1], replace: [start, before.length], text: `@${g[0]} ` });
    }
    this.items = cands; this.sel = 0; this.renderPopup();
  }
  renderPopup() {
    clear(this.popup);
    if (!this.items.length) { this.closePopup(); return; }
    this.popup.classList.remove("hidden");
    this.items.forEach((it, i) => this.popup.append(h("li", { class: i === this.sel ? "sel" : "", role: "option", "aria-selected": i === this.sel ? "true" : "false",
      onmousedown: (e) => { e.preventDefault(); this.choose(it); } },
      it.avatar ? h("img", { class: "avatar tiny", src: `/avatar/${encodeURIComponent(it.avatar)}`, alt: "" }) : null,
      h("strong", {}, it.label), h("span", { class: "muted" }, ` ${it.hint}`))));
  }
  closePopup() { this.items = []; this.popup.classList.add("hidden"); clear(this.popup); }
  choose(it) {
    const v = this.ta.value;
    this.ta.value = v.slice(0, it.replace[0]) + it.text + v.slice(it.replace[1]);
    const pos = it.replace[0] + it.text.length;
    this.ta.selectionStart = this.ta.selectionEnd = pos;
    this.closePopup(); this.ta.focus();
  }
}

