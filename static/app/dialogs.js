// Dialogs and the members panel: create room, start DM, directory, profile, room settings,
// read receipts, confirmation; members with roles and moderation actions.
import { icon } from "./icons.js";
import { h, $, clear, fmtTime } from "./dom.js";
import { get, post, prefix, upload } from "./api.js";
import { state, toast, attempt, roomTitle, roomType, canModerate, isAdmin } from "./state.js";
import { emit, request } from "./bus.js";
import { showPanel, closePanel } from "./panels.js";

// The app shell lives in main.js, which nobody imports: reach it through the bus.
const renderSidebar = () => emit("sidebar:refresh");
const openRoom = (rid, opts) => request("navigate", rid, opts);

export function modal(title, body, { actions = [], onClose, cls = "" } = {}) {
  const dlg = h("dialog", { class: `modal ${cls}`, "aria-label": title });
  const err = h("p", { class: "form-error hidden", role: "alert" });
  const close = () => { dlg.close(); };
  dlg.addEventListener("close", () => { dlg.remove(); if (onClose) onClose(); });
  dlg.append(h("header", {}, h("h2", {}, title), h("button", { class: "close", type: "button", "aria-label": "Close", onclick: close }, icon("close"))),
    err, body, ...(actions.length ? [h("footer", {}, actions)] : []));  // (a null would show as "null")
  document.body.append(dlg);
  dlg.showModal();
  dlg.showError = (msg) => { err.textContent = msg; err.classList.remove("hidden"); };
  return dlg;
}

async function submitting(dlg, btn, fn) {
  btn.disabled = true;
  try { await fn(); } catch (e) { dlg.showError(e.message || "Something went wrong."); } finally { btn.disabled = false; }
}

const splitNames = (s) => String(s || "").split(/[\s,]+/).map((x) => x.replace(/^@/, "")).filter(Boolean);

export function confirmDialog(text, okLabel = "OK") {
  return new Promise((resolve) => {
    let result = false;
    const ok = h("button", { class: "danger", id: "confirm-ok", onclick: () => { result = true; dlg.close(); } }, okLabel);
    const dlg = modal("Please confirm", h("p", {}, text), { actions: [h("button", { onclick: () => dlg.close() }, "Cancel"), ok], onClose: () => resolve(result) });
    ok.focus();
  });
}

export function infoDialog(title, text) { modal(title, h("pre", { class: "wrap" }, text)); }

export function createRoomDialog() {
  const name = h("input", { name: "name", required: true, placeholder: "e.g. marketing", autocomplete: "off" });
  const topic = h("input", { name: "topic", placeholder: "What is it about?" });
  const members = h("input", { name: "members", placeholder: "alice, bob" });
  const priv = h("input", { type: "checkbox", name: "private" });
  const ro = h("input", { type: "checkbox", name: "readOnly" });
  const bc = h("input", { type: "checkbox", name: "broadcast" });
  const btn = h("button", { class: "primary", type: "submit" }, "Create");
  const form = h("form", { class: "form" },
    h("label", {}, "Name", name), h("label", {}, "Topic", topic), h("label", {}, "Invite members (usernames)", members),
    h("label", { class: "check" }, priv, " Private group (invite only)"),
    h("label", { class: "check" }, ro, " Read-only (only owners and moderators post)"),
    h("label", { class: "check" }, bc, " Broadcast (only owners and moderators post; replies go to DMs)"), btn);
  const dlg = modal("Create a room", form);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submitting(dlg, btn, async () => {
      const t = priv.checked ? "p" : "c";
      const res = await post(`${prefix(t)}.create`, { name: name.value.trim(), members: splitNames(members.value), readOnly: ro.checked,
        extraData: { broadcast: bc.checked, topic: topic.value.trim() } });
      const room = res.channel || res.group;
      state.rooms.set(room._id, room);
      if (!state.subs.has(room._id)) state.subs.set(room._id, { rid: room._id, t, name: room.name, fname: room.fname || room.name, roles: ["owner"], unread: 0, state: "joined" });
      dlg.close(); renderSidebar(); openRoom(room._id);
    });
  });
  name.focus();
}

export async function startDm(usernames) {
  const names = usernames.filter((u) => u !== state.me.username);
  if (!names.length) throw new Error("Name at least one other user.");
  const res = names.length === 1 ? await post("dm.create", { username: names[0] }) : await post("dm.create", { usernames: names.join(",") });
  const room = res.room;
  const rid = room.rid || room._id;
  state.rooms.set(rid, { ...room, _id: rid });
  if (!state.subs.has(rid)) state.subs.set(rid, { rid, t: "d", name: names.join(", "), fname: names.join(", "), roles: [], unread: 0, state: "joined" });
  renderSidebar();
  await openRoom(rid);
}

