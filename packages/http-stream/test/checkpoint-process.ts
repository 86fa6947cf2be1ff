/**
 * A consumer process for the checkpoint test: resumes an NDJSON feed (`GET <url>?after=N`) from a checkpoint file,
 * appends each record's `n` to a results file (and `gap <delivery>`), then acknowledges it. Prints "ready" once
 * connected. Arguments: feed url, checkpoint file, results file.
 */
import { appendFileSync } from "node:fs"
import { Checkpoint, Delivery } from "@streamemit/core"
import { Effect, Schema, Stream } from "effect"
import { HttpStream } from "../src/index.ts"

const [url, file, results] = process.argv.slice(2) as [string, string, string]

const program = Effect.gen(function* () {
  const { handle, deliveries } = yield* HttpStream.checkpointed({
    url,
    framing: "ndjson",
    schema: Schema.Struct({ n: Schema.Number }),
    follow: true,
    checkpoint: { key: "feed", every: 10, interval: "1 minute", cursorOf: (record) => String(record.n) },
    resume: (cursor) => ({ url: `${url}?after=${cursor ?? 0}` })
  })
  yield* handle.events.pipe(
    Stream.runForEach((event) =>
      Effect.sync(() => event._tag === "Gap" && appendFileSync(results, `gap ${event.delivery}\n`))
    ),
    Effect.forkScoped
  )
  yield* handle.awaitConnection
  process.stdout.write("ready\n")
  yield* Delivery.process(deliveries, (record) =>
    Effect.sync(() => appendFileSync(results, `${record.n}\n`)).pipe(Effect.andThen(Effect.sleep("2 millis")))
  )
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Checkpoint.layerFile(file)))).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
