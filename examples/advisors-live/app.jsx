// The advisors of the multi-advisor chat, live: a page on `convex/react` that
// lists the advisors and updates as soon as anyone (another tab, `convect run`,
// an import) changes them.
import React, { useState } from "react";
import { createRoot } from "react-dom/client";
import { ConvexProvider, ConvexReactClient, useMutation, useQuery } from "convex/react";
import { api } from "../../functions/_generated/api.js";

function AdvisorList() {
  const advisors = useQuery(api.advisors.list, {});
  const remove = useMutation(api.advisors.remove);
  if (advisors === undefined) return <p>Loading…</p>;
  return (
    <ul id="advisors">
      {advisors.map((a) => (
        <li key={a._id} data-name={a.name}>
          <span className="avatar">{a.avatar ?? "🧑"}</span> <b>{a.name}</b>, {a.title}
          <small> ({a.expertise.join(", ")})</small>{" "}
          <button onClick={() => remove({ id: a._id })}>remove</button>
        </li>
      ))}
    </ul>
  );
}

function NewAdvisor() {
  const create = useMutation(api.advisors.create);
  const [name, setName] = useState("");
  const [title, setTitle] = useState("");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      await create({ name, title, expertise: [], persona: `You are ${name}, ${title}.` });
      setName("");
      setTitle("");
      setError(null);
    } catch (err) {
      setError(err.data?.message ?? err.message);
    }
  };
  return (
    <form onSubmit={submit}>
      <input placeholder="name" value={name} onChange={(e) => setName(e.target.value)} />
      <input placeholder="title" value={title} onChange={(e) => setTitle(e.target.value)} />
      <button type="submit">add advisor</button>
      {error && <p className="error">{error}</p>}
    </form>
  );
}

const client = new ConvexReactClient(window.CONVEX_URL);
createRoot(document.getElementById("root")).render(
  <ConvexProvider client={client}>
    <h1>Advisors</h1>
    <AdvisorList />
    <NewAdvisor />
  </ConvexProvider>,
);
