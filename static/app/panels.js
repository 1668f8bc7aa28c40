// The side panel (#side-panel, the thread or the members list): showing and closing it. What goes
// in it is drawn by room.js (thread) and dialogs.js (members), which both import this module.
// Closing emits "panel:closed" on the bus, on which room.js drops its thread composer.
import { $, clear } from "./dom.js";
import { state } from "./state.js";
import { emit } from "./bus.js";

export function closePanel() {
  state.panel = null; state.thread = null; emit("panel:closed");
  const p = $("#side-panel"); if (p) { clear(p); p.classList.add("hidden"); }
  document.body.classList.remove("panel-open");
}

export function showPanel() { const p = $("#side-panel"); p.classList.remove("hidden"); document.body.classList.add("panel-open"); return p; }
