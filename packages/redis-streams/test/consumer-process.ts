/**
 * A consumer process for the scale-out tests: joins group "g" of a stream and records every entry it processed
 * in a Redis list (`consumer:n`), then acknowledges it. Arguments: url, stream, results key, consumer name, and
 * optionally claimAfter in milliseconds (default 500).
 */
import { Delivery } from "@streamemit/core"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { RedisStreams } from "../src/index.ts"

const [url, stream, results, consumer, claimAfter] = process.argv.slice(2) as [string, string, string, string, string?]
const out = new Redis(url)

const program = Delivery.process(
  RedisStreams.consume({
    connection: url,
    stream,
    group: "g",
    consumer,
    createGroup: "0",
    claimAfter: Number(claimAfter ?? 500),
    block: "100 millis",
    batch: 10,
    maxInFlight: 20
  }),
  (item) =>
    Effect.promise(() => out.rpush(results, `${consumer}:${item.n}`)).pipe(Effect.andThen(Effect.sleep("1 millis")))
)

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
