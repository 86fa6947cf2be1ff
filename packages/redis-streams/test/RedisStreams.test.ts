import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { assert, describe, it } from "@effect/vitest"
import { type Connector, Delivery, Lifecycle } from "@streamemit/core"
import { Conformance, Expect, FaultProxy, Wait } from "@streamemit/testkit"
import { Duration, Effect, type Exit, Fiber, Metric, Stream } from "effect"
import { RedisStreams } from "../src/index.ts"
import { add, admin, clientsNamed, fast, killClients, pendingCount, REDIS_URL, target, unique } from "./fixtures.ts"

type Entry = Delivery.Delivery<RedisStreams.Entry>

/** The handle with every message acknowledged as soon as it is seen: the conformance suite counts messages. */
const acking = (
  handle: Connector.Handle<RedisStreams.Client, Entry>
): Connector.Handle<RedisStreams.Client, Entry> => ({
  ...handle,
  messages: handle.messages.pipe(Stream.tap((delivery) => delivery.ack)),
  signals: handle.signals.pipe(Stream.tap((signal) => (signal._tag === "Message" ? signal.message.ack : Effect.void)))
})

Conformance.run<Entry>({
  connector: "redis-streams",
  // A read of `batch` entries may land after the pause.
  pausable: { burstAfterPause: 100 },
  reconnects: true,
  fixture: Effect.gen(function* () {
    const proxy = yield* FaultProxy.make({ target: { host: target.hostname, port: Number(target.port || 6379) } })
    const stream = unique("conformance")
    const consumer = unique("consumer")
    const client = yield* admin(stream)
    const connection = `redis://${proxy.host}:${proxy.port}`
    return {
      proxy,
      handle: (options) =>
        Effect.map(RedisStreams.make({ connection, stream, group: "g", consumer, ...options }), acking),
      nonRetryable: (options) =>
        RedisStreams.make({
          connection: `redis://streamemit-nobody:wrong-password@${proxy.host}:${proxy.port}`,
          stream,
          group: "g",
          ...options
        }),
      send: (from, count) => add(client, stream, from, count),
      numberOf: (delivery) => Number(delivery.item.n),
      serverSessions: Effect.map(clientsNamed(client, `streamemit:${consumer}`), (lines) => lines.length)
    }
  })
})

Conformance.run<RedisStreams.StreamEntry>({
  connector: "redis-streams",
  pausable: { burstAfterPause: 100 },
  reconnects: true,
  fixture: Effect.gen(function* () {
    const proxy = yield* FaultProxy.make({ target: { host: target.hostname, port: Number(target.port || 6379) } })
    const stream = unique("conformance-read")
    const client = yield* admin(stream)
    const connection = `redis://${proxy.host}:${proxy.port}`
    return {
      proxy,
      handle: (options) => RedisStreams.makeReader({ connection, stream, ...options }),
      nonRetryable: (options) =>
        RedisStreams.makeReader({
          connection: `redis://streamemit-nobody:wrong-password@${proxy.host}:${proxy.port}`,
          stream,
          ...options
        }),
      send: (from, count) => add(client, stream, from, count),
      numberOf: (entry) => Number(entry.fields.n),
      serverSessions: Effect.map(clientsNamed(client, `streamemit:read:${stream}`), (lines) => lines.length)
    }
  })
})