export function dmDialog() {
  const input = h("input", { name: "usernames", placeholder: "alice (or several: alice, bob)", autocomplete: "off", required: true });
  const results = h("ul", { class: "pick-list" });
  const btn = h("button", { class: "primary", type: "submit" }, "Start");
  const form = h("form", { class: "form" }, h("label", {}, "Users", input), results, btn);
  const dlg = modal("Direct message", form);
  let timer;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const term = splitNames(input.value).at(-1) || "";
    timer = setTimeout(async () => {
      clear(results);
      if (!term) return;
      const res = await get("users.list", { filter: term, count: 8 }).catch(() => ({ users: [] }));
      for (const u of res.users || []) {
        if (u.username === state.me.username) continue;
        results.append(h("li", { onclick: () => { const parts = splitNames(input.value); parts[parts.length - 1] = u.username; input.value = parts.join(", ") + ", "; input.focus(); clear(results); } },
          h("img", { class: "avatar tiny", src: `/avatar/${encodeURIComponent(u.username)}`, alt: "" }), h("strong", {}, u.name || u.username), h("span", { class: "muted" }, ` @${u.username}`)));
      }
    }, 200);
  });
  form.addEventListener("submit", (e) => { e.preventDefault(); submitting(dlg, btn, async () => { await startDm(splitNames(input.value)); dlg.close(); }); });
  input.focus();
}

export function directoryDialog() {
  const search = h("input", { type: "search", placeholder: "Search channels", "aria-label": "Search channels" });
  const server = h("input", { type: "text", name: "server", placeholder: "This server (or e.g. matrix.org)", "aria-label": "Server", autocomplete: "off" });
  const list = h("ul", { class: "directory-list" });
  const more = h("button", { class: "more", hidden: true }, "More rooms");
  const dlg = modal("Directory", h("div", {}, h("div", { class: "dir-search" }, search, server), list, more), { cls: "wide" });
  let next = null;
  const joinLocal = (r) => attempt(async () => {
    await post("channels.join", { roomId: r._id });
    state.rooms.set(r._id, r);
    state.subs.set(r._id, { rid: r._id, t: "c", name: r.name, fname: r.fname || r.name, roles: [], unread: 0, state: "joined" });
    dlg.close(); renderSidebar(); openRoom(r._id);
  });
  const joinRemote = (r, srv) => attempt(async () => {
    const res = await post("federation/joinExternalPublicRoom", { externalRoomId: r.canonicalAlias || r.id, serverName: srv });
    const room = res.room;
    state.rooms.set(room._id, room);
    state.subs.set(room._id, { rid: room._id, t: room.t, name: room.name, fname: room.fname || room.name, roles: [], unread: 0, state: "joined" });
    dlg.close(); renderSidebar(); openRoom(room._id);
  });
  const loadLocal = async (q) => {
    const res = await get("channels.list", { count: 100, query: q ? { name: { $regex: q } } : undefined });
    clear(list);
    const rooms = res.channels || [];
    if (!rooms.length) list.append(h("li", { class: "muted" }, q ? "No channels match." : "No public channels yet."));
    for (const r of rooms) {
      const joined = state.subs.has(r._id) && state.subs.get(r._id).state === "joined";
      list.append(h("li", {},
        h("div", { class: "dir-info" }, h("strong", {}, `# ${r.fname || r.name}`), h("span", { class: "muted" }, ` ${r.usersCount || 0} member${r.usersCount === 1 ? "" : "s"}`),
          r.topic ? h("div", { class: "muted small" }, r.topic) : null),
        h("div", { class: "dir-actions" },
          h("button", { onclick: () => { state.rooms.set(r._id, r); dlg.close(); openRoom(r._id); } }, joined ? "Open" : "Preview"),
          joined ? null : h("button", { class: "primary", dataset: { join: r.name }, onclick: () => joinLocal(r) }, "Join"))));
    }
  };
  const loadRemote = async (q, srv, append) => {
    const res = await get("federation/searchPublicRooms", { serverName: srv, roomName: q || undefined, count: 30, pageToken: append ? next : undefined });
    if (!append) clear(list);
    next = res.nextPageToken || null;
    more.hidden = !next;
    const rooms = res.rooms || [];
    if (!rooms.length && !append) list.append(h("li", { class: "muted" }, q ? `No rooms on ${srv} match.` : `${srv} lists no public rooms.`));
    for (const r of rooms) {
      list.append(h("li", {},
        h("div", { class: "dir-info" }, h("strong", {}, `# ${r.name}`), h("span", { class: "muted" }, ` ${r.joinedMembers} member${r.joinedMembers === 1 ? "" : "s"} · ${r.canonicalAlias || r.id}`),
          r.topic ? h("div", { class: "muted small" }, r.topic) : null),
        h("div", { class: "dir-actions" },
          r.canJoin ? h("button", { class: "primary", dataset: { join: r.canonicalAlias || r.id }, onclick: () => joinRemote(r, srv) }, "Join")
            : h("span", { class: "muted small" }, "Invite only"))));
    }
  };
  const load = async (append = false) => {
    const q = search.value.trim();
    const srv = server.value.trim().toLowerCase();
    more.hidden = true;
    try {
      if (!srv) await loadLocal(q);
      else await loadRemote(q, srv, append);
    } catch (e) { if (!append) clear(list); list.append(h("li", { class: "form-error" }, e.message)); }
  };
  more.addEventListener("click", () => load(true));
  let timer;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => load(), 250); });
  server.addEventListener("change", () => load());
  server.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); load(); } });
  load(); search.focus();
}

