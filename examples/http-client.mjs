// A minimal program using the official Convex HTTP client against Convect:
// lists the advisors of the chat, then creates one.
//
//   convect dev                                   # in another terminal
//   CONVECT_URL=http://127.0.0.1:3210 node examples/http-client.mjs "Ada Example"
import { ConvexHttpClient } from "convex/browser";
import { api } from "../functions/_generated/api.js";

const url = process.env.CONVECT_URL ?? "http://127.0.0.1:3210";
const client = new ConvexHttpClient(url);

const advisors = await client.query(api.advisors.list, {});
console.log(`${advisors.length} advisor(s) at ${url}:`);
for (const advisor of advisors) {
  console.log(`  ${advisor.avatar ?? "-"} ${advisor.name}, ${advisor.title}`);
}

const name = process.argv[2] ?? `Guest ${new Date().toISOString().slice(11, 19)}`;
const id = await client.mutation(api.advisors.create, {
  name,
  title: "Sounding Board",
  expertise: ["listening", "summarising"],
  persona:
    "You are a patient sounding board. Restate the user's problem in one " +
    "sentence, ask one clarifying question, and offer two options with " +
    "their trade-offs. Never decide for the user.",
  avatar: "🪞",
});
console.log(`created ${name} (${id})`);