describe("RedisStreams.read", () => {
  it.live("resumes right after the last entry read across a CLIENT KILL: nothing twice, nothing missed", () =>
    Effect.gen(function* () {
      const stream = unique("read-resume")
      const client = yield* admin(stream)
      yield* add(client, stream, 1, 5)
      const handle = yield* RedisStreams.makeReader({ connection: REDIS_URL, stream, from: "0", reconnect: fast })
      const signals: Array<Lifecycle.Signal<RedisStreams.StreamEntry>> = []
      yield* handle.signals.pipe(
        Stream.runForEach((signal) => Effect.sync(() => signals.push(signal))),
        Effect.forkChild({ startImmediately: true })
      )
      const numbers = () => signals.flatMap((s) => (s._tag === "Message" ? [Number(s.message.fields.n)] : []))
      yield* Wait.until(() => numbers().length === 5, "the 5 entries already there")
      assert.strictEqual(yield* killClients(client, `streamemit:read:${stream} `), 1)
      yield* add(client, stream, 6, 5)
      yield* Wait.until(() => numbers().length >= 10, "the 5 entries added during the outage")
      yield* add(client, stream, 11, 2)
      yield* Wait.until(() => numbers().length >= 12, "2 live entries")
      assert.deepStrictEqual(
        numbers(),
        Array.from({ length: 12 }, (_, i) => i + 1)
      )
      const gap = signals.find((s) => s._tag === "Gap") as Lifecycle.Gap
      assert.strictEqual(gap.delivery, "resumed")
    }).pipe(Effect.scoped)
  )

  it.live('from "$" reads what is added from now on; from an id, what comes after it', () =>
    Effect.gen(function* () {
      const stream = unique("read-from")
      const client = yield* admin(stream)
      yield* add(client, stream, 1, 3)
      const [, [secondId]] = (yield* Effect.promise(() => client.xrange(stream, "-", "+"))) as Array<
        [string, Array<string>]
      >
      const after = yield* RedisStreams.read({ connection: REDIS_URL, stream, from: secondId! }).pipe(
        Stream.take(1),
        Stream.runCollect
      )
      assert.deepStrictEqual(
        after.map((e) => e.fields),
        [{ n: "3" }]
      )
      const handle = yield* RedisStreams.makeReader({ connection: REDIS_URL, stream })
      yield* Wait.status(handle, "Connected")
      const fresh = yield* handle.messages.pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
      yield* add(client, stream, 4, 1)
      assert.deepStrictEqual(
        (yield* Fiber.join(fresh)).map((e) => e.fields),
        [{ n: "4" }]
      )
    }).pipe(Effect.scoped)
  )

  it.live("invalid reader options fail at once with a Config reason naming the option", () =>
    Effect.gen(function* () {
      const base = { connection: REDIS_URL, stream: "s" }
      for (const [options, option] of [
        [{ ...base, from: "later" }, "from"],
        [{ ...base, stream: "" }, "stream"],
        [{ ...base, batch: -1 }, "batch"],
        [{ ...base, connection: "redis//nope" }, "connection"]
      ] as const) {
        const error = Expect.connectorError(yield* Effect.exit(RedisStreams.makeReader(options)))
        assert.strictEqual((error.reason as { option?: string }).option, option)
      }
    }).pipe(Effect.scoped)
  )
})

