// Slash commands typed in the composer. Federated ids (@alice:example.org) pass through unchanged.
import { post, prefix } from "./api.js";
import { state, toast, roomType } from "./state.js";
import { userAction, startDm } from "./dialogs.js";

export const COMMANDS = [
  { name: "invite", args: "@user", help: "Add a user to this room" },
  { name: "kick", args: "@user", help: "Remove a user from this room" },
  { name: "ban", args: "@user", help: "Ban a user from this room" },
  { name: "unban", args: "@user", help: "Lift a ban" },
  { name: "mute", args: "@user", help: "Stop a user from posting here" },
  { name: "unmute", args: "@user", help: "Let a muted user post again" },
  { name: "topic", args: "text", help: "Set the room topic" },
  { name: "leave", args: "", help: "Leave this room" },
  { name: "dm", args: "@user [@user…]", help: "Start a direct message" },
  { name: "me", args: "text", help: "Say something in the third person" },
  { name: "help", args: "", help: "List the commands" },
];

const USER_RE = /@?([A-Za-z0-9_.\-]+(?::[A-Za-z0-9.\-]+(?::\d+)?)?)/g;
const users = (args) => [...args.matchAll(USER_RE)].map((m) => m[1]);

// Returns true when handled, false on failure (text stays in the composer), "send" to post as text.
export async function runCommand(rid, text, { local }) {
  const m = text.match(/^\/(\w+)\s*([\s\S]*)$/);
  if (!m) return "send";
  const [, name, args] = m;
  const cmd = COMMANDS.find((c) => c.name === name.toLowerCase());
  if (!cmd) { toast(`Unknown command /${name}. Type /help for the list.`); return false; }
  const need = (list) => { if (!list.length) throw new Error(`Usage: /${cmd.name} ${cmd.args}`); return list; };
  const p = prefix(roomType(rid));
  try {
    switch (cmd.name) {
      case "help":
        local(["Commands:", ...COMMANDS.map((c) => `/${c.name} ${c.args} — ${c.help}`)].join("\n"));
        return true;
      case "me": {
        const body = args.trim();
        if (!body) throw new Error("Usage: /me text");
        const res = await post("chat.sendMessage", { message: { rid, msg: `_${body}_` } });
        return !!res;
      }
      case "topic":
        await post(`${p}.setTopic`, { roomId: rid, topic: args.trim() });
        toast("Topic changed.", "ok"); return true;
      case "leave":
        await post(`${p}.leave`, { roomId: rid });
        toast("You left the room.", "ok"); return true;
      case "dm":
        await startDm(need(users(args))); return true;
      default: {
        for (const u of need(users(args))) toast(await userAction(rid, cmd.name, u), "ok");
        return true;
      }
    }
  } catch (e) {
    toast(e.message || "The command failed.");
    return false;
  }
}

export { state };
