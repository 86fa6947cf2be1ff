/**
 * The consumer's explicit choices and its reports, against the real server: nak with a delay, term, renewal of
 * long work, several streams, decoding with a Schema, entries trimmed before the group read them, a black hole.
 */
import { assert, describe, it } from "@effect/vitest"
import { type Delivery, Lifecycle, Metrics } from "@streamemit/core"
import { Expect, FaultProxy, Wait } from "@streamemit/testkit"
import { Effect, Metric, Schema, Stream } from "effect"
import type { Redis } from "ioredis"
import { RedisStreams } from "../src/index.ts"
import { add, admin, fast, killClients, pendingCount, REDIS_URL, target, unique } from "./fixtures.ts"

type Entry = Delivery.Delivery<RedisStreams.Entry>

/** Collects a handle's signals in a fiber of the test's scope. */
const collect = <A>(signals: Stream.Stream<Lifecycle.Signal<A>, unknown>) =>
  Effect.gen(function* () {
    const seen: Array<Lifecycle.Signal<A>> = []
    yield* signals.pipe(
      Stream.runForEach((signal) => Effect.sync(() => seen.push(signal))),
      Effect.forkChild({ startImmediately: true })
    )
    return {
      seen,
      messages: () => seen.flatMap((s) => (s._tag === "Message" ? [s.message] : [])),
      gaps: () => seen.filter((s): s is Lifecycle.Gap => s._tag === "Gap")
    }
  })

const entries = (client: Redis, stream: string) =>
  Effect.promise(() => client.xrange(stream, "-", "+") as Promise<Array<[string, Array<string>]>>)

const deadLettered = (name: string, reason: string) =>
  Effect.map(
    Metric.value(Metric.withAttributes(RedisStreams.deadLetteredTotal, { connector: "redis-streams", name, reason })),
    (state) => state.count
  )

