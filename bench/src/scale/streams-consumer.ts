/**
 * One consumer process of the redis-streams scale-out measurement (`node streams-consumer.ts <url> <stream>
 * <name> <workMs>`): joins group "g", prints "ready" once connected, then works on every entry for `workMs`
 * (an I/O wait, as a handler that calls a service) and acknowledges it. Reads 10 at a time, at most 20 unacknowledged.
 */
import { Delivery } from "@streamemit/core"
import { RedisStreams } from "@streamemit/redis-streams"
import { Effect } from "effect"

const [url, stream, name, workMs] = process.argv.slice(2) as [string, string, string, string]

const program = Effect.gen(function* () {
  // A small prefetch: with slow work, entries read ahead sit in this process while the others are idle.
  const handle = yield* RedisStreams.make({
    connection: url,
    stream,
    group: "g",
    consumer: name,
    block: "100 millis",
    batch: 10,
    maxInFlight: 20
  })
  yield* handle.awaitConnection
  process.stdout.write("ready\n")
  yield* Delivery.process(handle.messages, () => Effect.sleep(Number(workMs)))
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(error)
  process.exit(1)
})
