/**
 * The outbox pattern end to end, against the real server: rows + NOTIFY in one transaction, a consumer that saves
 * the id of the last row whose work is done, stops, and on its restart reads the rows written while it was away
 * before the live notifications.
 */
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Checkpoint, Delivery, type Lifecycle } from "@streamemit/core"
import { Child, Wait } from "@streamemit/testkit"
import { Effect, Fiber, Stream } from "effect"
import pg from "pg"
import { PgListen } from "../src/index.ts"

const PG_URL = process.env.PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const suffix = `${process.pid}_${Math.random().toString(36).slice(2, 7)}`

const admin = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    return client
  }),
  (client) => Effect.promise(() => client.end())
)

describe("PgListen.checkpointed", () => {
  it.live("outbox: rows written while the consumer was away are read after the saved id, then live ones", () =>
    Effect.gen(function* () {
      const client = yield* admin
      const [table, channel] = [`se_outbox_${suffix}`, `se_outbox_${suffix}`]
      yield* Effect.promise(() => client.query(`CREATE TABLE ${table} (id serial PRIMARY KEY, body text NOT NULL)`))
      yield* Effect.addFinalizer(() => Effect.promise(() => client.query(`DROP TABLE ${table}`)).pipe(Effect.ignore))
      /** The producer: the row and its NOTIFY commit together. */
      const produce = (body: string) =>
        Effect.promise(async () => {
          await client.query("BEGIN")
          const { rows } = await client.query(`INSERT INTO ${table} (body) VALUES ($1) RETURNING id`, [body])
          await client.query("SELECT pg_notify($1, $2)", [channel, String(rows[0].id)])
          await client.query("COMMIT")
        })
      const options = {
        connection: PG_URL,
        channels: [channel],
        checkpoint: {
          key: "outbox",
          every: 2,
          cursorOf: (notification: PgListen.Notification) => notification.payload
        },
        onResync: ({ cursor }: { readonly cursor: string | undefined }) =>
          Effect.promise(async () => {
            const { rows } = await client.query(`SELECT id FROM ${table} WHERE id > $1 ORDER BY id`, [
              Number(cursor ?? 0)
            ])
            return rows.map((row) => ({ channel, payload: String(row.id), processId: 0 }))
          })
      }
      const run = (take: number, during: Effect.Effect<void>) =>
        Effect.scoped(
          Effect.gen(function* () {
            const { handle, deliveries } = yield* PgListen.checkpointed(options)
            const events: Array<Lifecycle.Event> = []
            yield* handle.events.pipe(
              Stream.runForEach((event) => Effect.sync(() => events.push(event))),
              Effect.forkScoped
            )
            yield* handle.awaitConnection
            const seen: Array<string> = []
            const worker = yield* Delivery.process(deliveries.pipe(Stream.take(take)), (n) =>
              Effect.sync(() => seen.push(n.payload))
            ).pipe(Effect.forkScoped)
            yield* during
            yield* Wait.until(() => seen.length === take, `${take} rows`)
            yield* Fiber.join(worker)
            return { seen, gaps: events.filter((e): e is Lifecycle.Gap => e._tag === "Gap") }
          })
        )
      const first = yield* run(
        5,
        Effect.forEach([1, 2, 3, 4, 5], (i) => produce(`order ${i}`), { discard: true })
      )
      assert.deepStrictEqual(first.seen, ["1", "2", "3", "4", "5"])
      // Nobody listens: NOTIFY keeps nothing, the rows stay.
      yield* Effect.forEach([6, 7, 8], (i) => produce(`order ${i}`), { discard: true })
      const second = yield* run(4, produce("order 9"))
      assert.deepStrictEqual(second.seen, ["6", "7", "8", "9"])
      assert.strictEqual(second.gaps.length, 1, "the restart opens with a Gap")
    }).pipe(Effect.provide(Checkpoint.layerMemory), Effect.scoped)
  )

  it.live(
    "outbox: kill -9 between commits, rows written while down, restart: nothing lost, duplicates ≤ the unsaved batch",
    () =>
      Effect.gen(function* () {
        const client = yield* admin
        const [table, channel] = [`se_outbox_kill_${suffix}`, `se_outbox_kill_${suffix}`]
        yield* Effect.promise(() => client.query(`CREATE TABLE ${table} (id serial PRIMARY KEY, body text NOT NULL)`))
        yield* Effect.addFinalizer(() => Effect.promise(() => client.query(`DROP TABLE ${table}`)).pipe(Effect.ignore))
        const produce = (count: number) =>
          Effect.promise(async () => {
            for (let i = 0; i < count; i++) {
              await client.query("BEGIN")
              const { rows } = await client.query(`INSERT INTO ${table} (body) VALUES ('x') RETURNING id`)
              await client.query("SELECT pg_notify($1, $2)", [channel, String(rows[0].id)])
              await client.query("COMMIT")
            }
          })
        const dir = yield* Child.tempDir("streamemit-pg-ckpt")
        const [file, results] = [Path.join(dir, "ckpt.json"), Path.join(dir, "results")]
        const lines = () => Child.lines(results)
        const script = new URL("./checkpoint-process.ts", import.meta.url).pathname
        const start = Child.ready(script, [PG_URL, channel, table, file, results])
        const first = yield* start
        yield* produce(60)
        yield* Wait.until(
          () => Effect.runPromise(Effect.map(lines(), (list) => list.length >= 35)),
          "the first run at work",
          10_000
        )
        first.kill("SIGKILL")
        yield* produce(30)
        yield* start
        yield* Wait.until(
          () =>
            Effect.runPromise(Effect.map(lines(), (list) => new Set(list.filter((l) => /^\d+$/.test(l))).size === 90)),
          "every row after the restart",
          15_000
        )
        const all = yield* lines()
        const ids = all.filter((l) => /^\d+$/.test(l)).map(Number)
        assert.strictEqual(new Set(ids).size, 90, "every row, none lost")
        // One batch of 10 unsaved, and those done while its save was being written.
        assert.isAtMost(ids.length - 90, 20, `duplicates: ${ids.length - 90}`)
        assert.include(all, "gap")
      }).pipe(Effect.scoped),
    40_000
  )
})
