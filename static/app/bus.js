// The event bus: how modules reach the app shell (main.js) without importing it, so the module
// graph has no cycles. main.js registers the handlers at start-up:
//   request("navigate", rid, opts)  open a room (returns the promise of main.js' openRoom)
//   request("room:ensure", rid)     the room object, fetched with rooms.info if not known yet (promise)
//   emit("sidebar:refresh")         redraw the room list
// and panels.js emits "panel:closed" when the side panel closes.
// Imports nothing.

const listeners = new Map(); // name -> [fn, ...], for emit
const answerers = new Map(); // name -> fn, for request

// Call fn(...args) on every emit(name, ...args). Returns a function that removes it.
export function on(name, fn) {
  if (!listeners.has(name)) listeners.set(name, []);
  listeners.get(name).push(fn);
  return () => { const list = listeners.get(name) || []; const i = list.indexOf(fn); if (i >= 0) list.splice(i, 1); };
}

// Run the listeners of name synchronously, in registration order (an exception propagates to the caller).
export function emit(name, ...args) {
  for (const fn of [...(listeners.get(name) || [])]) fn(...args);
}

// Register the single handler that answers request(name, ...args).
export function answer(name, fn) {
  if (answerers.has(name)) throw new Error(`bus: "${name}" already has a handler`);
  answerers.set(name, fn);
}

// Call the handler of name and return what it returns (a value or a promise).
export function request(name, ...args) {
  const fn = answerers.get(name);
  if (!fn) throw new Error(`bus: nothing answers "${name}"`);
  return fn(...args);
}