export function profileDialog() {
  const name = h("input", { name: "name", value: state.me.name || "" });
  const preview = h("img", { class: "avatar big", src: `/avatar/${encodeURIComponent(state.me.username)}?t=${Date.now()}`, alt: "Your avatar" });
  const file = h("input", { type: "file", accept: "image/*", name: "avatar", "aria-label": "Avatar image" });
  const btn = h("button", { class: "primary", type: "submit" }, "Save");
  const csrf = (document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/) || [])[1] || "";
  const signout = h("form", { method: "post", action: "/logout", class: "inline" }, h("input", { type: "hidden", name: "csrfmiddlewaretoken", value: decodeURIComponent(csrf) }),
    h("button", { type: "submit", class: "danger", id: "sign-out" }, "Sign out"));
  const form = h("form", { class: "form" }, h("div", { class: "profile-top" }, preview, h("div", {}, h("strong", {}, `@${state.me.username}`), h("label", {}, "Avatar", file))),
    h("label", {}, "Display name", name), btn);
  const dlg = modal("Profile", h("div", {}, form, h("hr"), signout));
  file.addEventListener("change", () => { if (file.files[0]) preview.src = URL.createObjectURL(file.files[0]); });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submitting(dlg, btn, async () => {
      if (name.value.trim() !== (state.me.name || "")) {
        const res = await post("users.updateOwnBasicInfo", { data: { name: name.value.trim() } });
        state.me.name = res.user ? res.user.name : name.value.trim();
        $("#me-name").textContent = state.me.name;
      }
      if (file.files[0]) {
        const fd = new FormData(); fd.append("image", file.files[0]);
        await upload("users.setAvatar", fd);
        const stamp = Date.now();
        $("#me-avatar").src = `/avatar/${encodeURIComponent(state.me.username)}?t=${stamp}`;
        for (const img of document.querySelectorAll(`img.avatar[src^="/avatar/${CSS.escape(state.me.username)}"]`)) img.src = `/avatar/${encodeURIComponent(state.me.username)}?t=${stamp}`;
      }
      toast("Profile saved.", "ok");
      dlg.close();
    });
  });
}

export const HISTORY_VISIBILITY = [["shared", "All earlier messages"], ["invited", "Messages from their invitation on"],
  ["joined", "Messages from when they joined"], ["world_readable", "All messages; anyone may read (other servers too)"]];