describe("settling a delivery", () => {
  it.live("nak(delay): delivered again to this consumer after the delay, counted; the others go on meanwhile", () =>
    Effect.gen(function* () {
      const stream = unique("nak")
      const client = yield* admin(stream)
      const handle = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream,
        group: "g",
        createGroup: "0",
        maxInFlight: 1,
        block: "50 millis"
      })
      yield* add(client, stream, 1, 3)
      const { messages, seen } = yield* collect(handle.signals)
      yield* Wait.until(() => messages().length === 1, "the first delivery")
      const first = messages()[0]!
      const nakedAt = Date.now()
      // Its place is free at once: entry 2 comes although maxInFlight is 1.
      yield* first.nak("400 millis")
      yield* Wait.until(() => messages().length === 2, "entry 2 while 1 waits")
      yield* messages()[1]!.ack
      yield* Wait.until(() => messages().length === 3, "entry 3")
      yield* messages()[2]!.ack
      yield* Wait.until(() => messages().length === 4, "entry 1 again", 3000)
      const again = messages()[3]!
      assert.isAtLeast(Date.now() - nakedAt, 400)
      assert.deepStrictEqual(
        messages().map((d) => [d.item.n, d.deliveries]),
        [
          ["1", 1],
          ["2", 1],
          ["3", 1],
          ["1", 2]
        ],
        JSON.stringify(
          seen.map((s) =>
            s._tag === "Message"
              ? [s.message.item.n, s.message.deliveries]
              : s._tag === "Disconnected"
                ? String(s.error)
                : s._tag
          )
        )
      )
      assert.strictEqual(again.id, first.id)
      assert.strictEqual(yield* pendingCount(client, stream, "g"), 1)
      yield* again.ack
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(pendingCount(client, stream, "g"), (n) => n === 0)),
        "nothing pending"
      )
    }).pipe(Effect.scoped)
  )

  it.live("a nak waiting for its delay is not delivered early by the re-read after a reconnect", () =>
    Effect.gen(function* () {
      const stream = unique("nak-reconnect")
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
      yield* add(client, stream, 1, 1)
      const { messages, gaps } = yield* collect(handle.signals)
      yield* Wait.until(() => messages().length === 1, "the delivery")
      const nakedAt = Date.now()
      yield* messages()[0]!.nak("700 millis")
      assert.strictEqual(yield* killClients(client, `streamemit:${consumer} `), 1)
      yield* Wait.until(() => gaps().length === 1, "the reconnect's Gap")
      yield* Effect.sleep("200 millis")
      assert.strictEqual(messages().length, 1, "not before its delay")
      yield* Wait.until(() => messages().length === 2, "after its delay", 3000)
      assert.isAtLeast(Date.now() - nakedAt, 700)
      yield* messages()[1]!.ack
    }).pipe(Effect.scoped)
  )

  it.live("nak again and again: past maxDeliveries the entry goes to the dead letters", () =>
    Effect.gen(function* () {
      const stream = unique("nak-max")
      const deadLetter = `${stream}-dead`
      const client = yield* admin(stream)
      yield* Effect.addFinalizer(() => Effect.promise(() => client.del(deadLetter)).pipe(Effect.asVoid))
      const name = unique("nak-max-name")
      const handle = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream,
        group: "g",
        createGroup: "0",
        maxDeliveries: 3,
        deadLetter,
        name
      })
      yield* add(client, stream, 1, 1)
      yield* handle.messages.pipe(
        Stream.runForEach((delivery) => delivery.nak("20 millis")),
        Effect.forkChild({ startImmediately: true })
      )
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(entries(client, deadLetter), (list) => list.length === 1)),
        "the dead letter"
      )
      const [[, fields]] = yield* entries(client, deadLetter)
      assert.deepInclude(fields.slice(-4), "max-deliveries")
      assert.strictEqual(fields[fields.indexOf("streamemit-deliveries") + 1], "3")
      assert.strictEqual(yield* pendingCount(client, stream, "g"), 0)
      assert.strictEqual(yield* deadLettered(name, "max-deliveries"), 1)
    }).pipe(Effect.scoped)
  )

  it.live("term(reason): moved to the dead letters with the reason and acknowledged; without them, acknowledged", () =>
    Effect.gen(function* () {
      const stream = unique("term")
      const deadLetter = `${stream}-dead`
      const client = yield* admin(stream)
      yield* Effect.addFinalizer(() => Effect.promise(() => client.del(deadLetter)).pipe(Effect.asVoid))
      const name = unique("term-name")
      const withDeadLetters = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream,
        group: "g",
        createGroup: "0",
        deadLetter,
        name
      })
      yield* add(client, stream, 1, 2)
      const held = yield* withDeadLetters.messages.pipe(Stream.take(2), Stream.runCollect)
      yield* held[0]!.term("no such customer")
      yield* held[0]!.ack // the term decided
      yield* held[1]!.ack
      const [[, fields]] = yield* entries(client, deadLetter)
      assert.deepStrictEqual(fields.slice(0, 2), ["n", "1"])
      assert.strictEqual(fields[fields.indexOf("streamemit-reason") + 1], "term: no such customer")
      assert.strictEqual(fields[fields.indexOf("streamemit-id") + 1], held[0]!.id)
      assert.strictEqual(yield* pendingCount(client, stream, "g"), 0)
      assert.strictEqual(yield* deadLettered(name, "term"), 1)

      // Without a dead-letter stream: acknowledged, still counted.
      const bare = unique("term-bare")
      const other = yield* admin(bare)
      const handle = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream: bare,
        group: "g",
        createGroup: "0",
        name: bare
      })
      yield* add(other, bare, 1, 1)
      const [delivery] = yield* handle.messages.pipe(Stream.take(1), Stream.runCollect)
      yield* delivery!.term()
      assert.strictEqual(yield* pendingCount(other, bare, "g"), 0)
      assert.strictEqual(yield* deadLettered(bare, "term"), 1)
    }).pipe(Effect.scoped)
  )
})

