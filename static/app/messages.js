// Rendering of one message (pure DOM building). Text, names and file names go in as text nodes;
// only the server's sanitized `html` is parsed as HTML.
import { icon } from "./icons.js";
import { h, fmtTime, fmtSize, safeUrl } from "./dom.js";
import { emojiChar } from "./emoji.js";
import { state } from "./state.js";

const HISTORY_WORDS = { shared: "all earlier messages", invited: "messages from their invitation on",
  joined: "messages from when they joined", world_readable: "all messages, readable by anyone" };

const SYSTEM = {
  uj: (m) => `${m.msg || m.u?.username} joined the room`,
  ul: (m) => `${m.msg || m.u?.username} left the room`,
  au: (m) => `${m.u?.username} added ${m.msg}`,
  ru: (m) => `${m.u?.username} removed ${m.msg}`,
  "user-banned": (m) => `${m.u?.username} banned ${m.msg}`,
  "user-unbanned": (m) => `${m.u?.username} unbanned ${m.msg}`,
  "user-muted": (m) => `${m.u?.username} muted ${m.msg}`,
  "user-unmuted": (m) => `${m.u?.username} unmuted ${m.msg}`,
  "subscription-role-added": (m) => { const [u, r] = String(m.msg).split(":"); return `${m.u?.username} made ${u} ${r}`; },
  "subscription-role-removed": (m) => { const [u, r] = String(m.msg).split(":"); return `${m.u?.username} removed ${r} from ${u}`; },
  room_changed_topic: (m) => `${m.u?.username} changed the topic to: ${m.msg}`,
  room_changed_description: (m) => `${m.u?.username} changed the description to: ${m.msg}`,
  room_changed_announcement: (m) => `${m.u?.username} changed the announcement to: ${m.msg}`,
  r: (m) => `${m.u?.username} renamed the room to ${m.msg}`,
  "room-archived": (m) => `${m.u?.username} archived the room`,
  "room-unarchived": (m) => `${m.u?.username} unarchived the room`,
  "room-set-read-only": (m) => `${m.u?.username} made the room read only`,
  "room-removed-read-only": (m) => `${m.u?.username} made the room writable`,
  room_changed_history_visibility: (m) => `${m.u?.username} changed what new members see to: ${HISTORY_WORDS[m.msg] || m.msg}`,
  "federation-delayed": (m) => `Messages to ${m.msg} are delayed: that server has not answered for a while. They will be delivered when it is back.`,
  "federation-resumed": (m) => `${m.msg} answers again: delayed messages are being delivered.`,
  "message_pinned": (m) => `${m.u?.username} pinned a message`,
  "room_e2e_enabled": () => "Encryption enabled",
};

export function systemText(m) {
  const f = SYSTEM[m.t];
  return f ? f(m) : `${m.u?.username || "system"}: ${m.msg || m.t}`;
}

function mentionClasses(container) {
  for (const span of container.querySelectorAll("span.mention")) {
    const u = span.dataset.username;
    if (u === state.me.username) span.classList.add("me");
    else if (u === "all" || u === "here") span.classList.add("group");
  }
}

