// HTTP actions for `convect-bench files`, served on the site port.
import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";

const http = httpRouter();

// The work of `files:ping` as an HTTP action: it reads the body the bench
// posts to `/api/query` and answers in that endpoint's shape, so that the
// same client checks both.
http.route({
  path: "/ping",
  method: "POST",
  handler: httpAction(async (_ctx, request) => {
    const { args } = await request.json();
    return Response.json({ status: "success", value: args[0].n + 1 });
  }),
});

// Five server-sent events 20 ms apart (the bench checks exactly these bytes):
// a buffered response would hold the first back until the last is written.
http.route({
  path: "/sse",
  method: "GET",
  handler: httpAction(async () => {
    const { readable, writable } = new TransformStream();
    const writer = writable.getWriter();
    const enc = new TextEncoder();
    (async () => {
      for (let i = 0; i < 5; i++) {
        await writer.write(enc.encode(`data: ${i}\n\n`));
        await new Promise((r) => setTimeout(r, 20));
      }
      await writer.close();
    })();
    return new Response(readable, { headers: { "content-type": "text/event-stream" } });
  }),
});

export default http;
