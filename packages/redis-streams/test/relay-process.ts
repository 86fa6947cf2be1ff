/**
 * A relay replica for the lease test: relays a tick every 20 ms (`name:n`) into a stream, only while it holds the
 * lease. Prints "ready" once started. Arguments: url, lease key, stream, name, ttl in ms.
 */
import { Effect, Schedule, Stream } from "effect"
import { RedisStreams } from "../src/index.ts"

const [url, key, stream, name, ttl] = process.argv.slice(2) as [string, string, string, string, string]

const ticks = Stream.fromSchedule(Schedule.spaced("20 millis")).pipe(Stream.map((n) => `${name}:${n}`))

process.stdout.write("ready\n")
Effect.runPromise(
  Stream.run(ticks, RedisStreams.relay({ connection: url, stream })).pipe(
    RedisStreams.withLease({ connection: url, key, ttl: Number(ttl) })
  )
).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