export function renderAttachments(m) {
  const out = [];
  for (const a of m.attachments || []) {
    if (a.image_url) {
      out.push(h("figure", { class: "att att-image" },
        h("a", { href: a.title_link || a.image_url, target: "_blank", rel: "noopener" },
          h("img", { src: a.image_preview || a.image_url, alt: a.title || "image", loading: "lazy",
            width: a.image_dimensions ? Math.min(360, a.image_dimensions.width) : null })),
        h("figcaption", {}, a.title || "", a.description ? ` — ${a.description}` : "")));
    } else if (a.audio_url) {
      out.push(h("figure", { class: "att att-audio" }, h("audio", { controls: true, preload: "none", src: a.audio_url }),
        h("figcaption", {}, h("a", { href: a.title_link || a.audio_url, target: "_blank" }, a.title || "audio"))));
    } else if (a.video_url) {
      out.push(h("figure", { class: "att att-video" }, h("video", { controls: true, preload: "metadata", src: a.video_url }),
        h("figcaption", {}, h("a", { href: a.title_link || a.video_url, target: "_blank" }, a.title || "video"))));
    } else if (a.federation_pending) {
      // A file on another server that this server is still fetching.
      out.push(h("div", { class: "att att-file pending" }, "⏳ ", h("span", {}, a.title || "file"),
        h("span", { class: "muted" }, " (arriving from another server)"),
        a.description ? h("div", { class: "att-desc" }, a.description) : null));
    } else if (a.title_link || a.title) {
      out.push(h("div", { class: "att att-file" }, "📄 ",
        h("a", { href: a.title_link || "#", target: "_blank", rel: "noopener", download: a.title_link_download ? (a.title || "") : null }, a.title || "file"),
        a.image_size || a.size ? h("span", { class: "muted" }, ` ${fmtSize(a.size)}`) : null,
        a.description ? h("div", { class: "att-desc" }, a.description) : null));
    } else if (a.text || a.author_name) {
      // A Rocket.Chat quote attachment (message_link + author + text).
      out.push(h("blockquote", { class: "quote" }, h("div", { class: "quote-author" }, a.author_name || ""), h("div", {}, a.text || "")));
    }
  }
  return out;
}

export function renderReactions(m) {
  const r = m.reactions || {};
  const keys = Object.keys(r);
  if (!keys.length) return null;
  return h("div", { class: "reactions" }, keys.map((emoji) => {
    const users = r[emoji].usernames || [];
    const names = r[emoji].names && r[emoji].names.length ? r[emoji].names : users;
    const mine = users.includes(state.me.username);
    return h("button", { class: `reaction${mine ? " mine" : ""}`, dataset: { action: "toggle-reaction", emoji },
      title: `${names.join(", ")} reacted with ${emoji}`, "aria-label": `${emoji} ${users.length}` },
      h("span", { class: "emo" }, emojiChar(emoji)), h("span", { class: "count" }, String(users.length)));
  }), h("button", { class: "reaction add", dataset: { action: "react" }, title: "Add reaction" }, "+☺"));
}

