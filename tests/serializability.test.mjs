// Serializability under concurrent ConvexHttpClient instances: no lost
// counter increments (including concurrent creation of the counter), and
// random transfers that never change a bank's total, checked by concurrent
// readers and by recomputing every balance from the acknowledged transfers.
import assert from "node:assert/strict";
import { useServer } from "./harness.mjs";
import { api, ConvexError, range, seededRandom, uniqueName } from "./support.mjs";

const srv = useServer((server) => server.deploy("app"));
const test = srv.test;

test("50 clients x 20 increments of one counter give exactly 1000", async (t, server) => {
  const name = uniqueName("counter");
  const returned = await Promise.all(
    range(50).map(async () => {
      const client = server.client();
      const values = [];
      for (let i = 0; i < 20; i++) {
        values.push(await client.mutation(api.counters.increment, { name }));
      }
      return values;
    }),
  );
  // Each increment saw a distinct predecessor: the returned values are 1..1000.
  const sorted = returned.flat().sort((a, b) => a - b);
  assert.deepStrictEqual(sorted, range(1000).map((i) => i + 1));
  const state = await server.client().query(api.counters.get, { name });
  assert.deepStrictEqual(state, { values: [1000] });
});

test("concurrent transfers preserve the total and every balance", async (t, server) => {
  const ACCOUNTS = 10;
  const INITIAL = 1000;
  const seed = Number(process.env.TRANSFER_SEED ?? Date.now() % 1e9);
  t.diagnostic(`TRANSFER_SEED=${seed}`);
  const random = seededRandom(seed);

  const bank = uniqueName("bank");
  const admin = server.client();
  const owners = range(ACCOUNTS).map((i) => `owner${i}`);
  const ids = await admin.mutation(api.bank.open, { bank, owners, balance: INITIAL });
  const plans = range(20).map(() =>
    range(25).map(() => {
      const from = random.int(0, ACCOUNTS - 1);
      const to = (from + random.int(1, ACCOUNTS - 1)) % ACCOUNTS;
      return { from, to, amount: random.int(1, 400) };
    }),
  );

  const applied = [];
  let refused = 0;
  let running = true;
  const reads = [];
  const reader = (async () => {
    const client = server.client();
    while (running) {
      const balances = await client.query(api.bank.balances, { bank });
      reads.push({
        count: balances.length,
        total: balances.reduce((sum, b) => sum + b.balance, 0),
        negative: balances.some((b) => b.balance < 0),
      });
    }
  })();

  try {
    await Promise.all(
      plans.map(async (plan) => {
        const client = server.client();
        for (const transfer of plan) {
          try {
            await client.mutation(api.bank.transfer, {
              from: ids[transfer.from],
              to: ids[transfer.to],
              amount: transfer.amount,
            });
            applied.push(transfer);
          } catch (err) {
            if (!(err instanceof ConvexError && err.data?.code === "INSUFFICIENT_FUNDS")) {
              throw err;
            }
            refused++;
          }
        }
      }),
    );
  } finally {
    running = false;
    await reader;
  }

  assert.equal(applied.length + refused, 500);
  assert.ok(applied.length > 0);
  assert.ok(reads.length >= 3, `only ${reads.length} concurrent reads`);
  for (const read of reads) {
    assert.deepStrictEqual(read, { count: ACCOUNTS, total: ACCOUNTS * INITIAL, negative: false });
  }

  const expected = range(ACCOUNTS).map(() => INITIAL);
  for (const { from, to, amount } of applied) {
    expected[from] -= amount;
    expected[to] += amount;
  }
  const final = await admin.query(api.bank.balances, { bank });
  const byId = new Map(final.map((b) => [b.id, b.balance]));
  assert.deepStrictEqual(
    ids.map((id) => byId.get(id)),
    expected,
  );
});