describe("RedisStreams deliveries", () => {
  it.live("entries arrive in order with their fields; Delivery.process acknowledges each after its work", () =>
    Effect.gen(function* () {
      const stream = unique("order")
      const client = yield* admin(stream)
      const handle = yield* RedisStreams.make({ connection: REDIS_URL, stream, group: "g" })
      yield* Wait.status(handle, "Connected")
      yield* Effect.promise(() => client.xadd(stream, "*", "text", "𝄞 naïve 日本", "empty", ""))
      yield* add(client, stream, 1, 50)
      const seen: Array<RedisStreams.Entry> = []
      const worker = yield* Delivery.process(handle.messages, (item) => Effect.sync(() => seen.push(item))).pipe(
        Effect.forkChild
      )
      yield* Wait.until(() => seen.length === 51, "51 entries")
      assert.deepStrictEqual(seen[0], { text: "𝄞 naïve 日本", empty: "" })
      assert.deepStrictEqual(
        seen.slice(1).map((entry) => Number(entry.n)),
        Array.from({ length: 50 }, (_, i) => i + 1)
      )
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(pendingCount(client, stream, "g"), (n) => n === 0)),
        "every entry acknowledged"
      )
      yield* Fiber.interrupt(worker)
    }).pipe(Effect.scoped)
  )

  it.live("work that fails leaves its entry pending; the others are acknowledged", () =>
    Effect.gen(function* () {
      const stream = unique("failing")
      const client = yield* admin(stream)
      const handle = yield* RedisStreams.make({ connection: REDIS_URL, stream, group: "g", createGroup: "0" })
      yield* add(client, stream, 1, 10)
      let done = 0
      const worker = yield* Delivery.process(
        handle.messages,
        (item) => (item.n === "4" ? Effect.fail("refused") : Effect.sync(() => done++)),
        { concurrency: 3 }
      ).pipe(Effect.forkChild)
      yield* Wait.until(() => done === 9, "9 entries worked on")
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(pendingCount(client, stream, "g"), (n) => n === 1)),
        "one entry left pending"
      )
      const [[id]] = (yield* Effect.promise(() => client.xpending(stream, "g", "-", "+", 10))) as Array<[string]>
      const [[, fields]] = (yield* Effect.promise(() => client.xrange(stream, id!, id!))) as Array<[string, string[]]>
      assert.deepStrictEqual(fields, ["n", "4"])
      yield* Fiber.interrupt(worker)
    }).pipe(Effect.scoped)
  )

  it.live("consumers of one group share the entries: each is delivered to exactly one", () =>
    Effect.gen(function* () {
      const stream = unique("shared")
      const client = yield* admin(stream)
      const counts = [0, 0]
      const seen = new Set<string>()
      let duplicates = 0
      for (const index of [0, 1]) {
        const handle = yield* RedisStreams.make({ connection: REDIS_URL, stream, group: "g", batch: 5 })
        yield* Wait.status(handle, "Connected")
        yield* Delivery.process(handle.messages, (item) =>
          Effect.sync(() => {
            if (seen.has(item.n!)) duplicates++
            seen.add(item.n!)
            counts[index]!++
          }).pipe(Effect.andThen(Effect.sleep("1 millis")))
        ).pipe(Effect.forkChild)
      }
      yield* add(client, stream, 1, 400)
      yield* Wait.until(() => seen.size === 400, "all 400 entries", 10_000)
      assert.strictEqual(duplicates, 0)
      assert.isAbove(counts[0]!, 0)
      assert.isAbove(counts[1]!, 0)
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(pendingCount(client, stream, "g"), (n) => n === 0)),
        "every entry acknowledged"
      )
    }).pipe(Effect.scoped)
  )

  it.live("at most maxInFlight deliveries are unacknowledged; an ack lets the next one in", () =>
    Effect.gen(function* () {
      const stream = unique("inflight")
      const client = yield* admin(stream)
      const handle = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream,
        group: "g",
        createGroup: "0",
        maxInFlight: 5,
        batch: 3
      })
      yield* add(client, stream, 1, 20)
      const held: Array<Entry> = []
      yield* handle.messages.pipe(
        Stream.runForEach((delivery) => Effect.sync(() => held.push(delivery))),
        Effect.forkChild
      )
      yield* Wait.until(() => held.length === 5, "5 deliveries")
      yield* Effect.sleep("300 millis")
      assert.strictEqual(held.length, 5, "no sixth delivery before an acknowledgement")
      assert.strictEqual(yield* pendingCount(client, stream, "g"), 5)
      // Twice at once and once more: one acknowledgement, one more delivery.
      yield* Effect.all([held[0]!.ack, held[0]!.ack], { concurrency: 2 })
      yield* held[0]!.ack
      yield* Wait.until(() => held.length === 6, "a sixth delivery after one acknowledgement")
      yield* Effect.sleep("200 millis")
      assert.strictEqual(held.length, 6)
      assert.deepStrictEqual(
        held.map((d) => Number(d.item.n)),
        [1, 2, 3, 4, 5, 6]
      )
      // A release frees a place too, and leaves its entry pending.
      yield* held[1]!.release
      yield* Wait.until(() => held.length === 7, "a seventh delivery after a release")
      assert.strictEqual(yield* pendingCount(client, stream, "g"), 6)
      // The release decided: an ack after it does nothing (the entry is delivered again later), and frees no place.
      yield* held[1]!.ack
      yield* Effect.sleep("200 millis")
      assert.strictEqual(held.length, 7)
      assert.strictEqual(yield* pendingCount(client, stream, "g"), 6)
    }).pipe(Effect.scoped)
  )

  it.live("entries delivered and never acknowledged come again after a reconnect, counted, after a Gap", () =>
    Effect.gen(function* () {
      const stream = unique("redeliver")
      const consumer = unique("c")
      const client = yield* admin(stream)
      const handle = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream,
        group: "g",
        consumer,
        createGroup: "0",
        reconnect: fast
      })
      yield* add(client, stream, 1, 3)
      const signals: Array<Lifecycle.Signal<Entry>> = []
      yield* handle.signals.pipe(
        Stream.runForEach((signal) => Effect.sync(() => signals.push(signal))),
        Effect.forkChild({ startImmediately: true })
      )
      const messages = () => signals.flatMap((s) => (s._tag === "Message" ? [s.message] : []))
      yield* Wait.until(() => messages().length === 3, "3 deliveries")
      yield* messages()[1]!.ack
      assert.strictEqual(yield* killClients(client, `streamemit:${consumer} `), 1)
      yield* Wait.until(() => messages().length === 5, "the 2 unacknowledged entries again")
      yield* add(client, stream, 4, 1)
      yield* Wait.until(() => messages().length === 6, "a new entry")
      assert.deepStrictEqual(
        messages().map((d) => [Number(d.item.n), d.deliveries]),
        [
          [1, 1],
          [2, 1],
          [3, 1],
          [1, 2],
          [3, 2],
          [4, 1]
        ]
      )
      const gap = signals.find((s) => s._tag === "Gap") as Lifecycle.Gap
      assert.strictEqual(gap.delivery, "resumed")
      assert.isBelow(
        signals.indexOf(gap),
        signals.indexOf(signals.filter((s) => s._tag === "Message")[3]!),
        "the Gap comes before the redeliveries"
      )
    }).pipe(Effect.scoped)
  )

  it.live("a consumer started again under its name gets its pending entries first", () =>
    Effect.gen(function* () {
      const stream = unique("restart")
      const consumer = unique("c")
      const client = yield* admin(stream)
      const options = { connection: REDIS_URL, stream, group: "g", consumer, createGroup: "0" } as const
      yield* add(client, stream, 1, 4)
      const first = yield* RedisStreams.consume(options).pipe(
        Stream.take(4),
        Stream.tap((delivery) => (delivery.item.n === "1" ? delivery.ack : Effect.void)),
        Stream.runCollect
      )
      // Once the server no longer holds its blocked read (else it would take entry 5 as it dies).
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(clientsNamed(client, `streamemit:${consumer}`), (l) => l.length === 0)),
        "the first run's connections gone"
      )
      yield* add(client, stream, 5, 1)
      const second = yield* RedisStreams.consume(options).pipe(Stream.take(4), Stream.runCollect)
      assert.deepStrictEqual(
        second.map((d) => [Number(d.item.n), d.deliveries]),
        [
          [2, 2],
          [3, 2],
          [4, 2],
          [5, 1]
        ]
      )
      // The first run's connections are gone: an ack after the end fails, typed.
      const late = yield* Effect.exit(first[1]!.ack)
      assert.strictEqual(Expect.connectorError(late).reason._tag, "Closed")
    }).pipe(Effect.scoped)
  )

  it.live("entries of a consumer process killed with -9 are claimed after claimAfter and processed; none lost", () =>
    Effect.gen(function* () {
      const stream = unique("crash")
      const client = yield* admin(stream)
      yield* Effect.promise(() => client.xgroup("CREATE", stream, "g", "0", "MKSTREAM"))
      yield* add(client, stream, 1, 20)
      // Another process of the group reads 8 entries, never acknowledges them, and is killed.
      const ioredis = createRequire(import.meta.url).resolve("ioredis")
      const child = spawn(
        process.execPath,
        [
          "-e",
          `const { Redis } = require(${JSON.stringify(ioredis)})
           const redis = new Redis(${JSON.stringify(REDIS_URL)})
           redis.xreadgroup("GROUP", "g", "doomed", "COUNT", 8, "STREAMS", ${JSON.stringify(stream)}, ">")
             .then(() => console.log("read"))`
        ],
        { stdio: ["ignore", "pipe", "inherit"] }
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      yield* Effect.promise(() => new Promise((resolve) => child.stdout!.once("data", resolve)))
      child.kill("SIGKILL")
      const seen = new Map<number, number>()
      const handle = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream,
        group: "g",
        claimAfter: "300 millis",
        block: "100 millis"
      })
      yield* Delivery.process(handle.messages, (item, delivery) =>
        Effect.sync(() => seen.set(Number(item.n), delivery.deliveries))
      ).pipe(Effect.forkChild)
      yield* Wait.until(() => seen.size === 20, "all 20 entries processed")
      assert.deepStrictEqual(
        [...seen.entries()]
          .filter(([, deliveries]) => deliveries === 2)
          .map(([n]) => n)
          .sort((a, b) => a - b),
        [1, 2, 3, 4, 5, 6, 7, 8],
        "the killed consumer's entries, delivered a second time"
      )
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(pendingCount(client, stream, "g"), (n) => n === 0)),
        "every entry acknowledged"
      )
    }).pipe(Effect.scoped)
  )

  for (const count of [2, 4]) {
    it.live(
      `${count} consumer processes share a stream: every entry processed exactly once, each took a share`,
      () =>
        Effect.gen(function* () {
          const stream = unique(`share-${count}`)
          const results = `${stream}-results`
          const client = yield* admin(stream)
          yield* Effect.addFinalizer(() => Effect.promise(() => client.del(results)).pipe(Effect.asVoid))
          const script = new URL("./consumer-process.ts", import.meta.url).pathname
          // No claims in this run (30 s): a second processing could only come from a bug, not from a slow machine.
          const consumers = Array.from({ length: count }, (_, i) =>
            spawn(process.execPath, [script, REDIS_URL, stream, results, `p${i + 1}`, "30000"], {
              stdio: ["ignore", "ignore", "inherit"]
            })
          )
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              for (const child of consumers) child.kill("SIGKILL")
            })
          )
          const total = 1000
          yield* add(client, stream, 1, total)
          const processed = () => Effect.promise(() => client.lrange(results, 0, -1))
          yield* Wait.until(
            () => Effect.runPromise(Effect.map(processed(), (lines) => lines.length >= total)),
            "every entry processed",
            30_000
          )
          yield* Wait.until(
            () => Effect.runPromise(Effect.map(pendingCount(client, stream, "g"), (n) => n === 0)),
            "every entry acknowledged",
            10_000
          )
          const lines = yield* processed()
          assert.strictEqual(lines.length, total, "none processed twice")
          assert.deepStrictEqual(
            lines.map((l) => Number(l.split(":")[1])).sort((a, b) => a - b),
            Array.from({ length: total }, (_, i) => i + 1)
          )
          for (let i = 1; i <= count; i++) {
            assert.isAbove(lines.filter((l) => l.startsWith(`p${i}:`)).length, 0, `p${i} took a share`)
          }
        }).pipe(Effect.scoped),
      60_000
    )
  }

  it.live(
    "3 consumer processes share a stream; one killed with -9 mid-run: every entry processed, duplicates ≤ its maxInFlight",
    () =>
      Effect.gen(function* () {
        const stream = unique("scale")
        const results = `${stream}-results`
        const client = yield* admin(stream)
        yield* Effect.addFinalizer(() => Effect.promise(() => client.del(results)).pipe(Effect.asVoid))
        const script = new URL("./consumer-process.ts", import.meta.url).pathname
        const consumers = ["p1", "p2", "p3"].map((name) =>
          spawn(process.execPath, [script, REDIS_URL, stream, results, name], {
            stdio: ["ignore", "ignore", "inherit"]
          })
        )
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const child of consumers) child.kill("SIGKILL")
          })
        )
        const total = 3000
        yield* add(client, stream, 1, total)
        const processed = () => Effect.promise(() => client.lrange(results, 0, -1))
        yield* Wait.until(
          () =>
            Effect.runPromise(
              Effect.map(processed(), (lines) => lines.filter((l) => l.startsWith("p1:")).length >= 100)
            ),
          "p1 at work",
          20_000
        )
        consumers[0]!.kill("SIGKILL")
        yield* Wait.until(
          () =>
            Effect.runPromise(
              Effect.map(processed(), (lines) => new Set(lines.map((l) => l.split(":")[1])).size === total)
            ),
          "every entry processed by the survivors",
          30_000
        )
        yield* Wait.until(
          () => Effect.runPromise(Effect.map(pendingCount(client, stream, "g"), (n) => n === 0)),
          "every entry acknowledged",
          10_000
        )
        const lines = yield* processed()
        const numbers = new Set(lines.map((l) => Number(l.split(":")[1])))
        assert.deepStrictEqual(
          [...numbers].sort((a, b) => a - b),
          Array.from({ length: total }, (_, i) => i + 1)
        )
        // Only what p1 had processed but not yet acknowledged can be processed twice: at most its maxInFlight (20).
        assert.isAtMost(lines.length - total, 20)
        for (const name of ["p2", "p3"]) {
          assert.isAbove(lines.filter((l) => l.startsWith(`${name}:`)).length, 0, `${name} took a share`)
        }
      }).pipe(Effect.scoped),
    60_000
  )

  it.live("an entry whose work keeps failing goes to the dead letters after maxDeliveries, counted", () =>
    Effect.gen(function* () {
      const stream = unique("poison")
      const deadLetter = `${stream}-dead`
      const client = yield* admin(stream)
      yield* Effect.addFinalizer(() => Effect.promise(() => client.del(deadLetter)).pipe(Effect.asVoid))
      const name = unique("poison-name")
      const handle = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream,
        group: "g",
        createGroup: "0",
        claimAfter: "100 millis",
        block: "50 millis",
        maxDeliveries: 3,
        deadLetter,
        name
      })
      yield* add(client, stream, 1, 3)
      const attempts = new Map<string, number>()
      yield* Delivery.process(handle.messages, (item) =>
        Effect.suspend(() => {
          attempts.set(item.n!, (attempts.get(item.n!) ?? 0) + 1)
          return item.n === "2" ? Effect.fail("poison") : Effect.void
        })
      ).pipe(Effect.forkChild)
      const deadLetters = () =>
        Effect.promise(() => client.xrange(deadLetter, "-", "+") as Promise<Array<[string, Array<string>]>>)
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(deadLetters(), (entries) => entries.length === 1)),
        "the dead letter"
      )
      const [[, fields]] = yield* deadLetters()
      const [[id]] = (yield* Effect.promise(() => client.xrange(stream, "-", "+"))).slice(1, 2)
      assert.deepStrictEqual(fields, [
        "n",
        "2",
        "streamemit-id",
        id,
        "streamemit-stream",
        stream,
        "streamemit-group",
        "g",
        "streamemit-deliveries",
        "3",
        "streamemit-reason",
        "max-deliveries"
      ])
      assert.deepStrictEqual(Object.fromEntries(attempts), { "1": 1, "2": 3, "3": 1 })
      assert.strictEqual(yield* pendingCount(client, stream, "g"), 0)
      const counted = Metric.withAttributes(RedisStreams.deadLetteredTotal, {
        connector: "redis-streams",
        name,
        reason: "max-deliveries"
      })
      assert.strictEqual((yield* Metric.value(counted)).count, 1)
    }).pipe(Effect.scoped)
  )

  it.live("a missing group with createGroup: false is a Config error naming the group", () =>
    Effect.gen(function* () {
      const stream = unique("nogroup")
      yield* admin(stream)
      const exit = yield* RedisStreams.consume({
        connection: REDIS_URL,
        stream,
        group: "absent",
        createGroup: false
      }).pipe(Stream.runDrain, Effect.timeout("5 seconds"), Effect.exit)
      const error = Expect.connectorError(exit as Exit.Exit<unknown, never>)
      assert.strictEqual(error.reason._tag, "Config")
      assert.isFalse(error.isRetryable)
      assert.include(error.message, "group")
    }).pipe(Effect.scoped)
  )

  it.live("invalid options fail at once with a Config reason naming the option and the value", () =>
    Effect.gen(function* () {
      const base = { connection: REDIS_URL, stream: "s", group: "g" }
      const cases = [
        [{ ...base, connection: "http://x" }, "connection"],
        [{ ...base, stream: "" }, "stream"],
        [{ ...base, group: 7 as unknown as string }, "group"],
        [{ ...base, consumer: "" }, "consumer"],
        [{ ...base, createGroup: "1" as "0" }, "createGroup"],
        [{ ...base, batch: 0 }, "batch"],
        [{ ...base, maxInFlight: 1.5 }, "maxInFlight"],
        [{ ...base, block: "soon" as "1 second" }, "block"],
        [{ ...base, claimAfter: -1 }, "claimAfter"],
        [{ ...base, maxDeliveries: 3 }, "deadLetter"],
        [{ ...base, maxDeliveries: 0, deadLetter: "dead" }, "maxDeliveries"],
        [{ ...base, maxDeliveries: 3, deadLetter: "s" }, "deadLetter"],
        [{ ...base, stream: ["a", "b", "s"], deadLetter: "s" }, "deadLetter"],
        [{ ...base, stream: [] }, "stream"],
        [{ ...base, stream: ["a", "a"] }, "stream"],
        [{ ...base, stream: ["a", ""] }, "stream"],
        [{ ...base, renewEvery: "2 minutes" }, "renewEvery"],
        [{ ...base, claimAfter: "10 seconds", renewEvery: "10 seconds" }, "renewEvery"],
        [{ ...base, onDecodeError: "dead-letter" }, "onDecodeError"],
        [{ ...base, onDecodeError: "ignore" as "skip" }, "onDecodeError"],
        [{ ...base, schema: { not: "a schema" } as never }, "schema"]
      ] as const
      for (const [options, option] of cases) {
        const exit = yield* Effect.exit(RedisStreams.make(options))
        const error = Expect.connectorError(exit)
        assert.strictEqual(error.reason._tag, "Config", option)
        assert.strictEqual((error.reason as { option?: string }).option, option)
      }
    }).pipe(Effect.scoped)
  )
})