// `opts`: {grouped, inThread, seenBy: [names]}
export function renderMessage(m, opts = {}) {
  if (m.t) {
    return h("div", { class: "msg system", id: `msg-${m._id}`, dataset: { id: m._id } },
      h("span", { class: "sys-text" }, systemText(m)), h("time", { datetime: m.ts, title: new Date(m.ts).toLocaleString() }, fmtTime(m.ts)));
  }
  const own = m.u && state.me && m.u._id === state.me._id;
  const ignored = !own && m.u && (state.subs.get(m.rid)?.ignored || []).includes(m.u._id);
  if (ignored && !opts.showIgnored) {
    const el = h("div", { class: "msg ignored", id: `${opts.inThread ? "tmsg" : "msg"}-${m._id}`, dataset: { id: m._id } },
      h("span", { class: "muted small" }, "Message from a user you ignore. "));
    el.append(h("button", { class: "small", onclick: () => el.replaceWith(renderMessage(m, { ...opts, showIgnored: true })) }, "Show"));
    return el;
  }
  const name = m.alias || (m.u && (m.u.name || m.u.username)) || "unknown";
  const username = m.u ? m.u.username : "";
  const el = h("div", { class: `msg${opts.grouped ? " grouped" : ""}${own ? " own" : ""}${m.deleted ? " deleted" : ""}${m.pinned ? " pinned" : ""}${m.ephemeral ? " ephemeral" : ""}`,
    id: `${opts.inThread ? "tmsg" : "msg"}-${m._id}`, dataset: { id: m._id } });
  el.append(opts.grouped ? h("div", { class: "avatar-space" }, h("time", { datetime: m.ts, class: "hover-time" }, fmtTime(m.ts)))
    : h("img", { class: "avatar", src: `/avatar/${encodeURIComponent(username)}`, alt: "" }));
  const body = h("div", { class: "msg-body" });
  if (!opts.grouped) {
    body.append(h("div", { class: "msg-head" },
      h("span", { class: "msg-name" }, name),
      // A user of another Matrix server is named by their Matrix ID, which has its own "@".
      username && name !== username ? h("span", { class: "msg-user" }, username.startsWith("@") ? username : `@${username}`) : null,
      h("time", { datetime: m.ts, title: new Date(m.ts).toLocaleString() }, fmtTime(m.ts)),
      m.pinned ? h("span", { class: "tag pin", title: "Pinned" }, icon("pin", { size: 12 }), " pinned") : null,
    ));
  }
  if (m.quote && !m.deleted) {
    body.append(h("blockquote", { class: "quote", dataset: { action: "goto", target: m.quote._id } },
      h("div", { class: "quote-author" }, m.quote.u ? (m.quote.u.name || m.quote.u.username) : ""),
      h("div", { class: "quote-text" }, m.quote.msg || "(deleted message)")));
  }
  if (m.tmid && !opts.inThread) {
    body.append(h("div", { class: "thread-ref", dataset: { action: "open-thread", target: m.tmid } }, "↳ replied in a thread"));
  }
  if (m.deleted) {
    body.append(h("div", { class: "msg-text deleted-text" }, "This message was deleted."));
  } else {
    const text = h("div", { class: "msg-text" });
    if (typeof m.html === "string" && m.html) {
      text.innerHTML = m.html; // sanitized server-side (nh3 allow-list); the only innerHTML in the client
      mentionClasses(text);
    } else if (m.msg) {
      text.textContent = m.msg;
    }
    // The edited marker sits at the end of the last paragraph, not on a line of its own.
    const tail = text.lastElementChild && text.lastElementChild.tagName === "P" ? text.lastElementChild : text;
    if (m.editedAt) tail.append(h("span", { class: "edited", title: `Edited ${new Date(m.editedAt).toLocaleString()}${m.editedBy ? ` by ${m.editedBy.username}` : ""}` }, " (edited)"));
    body.append(text);
    body.append(...renderAttachments(m));
    const reactions = renderReactions(m);
    if (reactions) body.append(reactions);
  }
  if (m.tcount && !opts.inThread) {
    body.append(h("button", { class: "thread-summary", dataset: { action: "open-thread" } },
      `💬 ${m.tcount} ${m.tcount === 1 ? "reply" : "replies"}`, m.tlm ? h("span", { class: "muted" }, ` · last ${fmtTime(m.tlm)}`) : null));
  }
  if (opts.seenBy && opts.seenBy.length) {
    body.append(h("div", { class: "seen-by", title: "Read receipts" }, `✓ Seen by ${opts.seenBy.join(", ")}`));
  }
  if (m.ephemeral) body.append(h("div", { class: "muted small" }, "Only you can see this."));
  el.append(body);
  if (!m.deleted && !m.ephemeral) el.append(actionBar(m, own, opts));
  return el;
}

function actionBar(m, own, opts) {
  const b = (action, label, title) => h("button", { dataset: { action }, title, "aria-label": title }, label);
  return h("div", { class: "msg-actions" },
    b("react", icon("smile"), "Add reaction"),
    b("quote", icon("quote"), "Reply with quote"),
    opts.inThread ? null : b("open-thread", icon("thread"), "Reply in thread"),
    own ? b("edit", icon("edit"), "Edit") : null,
    b("pin", icon(m.pinned ? "unpin" : "pin"), m.pinned ? "Unpin" : "Pin"),
    b("copy-link", icon("link"), "Copy link"),
    b("receipts", icon("receipts"), "Read by"),
    b("delete", icon("trash"), "Delete"),
  );
}
