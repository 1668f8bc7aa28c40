// Toolbar and list icons as inline SVG (stroke in the text colour), so they never depend on the
// fonts the system has: a missing emoji glyph used to show as an empty box.
const NS = "http://www.w3.org/2000/svg";

// Each icon: a list of [element, attributes] on a 24x24 grid.
const SHAPES = {
  close: [["path", { d: "M6 6l12 12M18 6L6 18" }]],
  more: [["circle", { cx: 5, cy: 12, r: 1.4, fill: "currentColor" }], ["circle", { cx: 12, cy: 12, r: 1.4, fill: "currentColor" }],
    ["circle", { cx: 19, cy: 12, r: 1.4, fill: "currentColor" }]],
  lock: [["rect", { x: 5, y: 11, width: 14, height: 9, rx: 2 }], ["path", { d: "M8 11V8a4 4 0 0 1 8 0v3" }]],
  smile: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M8.5 14.5q3.5 3 7 0" }],
    ["circle", { cx: 9, cy: 9.5, r: 0.9, fill: "currentColor" }], ["circle", { cx: 15, cy: 9.5, r: 0.9, fill: "currentColor" }]],
  quote: [["path", { d: "M5 17c2-1 3-3 3-6H5V7h5v4c0 4-2 6-5 6zM13 17c2-1 3-3 3-6h-3V7h5v4c0 4-2 6-5 6z" }]],
  thread: [["path", { d: "M4 5h16v10h-9l-4 4v-4H4z" }]],
  edit: [["path", { d: "M4 20l4-1 11-11-3-3L5 16z" }], ["path", { d: "M14 7l3 3" }]],
  pin: [["path", { d: "M9 4h6l-1 6 3 3H7l3-3z" }], ["path", { d: "M12 13v7" }]],
  unpin: [["path", { d: "M9 4h6l-1 6 3 3H7l3-3z" }], ["path", { d: "M12 13v7M4 4l16 16" }]],
  link: [["path", { d: "M10 14l4-4M8.5 11.5l-2 2a3 3 0 0 0 4 4l2-2M15.5 12.5l2-2a3 3 0 0 0-4-4l-2 2" }]],
  receipts: [["path", { d: "M2 13l4 4 7-8M10 16l1 1 9-10" }]],
  trash: [["path", { d: "M4 7h16M9 7V4h6v3M10 11v6M14 11v6" }], ["rect", { x: 6, y: 7, width: 12, height: 13, rx: 1 }]],
  back: [["path", { d: "M19 12H5M11 6l-6 6 6 6" }]],
  members: [["circle", { cx: 9, cy: 8, r: 3 }], ["path", { d: "M3 19c0-3 3-5 6-5s6 2 6 5" }],
    ["circle", { cx: 17, cy: 9, r: 2.5 }], ["path", { d: "M16.5 14c2.5 0 4.5 2 4.5 5" }]],
  settings: [["circle", { cx: 12, cy: 12, r: 3 }],
    ["path", { d: "M12 3v3M12 18v3M3 12h3M18 12h3M5.6 5.6l2.1 2.1M16.3 16.3l2.1 2.1M5.6 18.4l2.1-2.1M16.3 7.7l2.1-2.1" }]],
  attach: [["path", { d: "M16 7l-7 7a2 2 0 0 0 3 3l7-7a4 4 0 0 0-6-6l-7 7a6 6 0 0 0 8 8l6-6" }]],
  federation: [["path", { d: "M4 8h15l-3-3M20 16H5l3 3" }]],
  directory: [["path", { d: "M9 6h11M9 12h11M9 18h11" }], ["circle", { cx: 4.5, cy: 6, r: 1, fill: "currentColor" }],
    ["circle", { cx: 4.5, cy: 12, r: 1, fill: "currentColor" }], ["circle", { cx: 4.5, cy: 18, r: 1, fill: "currentColor" }]],
  hash: [["path", { d: "M9 4L7 20M17 4l-2 16M4 9h16M3 15h16" }]],
  at: [["circle", { cx: 12, cy: 12, r: 3.5 }], ["path", { d: "M15.5 12v1.5a2.5 2.5 0 0 0 5 0V12a8.5 8.5 0 1 0-3.3 6.7" }]],
  globe: [["circle", { cx: 12, cy: 12, r: 9 }], ["path", { d: "M3 12h18M12 3c3 3 3 15 0 18M12 3c-3 3-3 15 0 18" }]],
};

export function icon(name, { title = "", size = 16 } = {}) {
  const svg = document.createElementNS(NS, "svg");
  for (const [k, v] of Object.entries({ viewBox: "0 0 24 24", width: size, height: size, fill: "none", stroke: "currentColor",
    "stroke-width": 1.8, "stroke-linecap": "round", "stroke-linejoin": "round", class: `icon icon-${name}`, "aria-hidden": title ? "false" : "true" })) {
    svg.setAttribute(k, String(v));
  }
  if (title) {
    const t = document.createElementNS(NS, "title");
    t.textContent = title;
    svg.append(t);
  }
  for (const [tag, attrs] of SHAPES[name] || []) {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    svg.append(el);
  }
  return svg;
}
