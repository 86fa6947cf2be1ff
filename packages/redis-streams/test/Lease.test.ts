/**
 * `withLease` against the real server: one holder at a time, a takeover when the holder dies (a process killed
 * with -9) or stops, work interrupted when its lease is taken.
 */
import { assert, describe, it } from "@effect/vitest"
import { Child, Expect, Wait } from "@streamemit/testkit"
import { Effect, Fiber, Ref } from "effect"
import type { Redis } from "ioredis"
import { RedisStreams } from "../src/index.ts"
import { admin, REDIS_URL, unique } from "./fixtures.ts"

/** Work that counts its ticks until it is interrupted. */
const ticking = (ticks: Ref.Ref<number>) =>
  Effect.forever(
    Effect.andThen(
      Ref.update(ticks, (n) => n + 1),
      Effect.sleep("10 millis")
    )
  )

const exists = (client: Redis, key: string) => Effect.promise(() => client.exists(key))

describe("RedisStreams.withLease", () => {
  it.live("one holder at a time; when it stops, the next takes over at once (the lease is given up)", () =>
    Effect.gen(function* () {
      const key = unique("lease")
      const client = yield* admin(key)
      const lease = RedisStreams.withLease({ connection: REDIS_URL, key, ttl: "2 seconds" })
      const [a, b] = [yield* Ref.make(0), yield* Ref.make(0)]
      const first = yield* Effect.forkChild(lease(ticking(a)), { startImmediately: true })
      yield* Wait.until(() => Effect.runPromise(Effect.map(Ref.get(a), (n) => n > 0)), "the first holder works")
      const second = yield* Effect.forkChild(lease(ticking(b)), { startImmediately: true })
      yield* Effect.sleep("500 millis")
      assert.strictEqual(yield* Ref.get(b), 0, "the second waits while the first holds the lease")
      const stoppedAt = Date.now()
      yield* Fiber.interrupt(first)
      yield* Wait.until(() => Effect.runPromise(Effect.map(Ref.get(b), (n) => n > 0)), "the second takes over")
      // Given up, not expired: well before the 2 s ttl (the waiters poll every tenth of it).
      assert.isBelow(Date.now() - stoppedAt, 1000)
      yield* Fiber.interrupt(second)
      assert.strictEqual(yield* exists(client, key), 0)
    })
  )

  it.live("work that ends gives the lease up and returns its result; its failure is the caller's", () =>
    Effect.gen(function* () {
      const key = unique("lease-done")
      const client = yield* admin(key)
      const lease = RedisStreams.withLease({ connection: REDIS_URL, key, ttl: "1 second" })
      assert.strictEqual(yield* lease(Effect.succeed(42)), 42)
      assert.strictEqual(yield* exists(client, key), 0)
      const failed = yield* Effect.flip(lease(Effect.fail("relay broke")))
      assert.strictEqual(failed, "relay broke")
      assert.strictEqual(yield* exists(client, key), 0)
    })
  )

  it.live("a lease taken by another holder interrupts the work; it runs again once the lease is free", () =>
    Effect.gen(function* () {
      const key = unique("lease-taken")
      const client = yield* admin(key)
      const ticks = yield* Ref.make(0)
      const interrupted = yield* Ref.make(0)
      const work = ticking(ticks).pipe(Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1)))
      const holder = yield* Effect.forkChild(
        RedisStreams.withLease({ connection: REDIS_URL, key, ttl: "300 millis" })(work),
        { startImmediately: true }
      )
      yield* Wait.until(() => Effect.runPromise(Effect.map(Ref.get(ticks), (n) => n > 0)), "the work runs")
      // Someone else's lease now (an operator, a replica that thinks it is the leader).
      yield* Effect.promise(() => client.set(key, "someone-else", "PX", 1000))
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(Ref.get(interrupted), (n) => n === 1)),
        "the work interrupted within a renewal (100 ms)",
        1000
      )
      const stopped = yield* Ref.get(ticks)
      yield* Effect.sleep("300 millis")
      assert.isAtMost((yield* Ref.get(ticks)) - stopped, 1, "no work while another holds the lease")
      yield* Effect.promise(() => client.del(key))
      yield* Wait.until(() => Effect.runPromise(Effect.map(Ref.get(ticks), (n) => n > stopped + 5)), "runs again")
      yield* Fiber.interrupt(holder)
    })
  )

  it.live("relay replicas in processes: the leader killed with -9, another relays about ttl later; never two", () =>
    Effect.gen(function* () {
      const key = unique("lease-relay")
      const stream = unique("lease-relay-out")
      const client = yield* admin(stream)
      yield* Effect.addFinalizer(() => Effect.promise(() => client.del(key)).pipe(Effect.asVoid))
      const ttl = 1000
      const script = new URL("./relay-process.ts", import.meta.url).pathname
      const start = (name: string) => Child.ready(script, [REDIS_URL, key, stream, name, String(ttl)])
      /** Who relayed each entry, in order, with the entry's time. */
      const relayed = () =>
        Effect.promise(async () =>
          ((await client.xrange(stream, "-", "+")) as Array<[string, Array<string>]>).map(([id, fields]) => ({
            at: Number(id.split("-")[0]),
            by: fields[1]!.split(":")[0]!
          }))
        )
      const a = yield* start("a")
      yield* Wait.until(() => Effect.runPromise(Effect.map(relayed(), (list) => list.length > 5)), "a relays", 10_000)
      yield* start("b")
      yield* Effect.sleep("700 millis")
      assert.deepStrictEqual([...new Set((yield* relayed()).map((e) => e.by))], ["a"], "b waits")
      a.kill("SIGKILL")
      const killedAt = Date.now()
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(relayed(), (list) => list.some((e) => e.by === "b"))),
        "b takes over",
        5000
      )
      const list = yield* relayed()
      const lastOfA = list.filter((e) => e.by === "a").at(-1)!.at
      const firstOfB = list.find((e) => e.by === "b")!.at
      assert.isAtLeast(firstOfB, lastOfA, "never two relays at once")
      const takeover = firstOfB - killedAt
      // The lease was renewed at most a third of ttl before the kill; waiters poll every tenth.
      assert.isAtLeast(takeover, ttl / 2, "not before the dead holder's lease expired")
      assert.isBelow(takeover, ttl + ttl / 10 + 300, "within ttl (plus a poll, and the start of the relay)")
    }).pipe(Effect.scoped)
  )

  it.live("invalid options fail at once with a Config reason naming the option", () =>
    Effect.gen(function* () {
      for (const [options, option] of [
        [{ connection: "http://x", key: "k" }, "connection"],
        [{ connection: REDIS_URL, key: "" }, "key"],
        [{ connection: REDIS_URL, key: "k", ttl: "10 millis" }, "ttl"],
        [{ connection: REDIS_URL, key: "k", ttl: "soon" }, "ttl"]
      ] as const) {
        const exit = yield* Effect.exit(RedisStreams.withLease(options as RedisStreams.LeaseOptions)(Effect.void))
        const error = Expect.connectorError(exit)
        assert.strictEqual(error.reason._tag, "Config", option)
        assert.strictEqual((error.reason as { option?: string }).option, option)
      }
    })
  )
})
