/**
 * A consumer process for the outbox test: resumes from a checkpoint file, reads the outbox rows after the saved id
 * on start, appends each row id to a results file (and `gap`), then acknowledges it. Prints "ready" once
 * connected. Arguments: connection URL, channel, table, checkpoint file, results file.
 */
import { appendFileSync } from "node:fs"
import { Checkpoint, Delivery } from "@streamemit/core"
import { Effect, Stream } from "effect"
import pg from "pg"
import { PgListen } from "../src/index.ts"

const [url, channel, table, file, results] = process.argv.slice(2) as [string, string, string, string, string]
const pool = new pg.Pool({ connectionString: url, max: 1 })

const program = Effect.gen(function* () {
  const { handle, deliveries } = yield* PgListen.checkpointed({
    connection: url,
    channels: [channel],
    checkpoint: { key: "outbox", every: 10, interval: "1 minute", cursorOf: (n) => n.payload },
    onResync: ({ cursor }) =>
      Effect.promise(async () => {
        const { rows } = await pool.query(`SELECT id FROM ${table} WHERE id > $1 ORDER BY id`, [Number(cursor ?? 0)])
        return rows.map((row) => ({ channel, payload: String(row.id), processId: 0 }))
      })
  })
  yield* handle.events.pipe(
    Stream.runForEach((event) => Effect.sync(() => event._tag === "Gap" && appendFileSync(results, "gap\n"))),
    Effect.forkScoped
  )
  yield* handle.awaitConnection
  process.stdout.write("ready\n")
  yield* Delivery.process(deliveries, (n) =>
    Effect.sync(() => appendFileSync(results, `${n.payload}\n`)).pipe(Effect.andThen(Effect.sleep("2 millis")))
  )
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Checkpoint.layerFile(file)))).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
