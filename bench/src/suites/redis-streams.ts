/**
 * `RedisStreams.consume` + `Delivery.process` against a raw ioredis loop of `XREADGROUP COUNT 100` and one `XACK`
 * of the batch's ids, against the local Redis (`REDIS_URL`): each round its own stream, preloaded with the same
 * entries (not timed), then timed from the first read to the last acknowledgement (XPENDING empty). The raw loop
 * is the hand-written consumer a user would otherwise keep: sequential, one round trip for the read and one for
 * the ack per batch.
 */
import { Delivery } from "@streamemit/core"
import { RedisStreams } from "@streamemit/redis-streams"
import { Effect, Fiber } from "effect"
import { Redis } from "ioredis"
import { compareRates, type Row, type Suite, throughputRow } from "../harness.ts"

const ENTRIES = Number(process.env.BENCH_REDIS_STREAMS_N ?? 100_000)
const BATCH = 100
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

export const suite: Suite = {
  name: "redis-streams",
  run: async () => {
    const admin = new Redis(REDIS_URL)
    const payload = "x".repeat(100)
    let round = 0
    const prepare = async (label: string) => {
      const stream = `bench:streams:${label}:${process.pid}:${++round}`
      for (let sent = 0; sent < ENTRIES; sent += 1000) {
        const pipeline = admin.pipeline()
        for (let i = 0; i < 1000; i++) pipeline.xadd(stream, "*", "payload", payload)
        await pipeline.exec()
      }
      await admin.xgroup("CREATE", stream, "g", "0")
      return stream
    }
    const allAcked = async (stream: string) => Number(((await admin.xpending(stream, "g")) as [number])[0]) === 0
    try {
      const rates = await compareRates({
        items: ENTRIES,
        rounds: 5,
        warmup: 1,
        baseline: async () => {
          const stream = await prepare("raw")
          const client = new Redis(REDIS_URL)
          await client.ping()
          const start = performance.now()
          let seen = 0
          while (seen < ENTRIES) {
            const reply = (await client.xreadgroup(
              "GROUP",
              "g",
              "raw",
              "COUNT",
              BATCH,
              "STREAMS",
              stream,
              ">"
            )) as Array<[string, Array<[string, Array<string>]>]>
            const entries = reply[0]![1]
            seen += entries.length
            await client.xack(stream, "g", ...entries.map(([id]) => id))
          }
          const seconds = (performance.now() - start) / 1000
          if (!(await allAcked(stream))) throw new Error("raw: entries left pending")
          client.disconnect()
          await admin.del(stream)
          return seconds
        },
        subject: async () => {
          const stream = await prepare("se")
          const seconds = await Effect.runPromise(
            Effect.scoped(
              Effect.gen(function* () {
                const handle = yield* RedisStreams.make({
                  connection: REDIS_URL,
                  stream,
                  group: "g",
                  consumer: "se",
                  batch: BATCH,
                  reconnect: false
                })
                const start = performance.now()
                let seen = 0
                const worker = yield* Delivery.process(handle.messages, () => Effect.sync(() => seen++)).pipe(
                  Effect.forkChild({ startImmediately: true })
                )
                while (seen < ENTRIES || !(yield* Effect.promise(() => allAcked(stream)))) {
                  yield* Effect.sleep("1 millis")
                }
                const seconds = (performance.now() - start) / 1000
                yield* Fiber.interrupt(worker)
                return seconds
              })
            )
          )
          await admin.del(stream)
          return seconds
        }
      })
      const rows: Array<Row> = [
        throughputRow(
          "redis-streams",
          `${ENTRIES / 1000}k × 100 B entries: consume + Delivery.process vs XREADGROUP/XACK loop (COUNT ${BATCH})`,
          "entries/s",
          rates
        )
      ]
      return rows
    } finally {
      admin.disconnect()
    }
  }
}
