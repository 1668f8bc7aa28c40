// The administrators' Federation page: status in words, the run-time switches (federation,
// typing, receipts, presence, the remote room size cap), the server allow/deny rules (add,
// remove; the environment's list wins when set), each remote server's delivery state with
// "Retry now", the remote servers' keys, and the federation check of this or another server.
import { h, clear, fmtTime } from "./dom.js";
import { get, post } from "./api.js";
import { attempt } from "./state.js";
import { modal } from "./dialogs.js";

const SWITCHES = [
  ["Federation_Matrix_enabled", "Federation on"],
  ["Federation_Matrix_enable_ephemeral_events", "Typing, receipts and presence cross servers"],
  ["Federation_Matrix_typing", "Typing notifications"],
  ["Federation_Matrix_receipts", "Read receipts"],
  ["Federation_Matrix_presence", "Presence"],
];

async function switchesSection(reload) {
  const box = h("div", { class: "federation-switches" });
  const values = await Promise.all(SWITCHES.map(([id]) => get(`settings/${id}`).then((r) => r.value).catch(() => null)));
  SWITCHES.forEach(([id, label], i) => {
    const input = h("input", { type: "checkbox", name: id });
    input.checked = values[i] === true;
    input.addEventListener("change", () => attempt(async () => {
      await post(`settings/${id}`, { value: input.checked });
      await reload();
    }, `${label}: ${input.checked ? "on" : "off"}.`));
    box.append(h("label", { class: "switch" }, input, " ", label));
  });
  const cap = h("input", { type: "number", min: "0", name: "Federation_Matrix_max_size_of_public_rooms_users", class: "small" });
  cap.value = String((await get("settings/Federation_Matrix_max_size_of_public_rooms_users").catch(() => ({ value: "" }))).value);
  cap.addEventListener("change", () => attempt(async () => {
    await post("settings/Federation_Matrix_max_size_of_public_rooms_users", { value: Number(cap.value) });
  }, "Room size cap saved."));
  box.append(h("label", {}, "Largest remote public room users may join (0: no cap) ", cap));
  return box;
}

function rulesList(kind, rules, fromEnv, reload) {
  const list = h("ul", { class: "pick-list rules", dataset: { kind } });
  if (fromEnv) list.append(h("li", { class: "muted" }, `Set by the environment (it wins): ${fromEnv.join(", ") || "—"}`));
  for (const r of rules) {
    list.append(h("li", {}, h("code", {}, r.pattern), r.note ? h("span", { class: "muted" }, ` — ${r.note}`) : null, " ",
      h("button", { class: "small", onclick: () => attempt(async () => { await post("federation/admin.removeRule", { pattern: r.pattern, kind }); await reload(); }) }, "Remove")));
  }
  if (!rules.length && !fromEnv) list.append(h("li", { class: "muted" }, kind === "allow" ? "None: every server not denied" : "None"));
  return list;
}

export function federationAdminDialog() {
  const body = h("div", { class: "federation-admin" }, h("p", { class: "muted" }, "Loading…"));
  modal("Federation", body, { cls: "wide" });
  const load = async () => {
    let s;
    try { s = await get("federation/admin.status"); } catch (e) { clear(body).append(h("p", { class: "form-error" }, e.message)); return; }
    clear(body);
    body.append(h("p", { id: "federation-state" }, h("strong", {}, s.state), s.serverName ? ` · ${s.serverName}` : ""));
    for (const p of s.problems || []) body.append(h("p", { class: "form-error" }, p));
    body.append(h("h3", {}, "Switches"), await switchesSection(load));

    const pattern = h("input", { name: "pattern", placeholder: "evil.example.org or *.example.org" });
    const kind = h("select", { name: "kind" }, h("option", { value: "deny" }, "deny"), h("option", { value: "allow" }, "allow"));
    const note = h("input", { name: "note", placeholder: "why (optional)" });
    const add = h("button", { type: "submit" }, "Add rule");
    const form = h("form", { class: "inline-form" }, pattern, kind, note, add);
    form.addEventListener("submit", (e) => { e.preventDefault(); attempt(async () => {
      await post("federation/admin.addRule", { pattern: pattern.value.trim(), kind: kind.value, note: note.value.trim() });
      await load();
    }, "Rule added."); });
    body.append(h("h3", {}, "Denied servers"), rulesList("deny", s.rules.deny, s.rules.fromEnvironment.deny, load),
      h("h3", {}, "Allowed servers"), rulesList("allow", s.rules.allow, s.rules.fromEnvironment.allow, load), form);

    const table = h("table", { class: "destinations" }, h("thead", {}, h("tr", {},
      ...["Server", "State", "Last success", "Queued", "Rooms", "Last error", ""].map((t) => h("th", {}, t)))));
    const tbody = h("tbody", {});
    for (const d of s.destinations) {
      tbody.append(h("tr", { dataset: { server: d.serverName } }, h("td", {}, d.serverName), h("td", { class: `state ${d.state.replace(" ", "-")}` }, d.state),
        h("td", {}, d.lastSuccessAt ? fmtTime(d.lastSuccessAt) : "never"), h("td", {}, `${d.queuedEvents} events, ${d.queuedEdus} other`),
        h("td", {}, String(d.rooms)), h("td", { class: "muted small" }, d.lastError || ""),
        h("td", {}, h("button", { class: "small", onclick: () => attempt(async () => { await post("federation/admin.retry", { serverName: d.serverName }); await load(); }, `Retrying ${d.serverName}.`) }, "Retry now"))));
    }
    if (!s.destinations.length) tbody.append(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "Nothing sent to another server yet.")));
    table.append(tbody);
    body.append(h("h3", {}, "Remote servers"), table);

    const keys = h("table", { class: "remote-keys" }, h("thead", {}, h("tr", {},
      ...["Server", "Key", "Valid until", "Fetched"].map((t) => h("th", {}, t)))));
    const kbody = h("tbody", {});
    for (const k of s.remoteKeys || []) {
      kbody.append(h("tr", { dataset: { server: k.serverName } }, h("td", {}, k.serverName),
        h("td", { class: "small" }, h("code", { title: k.key }, k.keyId)),
        h("td", {}, k.expiredAt ? `retired ${fmtTime(k.expiredAt)}` : (k.validUntil ? fmtTime(k.validUntil) : "")),
        h("td", { class: "muted small" }, k.fetchedAt ? fmtTime(k.fetchedAt) : "")));
    }
    if (!(s.remoteKeys || []).length) kbody.append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No other server's keys fetched yet.")));
    keys.append(kbody);
    body.append(h("h3", {}, "Remote servers' signing keys"), keys);

    const target = h("input", { name: "checkServer", placeholder: `this server (${s.serverName || "?"})` });
    const out = h("ul", { class: "check-steps" });
    const run = h("button", { type: "submit" }, "Run the check");
    const check = h("form", { class: "inline-form" }, target, run);
    check.addEventListener("submit", (e) => { e.preventDefault(); attempt(async () => {
      clear(out).append(h("li", { class: "muted" }, "Checking…"));
      const r = await post("federation/admin.check", { serverName: target.value.trim() });
      clear(out);
      for (const st of r.steps) out.append(h("li", { class: st.ok ? "ok" : "fail" }, `${st.ok ? "OK" : "FAIL"} · ${st.label}: ${st.detail}`));
      out.append(h("li", { class: r.ok ? "ok" : "fail", id: "check-result" }, r.ok ? `${r.target}: all checks passed.` : `${r.target}: something failed (see above).`));
    }); });
    body.append(h("h3", {}, "Check"), check, out);
  };
  load();
}