describe("long work", () => {
  it.live("renewEvery keeps held entries from being claimed; without it, another consumer claims them", () =>
    Effect.gen(function* () {
      const stream = unique("renew")
      const client = yield* admin(stream)
      const join = (consumer: string, extra: Partial<RedisStreams.Options> = {}) =>
        RedisStreams.make({
          connection: REDIS_URL,
          stream,
          group: "g",
          consumer,
          createGroup: "0",
          batch: 1,
          maxInFlight: 1,
          claimAfter: false,
          ...extra
        })
      const renewing = yield* join(unique("renewing"), { renewEvery: "100 millis" })
      const plain = yield* join(unique("plain"))
      yield* add(client, stream, 1, 2)
      // Each holds one entry and never settles it (a long job).
      const [a] = yield* renewing.messages.pipe(Stream.take(1), Stream.runCollect)
      const [b] = yield* plain.messages.pipe(Stream.take(1), Stream.runCollect)
      // A third consumer claims what is idle for 400 ms.
      const claimer = yield* join(unique("claimer"), { claimAfter: "400 millis", block: "50 millis" })
      const { messages } = yield* collect(claimer.signals)
      yield* Wait.until(() => messages().length === 1, "the plain consumer's entry claimed", 3000)
      yield* Effect.sleep("800 millis")
      assert.deepStrictEqual(
        messages().map((d) => d.id),
        [b!.id],
        "only the entry of the consumer that does not renew"
      )
      assert.notStrictEqual(a!.id, b!.id)
      yield* a!.ack
      yield* messages()[0]!.ack
      assert.strictEqual(yield* pendingCount(client, stream, "g"), 0)
    }).pipe(Effect.scoped)
  )
})

describe("several streams", () => {
  it.live("one consumer reads every stream; source says which; a reconnect re-reads the pending of each", () =>
    Effect.gen(function* () {
      const [orders, refunds] = [unique("orders"), unique("refunds")]
      const consumer = unique("c")
      const client = yield* admin(orders)
      yield* Effect.addFinalizer(() => Effect.promise(() => client.del(refunds)).pipe(Effect.asVoid))
      const handle = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream: [orders, refunds],
        group: "g",
        consumer,
        createGroup: "0",
        reconnect: fast
      })
      yield* add(client, orders, 1, 3)
      yield* add(client, refunds, 101, 2)
      const { messages, gaps } = yield* collect(handle.signals)
      yield* Wait.until(() => messages().length === 5, "5 deliveries")
      const bySource = (list: ReadonlyArray<Entry>) =>
        list.map((d) => `${d.source === orders ? "orders" : d.source === refunds ? "refunds" : d.source}:${d.item.n}`)
      assert.sameMembers(bySource(messages()), ["orders:1", "orders:2", "orders:3", "refunds:101", "refunds:102"])
      // Acknowledge one of each (the acks of both streams leave together), then reconnect.
      const first = messages()
      yield* Effect.all(
        first.filter((d) => d.item.n === "1" || d.item.n === "101").map((d) => d.ack),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(yield* pendingCount(client, orders, "g"), 2)
      assert.strictEqual(yield* pendingCount(client, refunds, "g"), 1)
      assert.strictEqual(yield* killClients(client, `streamemit:${consumer} `), 1)
      yield* Wait.until(() => messages().length === 8, "the 3 unacknowledged again")
      assert.strictEqual(gaps()[0]!.delivery, "resumed")
      assert.sameMembers(bySource(messages().slice(5)), ["orders:2", "orders:3", "refunds:102"])
      assert.isTrue(
        messages()
          .slice(5)
          .every((d) => d.deliveries === 2)
      )
      yield* Effect.all(
        messages()
          .slice(5)
          .map((d) => d.ack),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(yield* pendingCount(client, orders, "g"), 0)
      assert.strictEqual(yield* pendingCount(client, refunds, "g"), 0)
    }).pipe(Effect.scoped)
  )
})