export function settingsDialog(rid) {
  const r = state.rooms.get(rid) || {};
  const t = roomType(rid);
  const can = canModerate(rid);
  const f = (label, el) => h("label", {}, label, el);
  const name = h("input", { name: "name", value: r.name || "", disabled: !can });
  const topic = h("input", { name: "topic", value: r.topic || "", disabled: !can });
  const desc = h("textarea", { name: "description", rows: 2, disabled: !can }); desc.value = r.description || "";
  const ann = h("textarea", { name: "announcement", rows: 2, disabled: !can }); ann.value = r.announcement || "";
  const ro = h("input", { type: "checkbox", name: "readOnly", checked: !!r.ro, disabled: !can });
  const bc = h("input", { type: "checkbox", name: "broadcast", checked: !!r.broadcast, disabled: !can });
  const hv = h("select", { name: "historyVisibility", disabled: !can },
    ...HISTORY_VISIBILITY.map(([v, label]) => h("option", { value: v, selected: (r.historyVisibility || "shared") === v }, label)));
  const btn = h("button", { class: "primary", type: "submit", disabled: !can }, "Save");
  const p = prefix(t);
  const form = h("form", { class: "form" }, f("Name", name), f("Topic", topic), f("Description", desc), f("Announcement", ann),
    h("label", { class: "check" }, ro, " Read-only"), h("label", { class: "check" }, bc, " Broadcast"),
    f("New members see", hv), can ? btn : h("p", { class: "muted" }, "Only owners and moderators change settings."));
  const danger = h("div", { class: "danger-zone" },
    h("button", { id: "leave-room", onclick: () => attempt(async () => {
      if (!(await confirmDialog(`Leave ${roomTitle(rid)}?`, "Leave"))) return;
      await post(`${p}.leave`, { roomId: rid }); dlg.close();
    }) }, "Leave room"),
    can ? h("button", { onclick: () => attempt(async () => {
      await post(`${p}.${r.archived ? "unarchive" : "archive"}`, { roomId: rid }); dlg.close();
    }, r.archived ? "Room unarchived." : "Room archived.") }, r.archived ? "Unarchive" : "Archive") : null,
    can ? h("button", { class: "danger", onclick: () => attempt(async () => {
      if (!(await confirmDialog(`Delete ${roomTitle(rid)} and all its messages? This cannot be undone.`, "Delete room"))) return;
      await post(`${p}.delete`, { roomId: rid }); dlg.close();
    }) }, "Delete room") : null);
  const fedBox = h("div", { class: "federation-box" });
  const dlg = modal(`Settings · ${roomTitle(rid)}`, h("div", {}, form, fedBox, h("hr"), danger));
  if (t !== "d") federationSection(rid, fedBox, dlg);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submitting(dlg, btn, async () => {
      if (name.value.trim() && name.value.trim() !== r.name) await post(`${p}.rename`, { roomId: rid, name: name.value.trim() });
      if (topic.value !== (r.topic || "")) await post(`${p}.setTopic`, { roomId: rid, topic: topic.value });
      if (desc.value !== (r.description || "")) await post(`${p}.setDescription`, { roomId: rid, description: desc.value });
      if (ann.value !== (r.announcement || "")) await post(`${p}.setAnnouncement`, { roomId: rid, announcement: ann.value });
      if (ro.checked !== !!r.ro) await post(`${p}.setReadOnly`, { roomId: rid, readOnly: ro.checked });
      if (bc.checked !== !!r.broadcast) await post("rooms.saveRoomSettings", { rid, broadcast: bc.checked });
      if (hv.value !== (r.historyVisibility || "shared")) await post("rooms.saveRoomSettings", { rid, historyVisibility: hv.value });
      toast("Settings saved.", "ok");
      dlg.close();
    });
  });
}

// The Matrix side of a federated room: its ID, the servers in it and (for owners) its server ACL.
async function federationSection(rid, box, dlg) {
  let fed;
  try { fed = (await get("rooms.federation", { roomId: rid })).federation; } catch { return; }
  if (!fed) return;
  const owner = isAdmin() || (state.subs.get(rid)?.roles || []).includes("owner");
  const acl = fed.serverAcl || { allow: ["*"], deny: [], allowIpLiterals: true };
  const lines = (list) => (list || []).join("\n");
  const allow = h("textarea", { name: "aclAllow", rows: 2, disabled: !owner, placeholder: "* (every server)" });
  allow.value = lines(acl.allow.filter((p) => p !== "*"));
  const deny = h("textarea", { name: "aclDeny", rows: 2, disabled: !owner, placeholder: "evil.example.org, *.spam.example" });
  deny.value = lines(acl.deny);
  const save = h("button", { type: "button", disabled: !owner }, "Save server ACL");
  const split = (text) => text.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
  save.addEventListener("click", () => attempt(async () => {
    await post("rooms.setServerAcl", { roomId: rid, allow: split(allow.value), deny: split(deny.value), allowIpLiterals: acl.allowIpLiterals });
  }, "Server ACL saved."));
  box.append(h("hr"), h("h3", {}, "Federation"),
    h("p", { class: "muted small" }, `Matrix room ${fed.roomId} (version ${fed.roomVersion})${fed.alias ? ` · ${fed.alias}` : ""}`),
    h("p", { class: "muted small", id: "federation-servers" }, `Servers in the room: ${(fed.servers || []).join(", ") || "only this one"}`),
    h("label", {}, "Servers allowed (one per line; empty: every server)", allow),
    h("label", {}, "Servers denied", deny),
    owner ? save : h("p", { class: "muted" }, "Only the room's owners change its server ACL."));
}

