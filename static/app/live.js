// The live-event WebSocket (/websocket, session-cookie auth) with reconnect and back-off.
// States: "connecting" -> "online" (after the server's `ready`) -> "offline" (dropped; retrying).

export class Live {
  constructor({ onEvent, onState, onReady }) {
    this.onEvent = onEvent; this.onState = onState; this.onReady = onReady;
    this.ws = null; this.attempt = 0; this.state = "connecting"; this.everReady = false;
    this.pingTimer = null; this.retryTimer = null;
    window.addEventListener("online", () => this.reconnectNow());
  }

  connect() {
    clearTimeout(this.retryTimer);
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try { ws = new WebSocket(`${proto}//${location.host}/websocket`); } catch (e) { this.scheduleRetry(); return; }
    this.ws = ws;
    ws.onmessage = (e) => {
      let ev; try { ev = JSON.parse(e.data); } catch (err) { return; }
      if (ev.type === "ready") {
        const wasReconnect = this.everReady;
        this.everReady = true; this.attempt = 0; this.setState("online");
        this.onReady(ev, wasReconnect);
      } else if (ev.type !== "pong") {
        this.onEvent(ev);
      }
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null; clearInterval(this.pingTimer);
      if (e.code === 4001) { location.href = "/login"; return; }
      this.setState("offline");
      this.scheduleRetry();
    };
    ws.onerror = () => { /* onclose follows */ };
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.send({ type: "ping" }), 25000);
  }

  scheduleRetry() {
    clearTimeout(this.retryTimer);
    const delay = Math.min(10000, 500 * 2 ** this.attempt++) + Math.random() * 300;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() { if (!this.ws) { this.attempt = 0; this.connect(); } }

  setState(s) { if (s !== this.state) { this.state = s; this.onState(s); } }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(obj)); return true; }
    return false;
  }
}
