/**
 * The outbox pattern on Redis: the producer adds each message to a stream and publishes its id; a consumer that
 * stopped reads what was added while it was away (after its saved id) before the live messages.
 */
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Checkpoint, Delivery } from "@streamemit/core"
import { Child, Wait } from "@streamemit/testkit"
import { Effect, Fiber, Stream } from "effect"
import { Redis } from "ioredis"
import { RedisPubSub } from "../src/index.ts"

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
const name = `se-outbox-${process.pid}-${Math.random().toString(36).slice(2, 7)}`

describe("RedisPubSub.checkpointed", () => {
  it.live("outbox: what was published while the consumer was away is read after the saved id, then live", () =>
    Effect.gen(function* () {
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new Redis(REDIS_URL)),
        (client) => Effect.promise(() => client.del(name).then(() => client.quit()))
      )
      let produced = 0
      /** The producer: the entry stays in the stream; the publish carries its number. */
      const produce = Effect.promise(async () => {
        const n = ++produced
        await client.xadd(name, `${n}-1`, "n", String(n))
        await client.publish(name, String(n))
      })
      const options = {
        connection: REDIS_URL,
        channels: [name],
        checkpoint: { key: "outbox", every: 2, cursorOf: (message: RedisPubSub.Message) => message.payload },
        onResync: ({ cursor }: { readonly cursor: string | undefined }) =>
          Effect.promise(async () =>
            ((await client.xrange(name, `(${cursor ?? 0}-1`, "+")) as Array<[string, Array<string>]>).map(
              ([, fields]) => ({ channel: name, payload: fields[1]! })
            )
          )
      }
      const run = (take: number, during: Effect.Effect<void>) =>
        Effect.scoped(
          Effect.gen(function* () {
            const { handle, deliveries } = yield* RedisPubSub.checkpointed(options)
            yield* handle.awaitConnection
            const seen: Array<string> = []
            const worker = yield* Delivery.process(deliveries.pipe(Stream.take(take)), (m) =>
              Effect.sync(() => seen.push(m.payload))
            ).pipe(Effect.forkScoped)
            yield* during
            yield* Wait.until(() => seen.length === take, `${take} messages`)
            yield* Fiber.join(worker)
            return seen
          })
        )
      assert.deepStrictEqual(yield* run(3, Effect.repeat(produce, { times: 2 })), ["1", "2", "3"])
      yield* Effect.repeat(produce, { times: 1 }) // 4 and 5, while nobody listens
      assert.deepStrictEqual(yield* run(3, produce), ["4", "5", "6"])
    }).pipe(Effect.provide(Checkpoint.layerMemory), Effect.scoped)
  )

  it.live(
    "outbox: kill -9 between commits, messages while down, restart: nothing lost, duplicates ≤ the unsaved batch",
    () =>
      Effect.gen(function* () {
        const key = `${name}-kill`
        const client = yield* Effect.acquireRelease(
          Effect.sync(() => new Redis(REDIS_URL)),
          (client) => Effect.promise(() => client.del(key).then(() => client.quit()))
        )
        let produced = 0
        const produce = (count: number) =>
          Effect.promise(async () => {
            for (let i = 0; i < count; i++) {
              const n = ++produced
              await client.xadd(key, `${n}-1`, "n", String(n))
              await client.publish(key, String(n))
            }
          })
        const dir = yield* Child.tempDir("streamemit-redis-ckpt")
        const [file, results] = [Path.join(dir, "ckpt.json"), Path.join(dir, "results")]
        const lines = () => Child.lines(results)
        const script = new URL("./checkpoint-process.ts", import.meta.url).pathname
        const start = Child.ready(script, [REDIS_URL, key, file, results])
        const first = yield* start
        yield* produce(60)
        yield* Wait.until(
          () => Effect.runPromise(Effect.map(lines(), (list) => list.length >= 35)),
          "the first run at work",
          10_000
        )
        first.kill("SIGKILL")
        yield* produce(30)
        yield* start
        yield* Wait.until(
          () =>
            Effect.runPromise(Effect.map(lines(), (list) => new Set(list.filter((l) => /^\d+$/.test(l))).size === 90)),
          "every message after the restart",
          10_000
        )
        const all = yield* lines()
        const numbers = all.filter((l) => /^\d+$/.test(l))
        assert.strictEqual(new Set(numbers).size, 90, "every message, none lost")
        // One batch of 10 unsaved, and those done while its save was being written.
        assert.isAtMost(numbers.length - 90, 20, `duplicates: ${numbers.length - 90}`)
        assert.include(all, "gap")
      }).pipe(Effect.scoped),
    30_000
  )
})
