// Bodies that are streams, for QuickJS, whose Request and Response (from AWS
// LLRT) hold their bodies whole and have no `body` stream. Installs the
// WHATWG stream classes (web_streams.js) as globals, lets `new Response(stream)`
// keep a `ReadableStream` body (what a streamed HTTP action returns), and
// gives both classes a `body` getter and body readers that consume it.
// Returns `streamOf(response)`: the stream a response was made with, if any,
// which prelude.js's `invokeHttp` sends out chunk by chunk.
const convectStreamBodies = () => {
  const classes = convectWebStreams();
  for (const [name, value] of Object.entries(classes)) {
    Object.defineProperty(globalThis, name, { value, writable: true, configurable: true });
  }
  const { ReadableStream } = classes;
  const streams = new WeakMap();
  const encoder = new TextEncoder();

  const toBytes = (chunk) => {
    if (chunk instanceof Uint8Array) return chunk;
    if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
    if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (typeof chunk === "string") return encoder.encode(chunk);
    throw new TypeError("A body stream's chunks must be Uint8Arrays (or strings).");
  };
  const readAll = async (stream) => {
    const parts = [];
    let length = 0;
    for await (const chunk of stream) {
      const bytes = toBytes(chunk);
      parts.push(bytes);
      length += bytes.length;
    }
    const all = new Uint8Array(length);
    let at = 0;
    for (const part of parts) {
      all.set(part, at);
      at += part.length;
    }
    return all;
  };

  // The body as a stream: the one given, else one over the whole body, made
  // on first use; either way, reading it consumes it for the other readers.
  const bodyStream = (message, wholeBytes) => {
    let stream = streams.get(message);
    if (stream === undefined) {
      stream = new ReadableStream({
        async pull(controller) {
          const bytes = new Uint8Array(await wholeBytes.call(message));
          if (bytes.length > 0) controller.enqueue(bytes);
          controller.close();
        },
      });
      streams.set(message, stream);
    }
    return stream;
  };
  const readers = {
    arrayBuffer: (bytes) => bytes.slice().buffer,
    bytes: (bytes) => bytes,
    text: (bytes) => new TextDecoder().decode(bytes),
    json: (bytes) => JSON.parse(new TextDecoder().decode(bytes)),
    blob: (bytes, message) => new Blob([bytes], { type: message.headers.get("content-type") ?? "" }),
  };
  // The native prototypes' properties cannot be redefined, so instances get
  // a prototype of ours in between, which shadows them.
  const withStreamBodies = (name) => {
    const Whole = globalThis[name];
    const proto = Object.create(Whole.prototype);
    const wholeBytes = Whole.prototype.arrayBuffer;
    Object.defineProperty(proto, "body", {
      configurable: true,
      get() {
        return bodyStream(this, wholeBytes);
      },
    });
    for (const [reader, fromBytes] of Object.entries(readers)) {
      const whole = Whole.prototype[reader];
      Object.defineProperty(proto, reader, {
        configurable: true,
        writable: true,
        value(...args) {
          const stream = streams.get(this);
          if (stream === undefined && whole !== undefined) return whole.apply(this, args);
          return readAll(bodyStream(this, wholeBytes)).then((bytes) => fromBytes(bytes, this));
        },
      });
    }
    const adopt = (message) => Object.setPrototypeOf(message, proto);
    // A function rather than a subclass: the native constructor ignores
    // `new.target`, so a subclass's instances would not get its prototype.
    function Message(input, init) {
      if (new.target === undefined) throw new TypeError(`Constructor ${name} requires 'new'`);
      // The native constructors refuse an explicit `undefined` for `init`.
      const make = (first, options) => (options === undefined ? new Whole(first) : new Whole(first, options));
      const body = Whole === WholeResponse ? input : init?.body;
      if (!(body instanceof ReadableStream)) return adopt(make(input, init));
      const message = Whole === WholeResponse ? make(null, init) : make(input, { ...init, body: null });
      streams.set(message, body);
      return adopt(message);
    }
    Object.defineProperty(Message, "name", { value: name });
    Message.prototype = proto;
    Object.defineProperty(proto, "constructor", { value: Message, configurable: true, writable: true });
    Object.defineProperty(proto, "clone", {
      configurable: true,
      writable: true,
      value() {
        const stream = streams.get(this);
        if (stream === undefined) return adopt(Whole.prototype.clone.call(this));
        const [mine, theirs] = stream.tee();
        streams.set(this, mine);
        const copy = adopt(Whole.prototype.clone.call(this));
        streams.set(copy, theirs);
        return copy;
      },
    });
    for (const fn of ["json", "error", "redirect"]) {
      if (typeof Whole[fn] === "function") Message[fn] = (...args) => adopt(Whole[fn](...args));
    }
    Object.defineProperty(globalThis, name, { value: Message, writable: true, configurable: true });
  };
  const WholeResponse = globalThis.Response;
  withStreamBodies("Request");
  withStreamBodies("Response");

  return { streamOf: (response) => streams.get(response), toBytes };
};
