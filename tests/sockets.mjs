// Live clients over recorded sockets, shared by the WebSocket tests: a
// ConvexClient whose every socket keeps what it sent and received.
import { once } from "node:events";
import { ConvexClient } from "convex/browser";
import WebSocket from "ws";

/**
 * A `ws` WebSocket subclass for ConvexClient's `webSocketConstructor` that
 * keeps every socket the client opens, with the server messages each one
 * received and the client messages it sent. `net.intercept(message, socket)`
 * may return "drop" to hide an incoming message from the client; `kill()`
 * terminates a socket and hides anything it still delivers.
 */
export function recordingSockets() {
  const net = { sockets: [], intercept: null };
  class RecordingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      this.received = [];
      this.sent = [];
      this.dead = false;
      this.closed = once(this, "close");
      net.sockets.push(this);
    }

    send(data, ...rest) {
      this.sent.push(JSON.parse(data));
      return super.send(data, ...rest);
    }

    get onmessage() {
      return super.onmessage;
    }

    set onmessage(handler) {
      if (typeof handler !== "function") {
        super.onmessage = handler;
        return;
      }
      super.onmessage = (event) => {
        if (this.dead) return;
        const message = JSON.parse(event.data);
        this.received.push(message);
        if (net.intercept?.(message, this) === "drop") return;
        handler(event);
      };
    }

    kill() {
      this.dead = true;
      this.terminate();
    }
  }
  net.WebSocket = RecordingWebSocket;
  net.current = () => net.sockets.at(-1);
  return net;
}

/** A ConvexClient over recorded sockets, closed when the test ends. */
export function connect(t, server) {
  const net = recordingSockets();
  const client = new ConvexClient(server.url, {
    webSocketConstructor: net.WebSocket,
    logger: false,
    unsavedChangesWarning: false,
  });
  t.after(() => client.close());
  return { client, net };
}