describe("decoding with a Schema", () => {
  const Order = Schema.Struct({
    n: Schema.NumberFromString,
    data: Schema.fromJsonString(Schema.Struct({ sku: Schema.String }))
  })
  const addOrders = (client: Redis, stream: string) =>
    Effect.promise(() =>
      client
        .pipeline()
        .xadd(stream, "*", "n", "1", "data", JSON.stringify({ sku: "a" }))
        .xadd(stream, "*", "n", "2", "data", "{not json")
        .xadd(stream, "*", "n", "3", "data", JSON.stringify({ sku: "c" }))
        .exec()
    )

  it.live('items are decoded; a rejected entry is "skip"ped (acknowledged, counted) or dead-lettered with why', () =>
    Effect.gen(function* () {
      const stream = unique("schema")
      const deadLetter = `${stream}-dead`
      const client = yield* admin(stream)
      yield* Effect.addFinalizer(() => Effect.promise(() => client.del(deadLetter)).pipe(Effect.asVoid))
      yield* addOrders(client, stream)
      const skipName = unique("skip")
      const skipping = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream,
        group: "skip",
        createGroup: "0",
        schema: Order,
        onDecodeError: "skip",
        name: skipName
      })
      const skipped = yield* skipping.messages.pipe(Stream.take(2), Stream.runCollect)
      assert.deepStrictEqual(
        skipped.map((d) => d.item),
        [
          { n: 1, data: { sku: "a" } },
          { n: 3, data: { sku: "c" } }
        ]
      )
      yield* Effect.forEach(skipped, (d) => d.ack)
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(pendingCount(client, stream, "skip"), (n) => n === 0)),
        "the rejected entry acknowledged too"
      )
      const skipMetric = Metrics.forConnector("redis-streams", skipName).decodeSkipped
      assert.strictEqual((yield* Metric.value(skipMetric)).count, 1)

      // With deadLetter set, a rejected entry goes there by default.
      const name = unique("dead")
      const moving = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream,
        group: "dead",
        createGroup: "0",
        schema: Order,
        deadLetter,
        name
      })
      const moved = yield* moving.messages.pipe(Stream.take(2), Stream.runCollect)
      assert.deepStrictEqual(
        moved.map((d) => d.item.n),
        [1, 3]
      )
      yield* Wait.until(
        () => Effect.runPromise(Effect.map(entries(client, deadLetter), (list) => list.length === 1)),
        "the dead letter"
      )
      const [[, fields]] = yield* entries(client, deadLetter)
      assert.deepStrictEqual(fields.slice(0, 4), ["n", "2", "data", "{not json"])
      assert.match(fields[fields.indexOf("streamemit-reason") + 1]!, /^decode: /)
      assert.strictEqual(yield* deadLettered(name, "decode"), 1)
    }).pipe(Effect.scoped)
  )

  it.live('"fail" (the default without dead letters) fails the stream with a Decode error naming the entry', () =>
    Effect.gen(function* () {
      const stream = unique("schema-fail")
      const client = yield* admin(stream)
      yield* addOrders(client, stream)
      const handle = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream,
        group: "g",
        createGroup: "0",
        schema: Order
      })
      const seen: Array<number> = []
      const exit = yield* handle.messages.pipe(
        Stream.runForEach((d) =>
          Effect.andThen(
            d.ack,
            Effect.sync(() => seen.push(d.item.n))
          )
        ),
        Effect.exit
      )
      const error = Expect.connectorError(exit)
      assert.strictEqual(error.reason._tag, "Decode")
      assert.include(error.message, `stream "${stream}" entry `)
      assert.deepStrictEqual(seen, [1])
      // The rejected entry is not lost: it stays pending for a consumer with a fixed schema.
      assert.isAtLeast(yield* pendingCount(client, stream, "g"), 1)
    }).pipe(Effect.scoped)
  )
})