export async function receiptsDialog(m) {
  const list = h("ul", { class: "pick-list" }, h("li", { class: "muted" }, "Loading…"));
  modal("Read by", list);
  try {
    const res = await get("chat.getMessageReadReceipts", { messageId: m._id });
    clear(list);
    const rs = res.receipts || [];
    if (!rs.length) list.append(h("li", { class: "muted" }, "Nobody has read this message yet."));
    for (const r of rs) list.append(h("li", {}, h("img", { class: "avatar tiny", src: `/avatar/${encodeURIComponent(r.user.username)}`, alt: "" }),
      h("strong", {}, r.user.name || r.user.username), h("span", { class: "muted" }, ` read at ${fmtTime(r.ts)}`)));
  } catch (e) { clear(list).append(h("li", { class: "form-error" }, e.message)); }
}

// ---- members ----
export async function loadMembers(rid, force = false) {
  if (!rid) return [];
  if (!force && state.members.has(rid)) return state.members.get(rid);
  const p = prefix(roomType(rid));
  const named = p !== "dm";
  const [mem, roles, info, bans] = await Promise.all([get(`${p}.members`, { roomId: rid, count: 500 }),
    named ? get(`${p}.roles`, { roomId: rid }).catch(() => ({ roles: [] })) : Promise.resolve({ roles: [] }),
    get("rooms.info", { roomId: rid }).catch(() => ({ room: {} })),
    named && canModerate(rid) ? get("rooms.bannedUsers", { roomId: rid }).catch(() => ({ users: [] })) : Promise.resolve(null)]);
  const roleMap = new Map((roles.roles || []).map((r) => [r.u._id, r.roles]));
  const muted = new Set((info.room && info.room.muted) || []);
  const list = (mem.members || []).map((u) => ({ _id: u._id, username: u.username, name: u.name, status: u.status,
    roles: roleMap.get(u._id) || [], muted: muted.has(u.username) }));
  state.members.set(rid, list);
  if (bans) (state.banned || (state.banned = new Map())).set(rid, new Set(bans.users.map((u) => u.username)));
  return list;
}

export async function userAction(rid, action, username) {
  const p = prefix(roomType(rid));
  const body = { roomId: rid, username };
  const calls = {
    invite: [`${p}.invite`, `${username} was added.`], kick: [`${p}.kick`, `${username} was removed.`],
    ban: ["rooms.banUser", `${username} was banned.`], unban: ["rooms.unbanUser", `${username} was unbanned.`],
    mute: ["rooms.muteUser", `${username} was muted.`], unmute: ["rooms.unmuteUser", `${username} was unmuted.`],
    addOwner: [`${p}.addOwner`, `${username} is now an owner.`], removeOwner: [`${p}.removeOwner`, `${username} is no longer an owner.`],
    addModerator: [`${p}.addModerator`, `${username} is now a moderator.`], removeModerator: [`${p}.removeModerator`, `${username} is no longer a moderator.`],
  };
  const [path, ok] = calls[action];
  await post(path, body);
  return ok;
}

// The server of a remote user (their username is their Matrix ID, @name:server), else "".
export function remoteServer(username) {
  const m = /^@[^:]+:(.+)$/.exec(String(username || ""));
  return m ? m[1] : "";
}

