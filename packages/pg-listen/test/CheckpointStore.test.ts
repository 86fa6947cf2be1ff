import { afterAll } from "@effect/vitest"
import { CheckpointStore } from "@streamemit/testkit"
import { Effect } from "effect"
import pg from "pg"
import { PgListen } from "../src/index.ts"

const PG_URL = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
// A table of this file's own, dropped at the end: test files run concurrently.
const table = `streamemit_checkpoints_test_${process.pid}_${Math.random().toString(36).slice(2, 7)}`
let keys = 0

const query = (text: string, values: Array<unknown> = []) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    try {
      await client.query(text, values)
    } finally {
      await client.end()
    }
  })

afterAll(() => Effect.runPromise(query(`DROP TABLE IF EXISTS ${table}`)))

CheckpointStore.run({
  name: "postgres table",
  layer: PgListen.checkpointStore({ connection: PG_URL, table }),
  key: (label) => `${label}-${++keys}`,
  // A row whose saved_at is not a time.
  corrupt: (key) =>
    query(
      `INSERT INTO ${table} (key, cursor, saved_at) VALUES ($1, 'x', -9223372036854775808)
       ON CONFLICT (key) DO UPDATE SET saved_at = EXCLUDED.saved_at`,
      [key]
    )
})