describe("entries trimmed before the group read them", () => {
  it.live("a Gap { possible-loss } with the count once caught up, once per group, counted", () =>
    Effect.gen(function* () {
      const stream = unique("trimmed")
      const client = yield* admin(stream)
      yield* Effect.addFinalizer(() =>
        Effect.promise(() => client.del(RedisStreams.lostKey(stream))).pipe(Effect.asVoid)
      )
      // The group is created (by a consumer that leaves at once), then nobody reads while 10 entries come and the
      // producer's trimming keeps 4.
      yield* Effect.scoped(
        Effect.flatMap(RedisStreams.make({ connection: REDIS_URL, stream, group: "g" }), (h) => h.awaitConnection)
      )
      yield* add(client, stream, 1, 10)
      yield* Effect.promise(() => client.xtrim(stream, "MAXLEN", 4))
      const name = unique("trimmed-name")
      const handle = yield* RedisStreams.make({ connection: REDIS_URL, stream, group: "g", name, block: "50 millis" })
      const { seen, messages, gaps } = yield* collect(handle.signals)
      yield* Wait.until(() => gaps().length === 1, "the Gap")
      assert.deepStrictEqual(
        messages().map((d) => d.item.n),
        ["7", "8", "9", "10"]
      )
      assert.strictEqual(gaps()[0]!.delivery, "possible-loss")
      assert.strictEqual(gaps()[0]!.lost, 6)
      assert.isAbove(seen.indexOf(gaps()[0]!), seen.indexOf(seen.find((s) => s._tag === "Connected")!))
      const lost = Metrics.forConnector("redis-streams", name).lost
      assert.strictEqual((yield* Metric.value(lost)).count, 6)
      yield* Effect.forEach(messages(), (d) => d.ack)

      // Another consumer of the group sees the same stream: the loss was reported once.
      const second = yield* RedisStreams.make({ connection: REDIS_URL, stream, group: "g", block: "50 millis" })
      const other = yield* collect(second.signals)
      yield* add(client, stream, 11, 2)
      yield* Wait.until(() => messages().length + other.messages().length === 6, "the 2 new entries")
      assert.strictEqual(gaps().length + other.gaps().length, 1)
    }).pipe(Effect.scoped)
  )

  it.live("trimmed while the consumer waits for acknowledgements: the Gap counts what it never saw", () =>
    Effect.gen(function* () {
      const stream = unique("trimmed-live")
      const client = yield* admin(stream)
      yield* Effect.addFinalizer(() =>
        Effect.promise(() => client.del(RedisStreams.lostKey(stream))).pipe(Effect.asVoid)
      )
      const handle = yield* RedisStreams.make({
        connection: REDIS_URL,
        stream,
        group: "g",
        maxInFlight: 2,
        block: "50 millis"
      })
      const { seen, messages, gaps } = yield* collect(handle.signals)
      yield* handle.awaitConnection
      yield* add(client, stream, 1, 2)
      yield* Wait.until(() => messages().length === 2, "2 deliveries, held")
      // A burst while it waits: 20 more, and the producer keeps 5 (18..22); 3..17 are gone unread.
      yield* add(client, stream, 3, 20)
      yield* Effect.promise(() => client.xtrim(stream, "MAXLEN", 5))
      // Acknowledged as they come (2 in flight at most); an ack asked twice is sent once.
      yield* Wait.until(
        () =>
          Effect.runPromise(
            Effect.as(
              Effect.forEach(messages(), (d) => d.ack),
              messages().length === 7
            )
          ),
        "the 5 left"
      )
      assert.deepStrictEqual(
        messages().map((d) => d.item.n),
        ["1", "2", "18", "19", "20", "21", "22"]
      )
      yield* Wait.until(() => gaps().length === 1, "the Gap, once caught up")
      assert.deepStrictEqual(
        gaps().map((g) => [g.delivery, g.lost]),
        [["possible-loss", 15]]
      )
      // Reported once the consumer has caught up: after the entries it read past the hole.
      assert.isAbove(
        seen.indexOf(gaps()[0]!),
        seen.indexOf(seen.find((s) => s._tag === "Message" && s.message.item.n === "18")!)
      )
    }).pipe(Effect.scoped)
  )
})

describe("faults", () => {
  it.live("a black hole: detected by the watchdog, reconnected, the pending entries read again after a Gap", () =>
    Effect.gen(function* () {
      const proxy = yield* FaultProxy.make({ target: { host: target.hostname, port: Number(target.port || 6379) } })
      const stream = unique("blackhole")
      const client = yield* admin(stream)
      const handle = yield* RedisStreams.make({
        connection: `redis://${proxy.host}:${proxy.port}`,
        stream,
        group: "g",
        createGroup: "0",
        block: "100 millis",
        reconnect: fast
      })
      yield* add(client, stream, 1, 2)
      const { messages, gaps, seen } = yield* collect(handle.signals)
      yield* Wait.until(() => messages().length === 2, "2 deliveries")
      yield* proxy.blackhole
      // Three blocks of silence (300 ms) and the watchdog's probe: well under 2 s.
      yield* Wait.until(() => seen.some((s) => s._tag === "Disconnected"), "the dead connection detected", 2000)
      yield* proxy.restore
      yield* Wait.until(() => messages().length === 4, "the 2 pending entries again", 5000)
      assert.strictEqual(gaps()[0]!.delivery, "resumed")
      assert.deepStrictEqual(
        messages().map((d) => [d.item.n, d.deliveries]),
        [
          ["1", 1],
          ["2", 1],
          ["1", 2],
          ["2", 2]
        ]
      )
      assert.instanceOf(gaps()[0], Lifecycle.Gap)
    }).pipe(Effect.scoped)
  )
})
