// Shortcode <-> character table for reactions (Rocket.Chat stores reactions as ":shortcode:").
// The table itself is emoji.json, which the server's federation bridge reads too.
import TABLE from "./emoji.json" with { type: "json" };

export const EMOJI = TABLE.emoji;
const BY_CODE = new Map([...EMOJI, ...TABLE.aliases]);

export function emojiChar(code) {
  const name = String(code || "").replace(/^:|:$/g, "");
  if (BY_CODE.has(name)) return BY_CODE.get(name);
  // A reaction from another Matrix server with a character we have no shortcode for is kept as ":<char>:".
  return /^[\x00-\x7f]*$/.test(name) ? `:${name}:` : name;
}
