/**
 * A consumer process for the outbox test: subscribes, reads what was added to the outbox stream after the saved id
 * on start, appends each message's number to a results file (and `gap`), then acknowledges it. Prints "ready" once
 * connected. Arguments: url, channel (also the outbox stream's key), checkpoint file, results file.
 */
import { appendFileSync } from "node:fs"
import { Checkpoint, Delivery } from "@streamemit/core"
import { Effect, Stream } from "effect"
import { Redis } from "ioredis"
import { RedisPubSub } from "../src/index.ts"

const [url, channel, file, results] = process.argv.slice(2) as [string, string, string, string]
const reader = new Redis(url)

const program = Effect.gen(function* () {
  const { handle, deliveries } = yield* RedisPubSub.checkpointed({
    connection: url,
    channels: [channel],
    checkpoint: { key: "outbox", every: 10, interval: "1 minute", cursorOf: (m) => m.payload },
    onResync: ({ cursor }) =>
      Effect.promise(async () =>
        ((await reader.xrange(channel, `(${cursor ?? 0}-1`, "+")) as Array<[string, Array<string>]>).map(
          ([, fields]) => ({ channel, payload: fields[1]! })
        )
      )
  })
  yield* handle.events.pipe(
    Stream.runForEach((event) => Effect.sync(() => event._tag === "Gap" && appendFileSync(results, "gap\n"))),
    Effect.forkScoped
  )
  yield* handle.awaitConnection
  process.stdout.write("ready\n")
  yield* Delivery.process(deliveries, (m) =>
    Effect.sync(() => appendFileSync(results, `${m.payload}\n`)).pipe(Effect.andThen(Effect.sleep("2 millis")))
  )
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Checkpoint.layerFile(file)))).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
