/**
 * A consumer process for the checkpoint test: resumes an SSE feed from a checkpoint file, appends each event's data
 * to a results file (and each `Gap` as `gap <delivery> <downtime-ms>`), then acknowledges it. Prints "ready" once
 * connected. Arguments: url, checkpoint file, results file.
 */
import { appendFileSync } from "node:fs"
import { Checkpoint, Delivery } from "@streamemit/core"
import { Duration, Effect, Stream } from "effect"
import { Sse } from "../src/index.ts"

const [url, file, results] = process.argv.slice(2) as [string, string, string]

const program = Effect.gen(function* () {
  const { handle, deliveries } = yield* Sse.checkpointed({
    url,
    checkpoint: { key: "feed", every: 10, interval: "1 minute" }
  })
  yield* handle.events.pipe(
    Stream.runForEach((event) =>
      Effect.sync(() => {
        if (event._tag === "Gap")
          appendFileSync(results, `gap ${event.delivery} ${Duration.toMillis(event.downtime)}\n`)
      })
    ),
    Effect.forkScoped
  )
  yield* handle.awaitConnection
  process.stdout.write("ready\n")
  yield* Delivery.process(deliveries, (event) =>
    Effect.sync(() => appendFileSync(results, `${event.data}\n`)).pipe(Effect.andThen(Effect.sleep("2 millis")))
  )
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Checkpoint.layerFile(file)))).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
