// The React page of tests/react.test.mjs: a live list of one channel's
// messages (useQuery) and a button that sends one (useMutation). The Convect
// URL and the channel come from the query string: ?convex=URL&channel=NAME.
import { ConvexProvider, ConvexReactClient, useMutation, useQuery } from "convex/react";
import { makeFunctionReference } from "convex/server";
import { StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";

const params = new URLSearchParams(window.location.search);
const channel = params.get("channel");
const client = new ConvexReactClient(params.get("convex"));
const listMessages = makeFunctionReference("messages:list");
const sendMessage = makeFunctionReference("messages:send");

function Messages() {
  const messages = useQuery(listMessages, { channel });
  const send = useMutation(sendMessage);
  const [clicks, setClicks] = useState(0);
  const [sent, setSent] = useState(null);
  const [error, setError] = useState(null);
  if (messages === undefined) return <p id="status">Loading…</p>;
  const add = async () => {
    const k = clicks + 1;
    setClicks(k);
    try {
      setSent(await send({ channel, body: `clicked ${k}` }));
    } catch (e) {
      setError(String(e));
    }
  };
  return (
    <main>
      <h1>#{channel}</h1>
      <ul id="messages">
        {messages.map((body, i) => (
          <li key={i}>{body}</li>
        ))}
      </ul>
      <button id="add" onClick={add}>
        Add message
      </button>
      <p id="status">
        {messages.length} messages{sent !== null ? `; sent #${sent}` : ""}
      </p>
      {error && <p id="error">{error}</p>}
    </main>
  );
}

createRoot(document.getElementById("root")).render(
  <StrictMode>
    <ConvexProvider client={client}>
      <Messages />
    </ConvexProvider>
  </StrictMode>,
);
