// Shortcode <-> character table for reactions (Rocket.Chat stores reactions as ":shortcode:").
export const EMOJI = [
  ["thumbsup", "👍"], ["thumbsdown", "👎"], ["heart", "❤️"], ["joy", "😂"], ["smile", "😄"], ["grinning", "😀"],
  ["slight_smile", "🙂"], ["wink", "😉"], ["blush", "😊"], ["heart_eyes", "😍"], ["thinking", "🤔"], ["neutral_face", "😐"],
  ["rolling_eyes", "🙄"], ["confused", "😕"], ["cry", "😢"], ["sob", "😭"], ["angry", "😠"], ["scream", "😱"],
  ["sunglasses", "😎"], ["sweat_smile", "😅"], ["upside_down", "🙃"], ["sleeping", "😴"], ["partying_face", "🥳"], ["clap", "👏"],
  ["pray", "🙏"], ["wave", "👋"], ["ok_hand", "👌"], ["raised_hands", "🙌"], ["muscle", "💪"], ["point_up", "☝️"],
  ["eyes", "👀"], ["fire", "🔥"], ["tada", "🎉"], ["rocket", "🚀"], ["star", "⭐"], ["sparkles", "✨"],
  ["100", "💯"], ["white_check_mark", "✅"], ["x", "❌"], ["warning", "⚠️"], ["question", "❓"], ["bulb", "💡"],
  ["coffee", "☕"], ["beer", "🍺"], ["pizza", "🍕"], ["cake", "🍰"], ["bug", "🐛"], ["zap", "⚡"],
  ["sun", "☀️"], ["rainbow", "🌈"], ["moon", "🌙"], ["cat", "🐱"], ["dog", "🐶"], ["unicorn", "🦄"],
  ["see_no_evil", "🙈"], ["skull", "💀"], ["poop", "💩"], ["money_with_wings", "💸"], ["lock", "🔒"], ["link", "🔗"],
];
const BY_CODE = new Map(EMOJI.map(([c, e]) => [c, e]));
BY_CODE.set("+1", "👍"); BY_CODE.set("-1", "👎"); BY_CODE.set("laughing", "😆");

export function emojiChar(code) {
  const name = String(code || "").replace(/^:|:$/g, "");
  return BY_CODE.get(name) || `:${name}:`;
}