export async function renderMembersPanel(rid, fetch = false) {
  if (state.panel !== "members" || rid !== state.current) return;
  const p = showPanel();
  let members;
  try { members = await loadMembers(rid, fetch); } catch (e) { clear(p).append(h("p", { class: "form-error" }, e.message)); return; }
  if (state.panel !== "members") return;
  const mod = canModerate(rid) && roomType(rid) !== "d";
  const invite = h("input", { placeholder: "username", "aria-label": "Username to add", id: "invite-input" });
  const act = (action, username) => attempt(async () => { const msg = await userAction(rid, action, username); toast(msg, "ok");
    if (action === "mute" || action === "unmute") { const m = members.find((x) => x.username === username); if (m) m.muted = action === "mute"; }
    await loadMembers(rid, true); renderMembersPanel(rid); });
  clear(p).append(h("header", { class: "panel-head" }, h("h3", {}, `Members (${members.length})`),
    h("button", { class: "close", "aria-label": "Close members", onclick: closePanel }, icon("close"))));
  if (roomType(rid) !== "d") {
    p.append(h("form", { class: "invite-form", onsubmit: (e) => { e.preventDefault(); const u = invite.value.trim().replace(/^@/, ""); if (u) { invite.value = ""; act("invite", u); } } },
      invite, h("button", { type: "submit" }, "Add")));
  }
  const ul = h("ul", { class: "member-list" });
  const order = (m) => (m.roles.includes("owner") ? 0 : m.roles.includes("moderator") ? 1 : 2);
  for (const m of [...members].sort((a, b) => order(a) - order(b) || a.username.localeCompare(b.username))) {
    const self = m._id === state.me._id;
    const b = (label, action, cls = "") => h("button", { class: `small ${cls}`, dataset: { action, user: m.username }, onclick: () => act(action, m.username) }, label);
    ul.append(h("li", { class: "member", dataset: { username: m.username } },
      h("img", { class: "avatar small", src: `/avatar/${encodeURIComponent(m.username)}`, alt: "" }),
      h("div", { class: "member-info" }, h("strong", {}, m.name || m.username),
        h("span", { class: "muted" }, m.username.startsWith("@") ? ` ${m.username}` : ` @${m.username}`),
        h("div", {}, m.roles.map((r) => h("span", { class: `role role-${r}` }, r)), m.muted ? h("span", { class: "role role-muted" }, "muted") : null,
          remoteServer(m.username) ? h("span", { class: "role role-remote", title: "A user of another server" }, icon("globe", { size: 12 }), ` ${remoteServer(m.username)}`) : null)),
      mod && !self ? h("details", { class: "member-menu" }, h("summary", { "aria-label": `Actions for ${m.username}` }, icon("more")),
        h("div", { class: "menu" },
          m.muted === true ? b("Unmute", "unmute") : m.muted === false ? b("Mute", "mute") : [b("Mute", "mute"), b("Unmute", "unmute")],
          m.roles.includes("moderator") ? b("Remove moderator", "removeModerator") : b("Make moderator", "addModerator"),
          m.roles.includes("owner") ? b("Remove owner", "removeOwner") : b("Make owner", "addOwner"),
          b("Kick", "kick", "danger"), b("Ban", "ban", "danger"))) : null));
  }
  p.append(ul);
  const invited = await get("rooms.invitations", { roomId: rid }).then((r) => r.invitations || []).catch(() => []);
  if (invited.length && state.panel === "members" && rid === state.current) {
    const il = h("ul", { class: "member-list invited", id: "invited-list" });
    for (const m of invited) {
      il.append(h("li", { class: "member invited", dataset: { username: m.username } },
        h("img", { class: "avatar small", src: `/avatar/${encodeURIComponent(m.username)}`, alt: "" }),
        h("div", { class: "member-info" }, h("strong", {}, m.name || m.username),
          h("span", { class: "muted" }, m.username.startsWith("@") ? ` ${m.username}` : ` @${m.username}`),
          h("div", {}, h("span", { class: "role role-invited" }, "invitation pending"),
            remoteServer(m.username) ? h("span", { class: "role role-remote" }, icon("globe", { size: 12 }), ` ${remoteServer(m.username)}`) : null)),
        mod ? h("button", { class: "small", dataset: { action: "revoke", user: m.username }, onclick: () => act("kick", m.username) }, "Revoke") : null));
    }
    p.append(h("h4", { class: "panel-sub" }, `Invited (${invited.length})`), il);
  }
  if (mod) {
    const banned = [...((state.banned && state.banned.get(rid)) || [])];
    const unban = h("input", { placeholder: "username", "aria-label": "Username to unban" });
    p.append(h("div", { class: "banned" }, h("h4", {}, "Banned"), banned.length ? h("ul", {}, banned.map((u) => h("li", {}, u, " ", h("button", { class: "small", onclick: () => act("unban", u) }, "Unban")))) : null,
      h("form", { class: "invite-form", onsubmit: (e) => { e.preventDefault(); const u = unban.value.trim().replace(/^@/, ""); if (u) { unban.value = ""; act("unban", u); } } }, unban, h("button", { type: "submit" }, "Unban"))));
  }
  if (isAdmin() && false) p.append(h("div"));
}
