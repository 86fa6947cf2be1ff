/**
 * One consumer process of the redis-streams scale-out measurement (`node streams-consumer.ts <url> <stream>
 * <name> <workMs>`): joins group "g", prints "ready" once connected, then works on every entry for `workMs`
 * (an I/O wait, as a handler that calls a service) and acknowledges it. Reads 10 at a time, at most 20 unacknowledged;
 * claims entries idle for 1 s. With a fifth argument, records every processed entry in that list. With
 * `STATS_KEY` set, pushes to that list every 100 ms a JSON sample: the end-to-end latency of each entry worked on
 * since (from its id's time, when it was added, to the end of its work) and the heap in use (after a collection
 * when run with `--expose-gc`).
 */
import { Delivery } from "@streamemit/core"
import { RedisStreams } from "@streamemit/redis-streams"
import { Effect } from "effect"
import { Redis } from "ioredis"

const [url, stream, name, workMs, results] = process.argv.slice(2) as [string, string, string, string, string?]
// For the crash measurement: each processed entry is recorded (`name:id`) before its ack, to count duplicates.
const recorder = results === undefined ? undefined : new Redis(url)
const statsKey = process.env.STATS_KEY
const latencies: Array<number> = []
if (statsKey !== undefined) {
  const stats = new Redis(url)
  // The heap after a collection (when run with --expose-gc): what is held, not garbage not collected yet.
  const collect = (globalThis as { gc?: () => void }).gc
  setInterval(() => {
    collect?.()
    const sample = JSON.stringify({ latencies: latencies.splice(0), heap: process.memoryUsage().heapUsed })
    stats.rpush(statsKey, sample)
  }, 100)
}

const program = Effect.gen(function* () {
  // A small prefetch: with slow work, entries read ahead sit in this process while the others are idle.
  const handle = yield* RedisStreams.make({
    connection: url,
    stream,
    group: "g",
    consumer: name,
    block: "100 millis",
    batch: 10,
    maxInFlight: 20,
    claimAfter: "1 second"
  })
  yield* handle.awaitConnection
  process.stdout.write("ready\n")
  yield* Delivery.process(handle.messages, (_, delivery) =>
    Effect.sleep(Number(workMs)).pipe(
      Effect.andThen(
        Effect.sync(() => {
          if (statsKey !== undefined) latencies.push(Date.now() - Number(delivery.id.split("-")[0]))
        })
      ),
      Effect.andThen(
        recorder === undefined ? Effect.void : Effect.promise(() => recorder.rpush(results!, `${name}:${delivery.id}`))
      )
    )
  )
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(error)
  process.exit(1)
})