describe("RedisStreams.relay", () => {
  it.live("adds every item in order, strings as they are and values as JSON; maxLen trims about there", () =>
    Effect.gen(function* () {
      const stream = unique("relay")
      const client = yield* admin(stream)
      const items = Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? `line ${i}` : { i, text: "naïve 𝄞" }))
      yield* Stream.fromIterable(items).pipe(Stream.run(RedisStreams.relay({ connection: REDIS_URL, stream })))
      const entries = (yield* Effect.promise(() => client.xrange(stream, "-", "+"))) as Array<[string, Array<string>]>
      assert.deepStrictEqual(
        entries.map(([, fields]) => fields),
        items.map((item) => ["data", typeof item === "string" ? item : JSON.stringify(item)])
      )
      const trimmed = unique("relay-trimmed")
      yield* admin(trimmed)
      yield* Stream.range(1, 2000).pipe(
        Stream.run(
          RedisStreams.relay({ connection: REDIS_URL, stream: trimmed, maxLen: 100, encode: (n) => ({ n: `${n}` }) })
        )
      )
      const length = yield* Effect.promise(() => client.xlen(trimmed))
      assert.isAtLeast(length, 100)
      assert.isBelow(length, 2000)
      const [[, last]] = (yield* Effect.promise(() => client.xrevrange(trimmed, "+", "-", "COUNT", 1))) as Array<
        [string, Array<string>]
      >
      assert.deepStrictEqual(last, ["n", "2000"])
      // maxAge: what is older than 200 ms goes (about: whole nodes of 100 entries) as new entries come.
      const aged = unique("relay-aged")
      yield* admin(aged)
      const relayAged = (from: number) =>
        Stream.range(from, from + 499).pipe(
          Stream.run(
            RedisStreams.relay({
              connection: REDIS_URL,
              stream: aged,
              maxAge: "200 millis",
              encode: (n) => ({ n: `${n}` })
            })
          )
        )
      yield* relayAged(1)
      yield* Effect.sleep("400 millis")
      yield* relayAged(501)
      const kept = (yield* Effect.promise(() => client.xrange(aged, "-", "+"))) as Array<[string, Array<string>]>
      assert.isBelow(kept.length, 1000, "the old entries trimmed")
      assert.isAtLeast(kept.length, 500)
      assert.deepStrictEqual(kept.at(-1)![1], ["n", "1000"])
      const both = yield* Effect.exit(
        Stream.run(
          Stream.make(1),
          RedisStreams.relay({ connection: REDIS_URL, stream: aged, maxLen: 10, maxAge: "1 hour" })
        )
      )
      assert.strictEqual((Expect.connectorError(both).reason as { option?: string }).option, "maxAge")
    }).pipe(Effect.scoped)
  )

  it.live("relaySignals writes a Gap as a marker entry in its place, and skips the other lifecycle events", () =>
    Effect.gen(function* () {
      const stream = unique("relay-signals")
      const client = yield* admin(stream)
      const signals: Array<Lifecycle.Signal<string>> = [
        new Lifecycle.Message({ message: "before" }),
        new Lifecycle.Gap({ delivery: "possible-loss", downtime: Duration.millis(1500) }),
        new Lifecycle.Message({ message: "after" })
      ]
      yield* Stream.fromIterable(signals).pipe(Stream.run(RedisStreams.relaySignals({ connection: REDIS_URL, stream })))
      const entries = (yield* Effect.promise(() => client.xrange(stream, "-", "+"))) as Array<[string, Array<string>]>
      assert.deepStrictEqual(
        entries.map(([, fields]) => fields),
        [
          ["data", "before"],
          ["streamemit-gap", "possible-loss", "downtime-ms", "1500"],
          ["data", "after"]
        ]
      )
    }).pipe(Effect.scoped)
  )

  it.live("a key that is not a stream fails the sink with a typed error; bad options are Config errors", () =>
    Effect.gen(function* () {
      const key = unique("not-a-stream")
      const client = yield* admin(key)
      yield* Effect.promise(() => client.set(key, "a string"))
      const exit = yield* Stream.make("x").pipe(
        Stream.run(RedisStreams.relay({ connection: REDIS_URL, stream: key })),
        Effect.exit
      )
      const error = Expect.connectorError(exit)
      assert.include(error.message, "WRONGTYPE")
      assert.strictEqual(error.reason._tag, "Config")
      assert.isFalse(error.isRetryable)
      for (const [options, option] of [
        [{ connection: REDIS_URL, stream: key, maxLen: 0 }, "maxLen"],
        [{ connection: REDIS_URL, stream: "" }, "stream"],
        [{ connection: "ws://x", stream: key }, "connection"]
      ] as const) {
        const failed = Expect.connectorError(
          yield* Stream.make("x").pipe(Stream.run(RedisStreams.relay(options)), Effect.exit)
        )
        assert.strictEqual((failed.reason as { option?: string }).option, option)
      }
    }).pipe(Effect.scoped)
  )
})
