/**
 * A consumer process for the checkpoint test: asks the server for what comes after the saved position on every
 * connection, appends each message to a results file (and `gap`), then acknowledges it. Prints "ready" once
 * connected. Arguments: url, checkpoint file, results file.
 */
import { appendFileSync } from "node:fs"
import { Checkpoint, Delivery } from "@streamemit/core"
import { Effect, Stream } from "effect"
import { WebSocket } from "../src/index.ts"

const [url, file, results] = process.argv.slice(2) as [string, string, string]

const program = Effect.gen(function* () {
  const { handle, deliveries } = yield* WebSocket.checkpointed({
    url,
    checkpoint: { key: "feed", every: 10, interval: "1 minute", cursorOf: (message: string) => message.split(":")[1] },
    onOpen: (socket, cursor) => socket.send(`after ${cursor ?? 0}`)
  })
  yield* handle.events.pipe(
    Stream.runForEach((event) => Effect.sync(() => event._tag === "Gap" && appendFileSync(results, "gap\n"))),
    Effect.forkScoped
  )
  yield* handle.awaitConnection
  process.stdout.write("ready\n")
  yield* Delivery.process(deliveries, (message) =>
    Effect.sync(() => appendFileSync(results, `${message}\n`)).pipe(Effect.andThen(Effect.sleep("2 millis")))
  )
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Checkpoint.layerFile(file)))).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
